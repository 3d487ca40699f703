"""batch_plan, the pure part of a workflow batch's enqueue: identities, what to lock, and each
new item's row, as jobqueue_insert_job would write it one at a time."""

from __future__ import annotations

from worker.db.batch_plan import ItemSpec, Planned, external_ids, plan, resolve


def _plan(
    items: list[ItemSpec], taken: dict[str, int], statuses: dict[int, str]
) -> tuple[list[int], list[int], list[Planned]]:
    resolved = resolve(items, taken)
    return external_ids(items, resolved), *plan(items, resolved, statuses, iter(range(100, 200)))


def test_a_fan_out_blocks_every_item_on_the_one_unfinished_job() -> None:
    items = [ItemSpec(None, depends_on=[7]) for _ in range(3)]
    locked, ids, rows = _plan(items, {}, {7: "running"})
    assert locked == [7]
    assert ids == [100, 101, 102]
    assert [(r.status, r.dependencies_left, r.dependencies) for r in rows] == [
        ("blocked", 1, [7])
    ] * 3


def test_completed_dependencies_are_met_and_no_dependencies_leave_the_count_null() -> None:
    _, _, rows = _plan([ItemSpec(None, depends_on=[5]), ItemSpec(None)], {}, {5: "completed"})
    assert [(r.status, r.dependencies_left) for r in rows] == [("pending", 0), ("pending", None)]


def test_a_broken_dependency_cancels_in_cascade_naming_the_least_as_text() -> None:
    items = [
        ItemSpec(None, depends_on=[9, 12]),  # 'job 12 failed' < 'job 9 cancelled' as text
        ItemSpec(None, depends_on_items=[0]),
        ItemSpec(None, depends_on_items=[0], run_on_failure=True),
    ]
    _, _, rows = _plan(items, {}, {9: "cancelled", 12: "failed"})
    assert [r.status for r in rows] == ["cancelled", "cancelled", "pending"]
    assert rows[0].last_error == "cancelled: its dependency job 12 failed"
    assert rows[1].last_error == "cancelled: its dependency job 100 cancelled"
    assert rows[0].has_dependents and not rows[1].has_dependents


def test_taken_and_repeated_keys_are_the_jobs_that_hold_them() -> None:
    items = [
        ItemSpec("held"),  # some job holds it: that job, nothing inserted
        ItemSpec("mine"),
        ItemSpec("mine", depends_on=[3]),  # repeats item 1: item 1's id, its deps not recorded
        ItemSpec(None, depends_on_items=[0, 2]),
    ]
    locked, ids, rows = _plan(items, {"held": 42}, {3: "pending", 42: "running"})
    assert locked == [3, 42]  # 3 still checked for existence; 42 is waited on through a ref
    assert ids == [42, 100, 100, 101]
    assert [(r.index, r.id) for r in rows] == [(1, 100), (3, 101)]
    assert rows[1].dependencies == [42, 100] and rows[1].dependencies_left == 2
    assert rows[0].has_dependents


def test_unique_keys_resolve_like_idempotency_keys_and_the_idempotency_key_decides_first() -> None:
    items = [
        ItemSpec(None, unique_key="u-held"),  # an active job holds it: that job
        ItemSpec("i-new", unique_key="u-new"),
        ItemSpec(None, unique_key="u-new"),  # repeats item 1's unique key
        ItemSpec("i-new"),  # repeats item 1's idempotency key
        ItemSpec("i-taken", unique_key="u-held"),  # both known: the idempotency key's job
    ]
    resolved = resolve(items, {"i-taken": 5}, {"u-held": 9})
    assert [(r.existing, r.alias_of) for r in resolved] == [
        (9, None),
        (None, None),
        (None, 1),
        (None, 1),
        (5, None),
    ]
