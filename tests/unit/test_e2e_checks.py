"""L2: the end-to-end suites' own judgements (pure functions), so a broken check cannot pass a
broken system: deletion order from a pod watch, and the timeline's figures."""

from __future__ import annotations

from typing import Any

from tests.e2e.e2e_support import deletion_cost_problems, deletion_steps
from tests.e2e.timeline import Sample, summarize

COST = "controller.kubernetes.io/pod-deletion-cost"


def pod(name: str, cost: str | None = None, *, deleting: bool = False, ready: bool = True) -> Any:
    metadata: dict[str, Any] = {"name": name, "annotations": {COST: cost} if cost else {}}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    return {"metadata": metadata, "status": {"phase": "Running", "conditions": [condition]}}


def scale_down(deleted: list[str], costs: dict[str, str], *, at: float = 10.0) -> list[Any]:
    history = [(1.0, "ADDED", pod(name)) for name in costs]
    history += [(5.0, "MODIFIED", pod(name, cost)) for name, cost in costs.items()]
    for offset, name in enumerate(deleted):
        history.append((at + offset * 0.1, "MODIFIED", pod(name, costs[name], deleting=True)))
        history.append((at + offset * 0.1 + 0.01, "DELETED", pod(name, costs[name], deleting=True)))
    return history


def test_idle_pods_deleted_first_is_no_problem() -> None:
    steps = deletion_steps(scale_down(["a", "b"], {"a": "0", "b": "1", "c": "4"}), gap=1.0)
    assert [(s["deleted"], s["survivors"]) for s in steps] == [(["a", "b"], ["c"])]
    assert deletion_cost_problems(steps) == []


def test_a_busier_pod_deleted_first_is_reported() -> None:
    steps = deletion_steps(scale_down(["c"], {"a": "0", "b": "1", "c": "4"}), gap=1.0)
    assert deletion_cost_problems(steps) == [
        "a busier pod went first: {'a': '0', 'b': '1', 'c': '4'}, deleted ['c']"
    ]


def test_a_pod_deleted_without_a_cost_is_reported() -> None:
    history = [(1.0, "ADDED", pod("a")), (2.0, "ADDED", pod("b"))]
    history.append((3.0, "MODIFIED", pod("a", deleting=True)))
    assert deletion_cost_problems(deletion_steps(history, gap=1.0)) == [
        "a was deleted without a pod-deletion-cost"
    ]


def test_steps_are_split_by_the_gap_and_unready_pods_do_not_count() -> None:
    history = scale_down(["a"], {"a": "0", "b": "5", "c": "5"})
    history.append((11.0, "MODIFIED", pod("b", "5", ready=False)))  # out of the ranking
    history += [(20.0, "MODIFIED", pod("c", "0", deleting=True))]
    steps = deletion_steps(history, gap=1.0)
    assert [s["deleted"] for s in steps] == [["a"], ["c"]]
    assert steps[1]["survivors"] == []
    assert deletion_cost_problems(steps) == []


def test_pods_recosted_between_quick_scale_downs_are_new_steps() -> None:
    """Idle pods go one /scale at a time, as each goes idle: within the gap, but each after
    the controller costed the pods again. As seen on kwok: 4 -> 3 -> 2 -> 1 in 1.3 s."""
    history = scale_down(["a"], {"a": "0", "b": "5", "c": "4", "d": "0"})
    history += [(10.4, "MODIFIED", pod("b", "0")), (10.5, "MODIFIED", pod("b", "0", deleting=True))]
    history += [(10.8, "MODIFIED", pod("c", "0")), (10.9, "MODIFIED", pod("c", "0", deleting=True))]
    steps = deletion_steps(history, gap=1.5)
    assert [s["deleted"] for s in steps] == [["a"], ["b"], ["c"]]
    assert steps[-1]["survivors"] == ["d"]
    assert deletion_cost_problems(steps) == []


def test_a_busier_pod_within_the_gap_is_still_reported() -> None:
    history = scale_down(["a"], {"a": "0", "b": "5", "d": "0"})
    history += [(10.5, "MODIFIED", pod("b", "5", deleting=True))]  # no new cost: one step
    assert deletion_cost_problems(deletion_steps(history, gap=1.5)) == [
        "a busier pod went first: {'a': '0', 'b': '5', 'd': '0'}, deleted ['a', 'b']"
    ]


def test_summary_figures() -> None:
    def sample(t: float, replicas: int, ready: int, completed: int, processes: int) -> Sample:
        return Sample(t, replicas, replicas, processes, ready, 0, completed)

    samples = [
        sample(0.0, 0, 100, 0, 0),
        sample(0.5, 4, 100, 0, 0),
        sample(1.0, 4, 40, 60, 4),
        sample(2.0, 2, 0, 100, 4),
        sample(3.0, 0, 0, 100, 1),
        sample(3.5, 0, 0, 100, 0),
    ]
    summary = summarize(samples, total_jobs=100)
    assert summary["first_scale_up_s"] == 0.5
    assert summary["first_worker_process_s"] == 1.0
    assert summary["peak_replicas"] == 4
    assert summary["drain_s"] == 2.0
    assert summary["back_to_zero_s"] == 3.5  # replicas at 0 and no process left
    assert summary["jobs_per_second"] == 50.0
    assert summarize(samples[:3], total_jobs=100)["drain_s"] is None
