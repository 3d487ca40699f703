"""What each item of a workflow batch becomes, worked out before a single row is written, so
that the batch goes in as one INSERT of jobs and one of edges however many items it has (one
statement per item made a fan-out of 10,000 enqueue some 20 times slower than plain jobs).

Pure: it takes what the database said (which idempotency keys are taken, the statuses of the
locked dependencies, fresh ids from the jobs' sequence) and applies the rules of
jobqueue_insert_job (migrations/0007_workflows.sql) to every item in order. Those rules, which
SQL callers still use one job at a time, are:

- a dependency that failed or was cancelled cancels the job at once, unless `run_on_failure`;
  its last_error names the least such dependency as `job <id> <status>`, compared as text;
- otherwise the job is `blocked` while any dependency is unfinished, and `pending` when none is
  (a dependency that completed counts as met);
- an item whose idempotency key some job holds already, or an earlier item of the batch holds,
  is that job: nothing is inserted for it, and its own dependencies are not recorded. The same
  goes for a unique_key that an active job (pending, running or blocked) or an earlier item
  holds, as for plain jobs (worker.db.unique_jobs).

An earlier item that is new is unfinished by construction, unless it was born cancelled.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

TERMINAL = frozenset(("completed", "failed", "cancelled"))
BROKEN = frozenset(("failed", "cancelled"))


@dataclass(frozen=True)
class ItemSpec:
    """What the planner needs of an item: its keys, its existing and in-batch dependencies."""

    idempotency_key: str | None
    depends_on: Sequence[int] = ()
    depends_on_items: Sequence[int] = ()
    run_on_failure: bool = False
    unique_key: str | None = None


@dataclass(frozen=True)
class Resolved:
    """An item's identity. `existing`: the id of the job that already holds its key (in the
    table, or through an earlier item of the batch once ids are known: `alias_of`)."""

    existing: int | None = None
    alias_of: int | None = None  # index of the earlier item with the same key

    @property
    def new(self) -> bool:
        return self.existing is None and self.alias_of is None


NEW = Resolved()  # the identity of every item that is a new job (most of them): one object


@dataclass
class Planned:
    """A new item's row: its id, status and the edges to write (distinct dependency ids)."""

    index: int
    id: int
    status: str
    dependencies_left: int | None
    last_error: str | None
    has_dependents: bool = False
    dependencies: list[int] = field(default_factory=list)
    run_on_failure: bool = False


def resolve(
    items: Sequence[ItemSpec],
    taken: Mapping[str, int],
    held: Mapping[str, int] | None = None,
) -> list[Resolved]:
    """Which items are jobs already (`taken`: idempotency key -> job id; `held`: unique key
    -> the active job's id) or repeat a key of an earlier new item. The idempotency key is
    looked at first, as the plain path does."""
    held = held or {}
    if not taken and not held and not any(i.idempotency_key or i.unique_key for i in items):
        return [NEW] * len(items)  # no keys: every item is a new job
    first_with: dict[tuple[str, str], int] = {}
    out = []
    for index, item in enumerate(items):
        keys = [
            (name, key, known)
            for name, key, known in (
                ("idempotency_key", item.idempotency_key, taken),
                ("unique_key", item.unique_key, held),
            )
            if key is not None
        ]
        existing = [known[key] for _, key, known in keys if key in known]
        earlier = [first_with[(name, key)] for name, key, _ in keys if (name, key) in first_with]
        if existing:
            out.append(Resolved(existing=existing[0]))
        elif earlier:
            out.append(Resolved(alias_of=earlier[0]))
        else:
            first_with.update({(name, key): index for name, key, _ in keys})
            out.append(NEW)
    return out


def external_ids(items: Sequence[ItemSpec], resolved: Sequence[Resolved]) -> list[int]:
    """The existing jobs to lock before inserting, in id order: every item's `depends_on`
    (so a missing id is refused as before, whichever item names it), and the existing jobs
    that new items depend on through a `ref` to an item that turned out to be one."""
    ids = {job_id for item in items for job_id in item.depends_on}
    for index, item in enumerate(items):
        if resolved[index].new:
            for earlier in item.depends_on_items:
                existing = resolved[_final(resolved, earlier)].existing
                if existing is not None:
                    ids.add(existing)
    return sorted(ids)


def plan(
    items: Sequence[ItemSpec],
    resolved: Sequence[Resolved],
    statuses: Mapping[int, str],
    fresh_ids: Iterator[int],
) -> tuple[list[int], list[Planned]]:
    """Every item's job id, in input order, and the rows of the new ones. `statuses` holds
    the locked existing dependencies'; `fresh_ids` yields one increasing id per new item."""
    ids: list[int] = []
    rows: list[Planned] = []
    known = dict(statuses)
    referenced: set[int] = set()
    for index, item in enumerate(items):
        target = resolved[index]
        if not target.new:
            ids.append(
                target.existing if target.existing is not None else ids[_final(resolved, index)]
            )
            continue
        new_id = next(fresh_ids)
        ids.append(new_id)
        if item.depends_on_items:
            earlier = [ids[i] for i in item.depends_on_items]
            referenced.update(earlier)
            dependencies = list(dict.fromkeys([*item.depends_on, *earlier]))  # as named, once
        elif len(item.depends_on) > 1:
            dependencies = list(dict.fromkeys(item.depends_on))
        else:  # the common fan-out item: one dependency, or none
            dependencies = list(item.depends_on)
        status, left, error = _status(dependencies, known, item.run_on_failure)
        known[new_id] = status
        rows.append(
            Planned(index, new_id, status, left, error, False, dependencies, item.run_on_failure)
        )
    if referenced:
        for row in rows:
            row.has_dependents = row.id in referenced
    return ids, rows


def _final(resolved: Sequence[Resolved], index: int) -> int:
    """The item an alias stands for (aliases point at an item that is new or existing)."""
    alias = resolved[index].alias_of
    return index if alias is None else alias


def _status(
    dependencies: Sequence[int], statuses: Mapping[int, str], run_on_failure: bool
) -> tuple[str, int | None, str | None]:
    if not dependencies:
        return "pending", None, None
    left = sum(1 for d in dependencies if statuses[d] not in TERMINAL)
    broken = [f"job {d} {statuses[d]}" for d in dependencies if statuses[d] in BROKEN]
    if broken and not run_on_failure:
        return "cancelled", left, f"cancelled: its dependency {min(broken)}"
    return ("blocked" if left else "pending"), left, None
