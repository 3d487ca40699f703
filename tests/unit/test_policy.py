"""L2: the scaling policy with its stabilisation window, idle replicas, busy-replica floor and
wait-time target, a pure function, driven through arbitrary timelines by hypothesis."""

from __future__ import annotations

import dataclasses
import itertools
import math

from hypothesis import example, given, settings
from hypothesis import strategies as st

from controller.policy import (
    Decision,
    Demand,
    PolicyState,
    Reason,
    ScalingConfig,
    clamp,
    decide,
    hold_busy,
    target_replicas,
    wait_target_replicas,
)


@st.composite
def configs(draw: st.DrawFn, paused: bool = False) -> ScalingConfig:
    maximum = draw(st.integers(1, 50))
    return ScalingConfig(
        min_replicas=draw(st.integers(0, maximum)),
        max_replicas=maximum,
        jobs_per_replica=draw(st.integers(1, 100)),
        activation_jobs=draw(st.integers(0, 200)),
        scale_down_delay=draw(st.floats(0, 600, allow_nan=False)),
        paused=paused,
        idle_replicas=draw(st.integers(0, 3)),
    )


demands = st.builds(Demand, ready=st.integers(0, 10_000), running=st.integers(0, 10_000))
replica_counts = st.integers(0, 60)
# (seconds since the previous observation, the demand then); None is an unreadable depth
timelines = st.lists(
    st.tuples(st.floats(0, 120, allow_nan=False), st.none() | demands), min_size=1, max_size=40
)
# a remembered window: (until, target) pairs, targets falling as times rise
windows = st.lists(
    st.tuples(st.floats(0, 100, allow_nan=False), st.integers(0, 50)), max_size=6
).map(
    lambda pairs: tuple(
        zip(sorted(t for t, _ in pairs), sorted((n for _, n in pairs), reverse=True), strict=True)
    )
)
states = st.builds(PolicyState, windows)


def floor_of(config: ScalingConfig) -> int:
    """Where no demand leaves a Deployment: the idle replicas, within the bounds."""
    return clamp(config.idle_replicas, config.min_replicas, config.max_replicas)


def run(
    config: ScalingConfig, current: int, timeline: list[tuple[float, Demand | None]]
) -> list[tuple[float, int, Decision]]:
    """Feed a timeline through the policy as the controller does; (time, before, decision)."""
    state, now, steps = PolicyState(), 0.0, []
    for gap, demand in timeline:
        now += gap
        decision = decide(config, current, demand, state, now)
        steps.append((now, current, decision))
        current, state = decision.replicas, decision.state
    return steps


@given(configs(), replica_counts, demands)
def test_target_stays_within_bounds(config: ScalingConfig, current: int, demand: Demand) -> None:
    assert config.min_replicas <= target_replicas(config, demand, current) <= config.max_replicas


@given(configs(), replica_counts, timelines)
def test_every_change_lands_within_bounds(config, current, timeline) -> None:
    for _, before, decision in run(config, current, timeline):
        if decision.replicas != before:
            assert config.min_replicas <= decision.replicas <= config.max_replicas


@given(configs(), replica_counts, demands, demands)
def test_target_is_monotone_in_demand(config, current, first, second) -> None:
    low = Demand(min(first.ready, second.ready), min(first.running, second.running))
    high = Demand(max(first.ready, second.ready), max(first.running, second.running))
    assert target_replicas(config, low, current) <= target_replicas(config, high, current)
    fresh = PolicyState()
    assert (
        decide(config, current, low, fresh, 0.0).replicas
        <= decide(config, current, high, fresh, 0.0).replicas
    )


@given(configs(), st.integers(1, 60), st.integers(1, 60), demands)
def test_size_does_not_depend_on_current_replicas(config, one, other, demand) -> None:
    # never "current x ratio": from any non-zero size, the same demand asks for the same size
    assert target_replicas(config, demand, one) == target_replicas(config, demand, other)


@given(configs(), replica_counts, demands, states)
def test_scale_up_is_immediate(config, current, demand, state) -> None:
    target = target_replicas(config, demand, current)
    decision = decide(config, current, demand, state, 1000.0)
    if target > current:
        assert (decision.replicas, decision.reason) == (target, Reason.SCALE_UP)


def highest_in_window(
    config: ScalingConfig, steps: list[tuple[float, int, Decision]], index: int
) -> int:
    """The stabilisation window worked out from scratch: the highest target in effect during
    the last scale-down-delay seconds. A target is in effect until the next observation; an
    unknown depth stands for the size held then, and nothing before it counts; the first look
    stands for the size the run started at, in effect until that first look."""
    now = steps[index][0]
    since = now - config.scale_down_delay
    target = steps[index][2].target
    assert target is not None
    values = [target]
    for earlier in range(index - 1, -1, -1):
        _, before, decision = steps[earlier]
        ended = steps[earlier + 1][0]
        if ended <= since:
            return max(values)
        if decision.target is None:  # unknown depth: the size held, and a fresh start
            return max([*values, before])
        values.append(decision.target)
    if steps[0][0] > since:
        values.append(steps[0][1])
    return max(values)


@given(configs(), replica_counts, timelines)
def test_scale_down_goes_to_the_highest_target_of_the_last_delay(config, current, timeline) -> None:
    for index, (_, before, decision) in enumerate(steps := run(config, current, timeline)):
        if decision.target is None:
            continue
        highest = highest_in_window(config, steps, index)
        if decision.target > before:
            assert decision.replicas == decision.target
        elif highest < before:
            assert (decision.replicas, decision.reason) == (highest, Reason.SCALE_DOWN)
        else:
            assert decision.replicas == before


@given(configs(), replica_counts, timelines)
def test_scale_down_only_after_demand_stayed_lower_for_the_delay(config, current, timeline) -> None:
    steps = run(config, current, timeline)
    for index, (now, before, decision) in enumerate(steps):
        if decision.replicas >= before:
            continue
        since = now - config.scale_down_delay
        # every target in effect over the delay (each lasts until the next look), this one
        # included, was lower: none unknown
        looks = steps[: index + 1]
        ends = [at for at, _, _ in looks[1:]] + [now]
        for (_, _, seen), ended in zip(looks, ends, strict=True):
            if ended > since or seen is decision:
                assert seen.target is not None and seen.target < before
        if steps[0][0] > since:
            # the first look came within the delay: it stands for the size the run started at
            assert decision.replicas >= min(before, current)


@given(configs(), st.integers(1, 60), st.integers(0, 20), st.floats(0.5, 5), st.floats(0, 30))
def test_a_burst_goes_to_its_floor_one_delay_after_its_last_busy_moment(
    config, peak, tail, gap, delay
) -> None:
    """From zero, a burst, a falling tail, then nothing: up once, then only down, and at the
    floor at the first look one delay after the last busy target stopped being in effect.
    With no tail (a burst that ends at once), that is a single step from the peak."""
    config = dataclasses.replace(config, scale_down_delay=delay)
    per = config.jobs_per_replica
    looks = [Demand(peak * per, 0)] + [Demand(0, (peak - i) * per) for i in range(1, tail + 1)]
    looks += [Demand(0, 0)] * (math.ceil(delay / gap) + 2)
    steps = run(config, 0, [(gap, demand) for demand in looks])
    floor = target_replicas(config, Demand(0, 0), 1)
    busy = [index for index, (_, _, d) in enumerate(steps) if (d.target or 0) > floor]
    if not busy:
        return
    ended = steps[busy[-1] + 1][0]  # the last busy target lasted until the next look
    sizes = [d.replicas for _, _, d in steps]
    top = sizes.index(max(sizes))
    assert all(b <= a for a, b in itertools.pairwise(sizes[top:])), sizes  # never back up
    reached = next(at for at, before, d in steps[top:] if d.replicas == floor)
    assert reached == next(at for at, _, _ in steps if ended <= at - delay)
    downs = sum(1 for a, b in itertools.pairwise(sizes[top:]) if b < a)
    assert downs <= tail + 1
    if tail == 0:
        assert downs == 1


# Random again. A Deployment that starts below its floor (min_replicas, or the idle replicas
# from zero) is first brought to it, which answers the bounds, not the demand (from zero with
# ready jobs under the activation threshold, that is the whole move): moves are counted from
# the floor.
@settings(max_examples=300)
@given(
    configs(),
    replica_counts,
    demands,
    demands,
    st.floats(0.01, 1.0),
    st.integers(2, 60),
)
def test_no_flapping_when_demand_oscillates_within_the_delay(
    config, current, first, second, fraction, count
) -> None:
    step = max(config.scale_down_delay * fraction * 0.99, 1e-6)
    if step >= config.scale_down_delay:
        return  # a zero delay has no "within"
    timeline = [(step, first if i % 2 == 0 else second) for i in range(count)]
    floor = max(current, floor_of(config))
    sizes = [floor] + [decision.replicas for _, _, decision in run(config, current, timeline)]
    changes = [b - a for a, b in itertools.pairwise(sizes) if b != a]
    # at most one move each way, and never back: up (at once) or down (after the delay)
    assert all(change > 0 for change in changes) or all(change < 0 for change in changes)
    assert len(changes) <= 2


@given(configs(), replica_counts, states)
def test_holds_when_depth_is_unknown(config, current, state) -> None:
    decision = decide(config, current, None, state, 10_000.0)
    assert (decision.replicas, decision.reason) == (current, Reason.DEPTH_UNKNOWN)


@given(configs(), st.integers(1, 60), demands)
def test_unknown_depth_restarts_the_scale_down_delay(config, current, low) -> None:
    if target_replicas(config, low, current) >= current or config.scale_down_delay == 0:
        return
    delay = config.scale_down_delay
    steps = run(config, current, [(0, low), (delay * 0.9, None), (delay * 0.2, low)])
    # the delay counted from before the outage has passed, but the outage broke it
    assert steps[-1][2].replicas == current


@given(configs(paused=True), replica_counts, timelines)
def test_paused_never_changes_replicas(config, current, timeline) -> None:
    for _, before, decision in run(config, current, timeline):
        assert decision.replicas == before == current
        assert decision.reason is Reason.PAUSED


@given(configs(), st.data())
def test_activation_threshold_from_zero(config, data) -> None:
    quiet = Demand(
        ready=data.draw(st.integers(0, config.activation_jobs)),
        running=data.draw(st.integers(0, 500)),
    )
    assert decide(config, 0, quiet, PolicyState(), 0.0).replicas == floor_of(config)
    busy = Demand(ready=data.draw(st.integers(config.activation_jobs + 1, 20_000)), running=0)
    assert decide(config, 0, busy, PolicyState(), 0.0).replicas >= 1


@example(ScalingConfig(max_replicas=2, jobs_per_replica=1, activation_jobs=100), 0, Demand(150, 0))
@given(configs(), replica_counts, demands)
def test_counting_past_the_cap_changes_nothing(config, current, demand) -> None:
    cap = config.depth_cap
    capped = Demand(min(demand.ready, cap), min(demand.running, cap))
    assert target_replicas(config, capped, current) == target_replicas(config, demand, current)


@given(configs(), st.integers(1, 60))
def test_no_demand_returns_to_min_after_the_delay(config, current) -> None:
    idle = Demand(0, 0)
    steps = run(config, current, [(0, idle), (config.scale_down_delay, idle)])
    assert steps[-1][2].replicas == floor_of(config)


# ---------------------------------------------------------------- idle replicas and busy pods
@given(configs(), st.integers(1, 60), demands)
def test_idle_replicas_stand_above_demand_within_the_bounds(config, current, demand) -> None:
    wanted = math.ceil((demand.ready + demand.running) / config.jobs_per_replica)
    low, high = config.min_replicas, config.max_replicas
    with_idle = target_replicas(config, demand, current)
    assert with_idle == clamp(wanted + config.idle_replicas, low, high)
    without = dataclasses.replace(config, idle_replicas=0)
    assert with_idle >= target_replicas(without, demand, current)


def test_idle_replicas_keep_a_warm_pool_at_no_demand_and_add_to_a_burst() -> None:
    config = ScalingConfig(max_replicas=10, jobs_per_replica=10, idle_replicas=2)
    assert decide(config, 0, Demand(0, 0), PolicyState(), 0.0).replicas == 2
    assert decide(config, 2, Demand(35, 0), PolicyState(), 0.0).replicas == 6
    assert decide(config, 8, Demand(200, 0), PolicyState(), 0.0).replicas == 10  # the max
    steps = run(config, 6, [(0, Demand(0, 0)), (config.scale_down_delay, Demand(0, 0))])
    assert steps[-1][2].replicas == 2  # back to the warm pool, not to zero


decisions = st.builds(
    Decision,
    replicas=st.integers(0, 60),
    reason=st.sampled_from(list(Reason)),
    state=st.just(PolicyState()),
    target=st.none() | st.integers(0, 60),
)


@given(decisions, st.integers(0, 60), st.integers(0, 60))
def test_a_scale_down_never_goes_below_the_busy_replicas(decision, current, busy) -> None:
    held = hold_busy(decision, current, busy)
    if decision.replicas >= current:
        assert held == decision  # only scale-downs are touched
        return
    assert decision.replicas <= held.replicas <= current
    assert held.replicas >= min(current, busy)  # never below running work
    if held != decision:
        assert held.reason is Reason.BUSY_REPLICAS and held.replicas == min(current, busy)


@given(configs(), replica_counts, timelines, st.lists(st.integers(0, 60), min_size=40))
def test_busy_replicas_hold_a_scale_down_and_it_finishes_once_they_are_idle(
    config, current, timeline, busy_counts
) -> None:
    """As the loop runs it: the policy decides, then a scale-down stops at the busy pods;
    no step ever leaves fewer replicas than were busy, and none flaps back up unasked."""
    state, now = PolicyState(), 0.0
    for (gap, demand), busy in zip(timeline, busy_counts, strict=False):
        now += gap
        decided = decide(config, current, demand, state, now)
        held = hold_busy(decided, current, busy)
        assert held.replicas >= min(current, busy) or held.replicas >= decided.replicas
        if held.replicas > current:
            assert decided.reason is Reason.SCALE_UP
        current, state = held.replicas, decided.state


# ---------------------------------------------------------------- the wait-time target
@st.composite
def waited(draw: st.DrawFn) -> ScalingConfig:
    maximum = draw(st.integers(1, 100))
    return ScalingConfig(
        min_replicas=draw(st.integers(0, maximum)),
        max_replicas=maximum,
        jobs_per_replica=draw(st.integers(1, 100)),
        target_wait_seconds=draw(st.none() | st.floats(0.1, 3600)),
    )


rates = st.none() | st.floats(0.001, 10_000)


@given(waited(), st.integers(0, 100_000), st.integers(0, 1000), rates, st.integers(1, 100))
def test_demand_is_the_larger_of_the_ratio_and_the_wait_target(
    config, ready, running, rate, current
) -> None:
    with_rate = target_replicas(config, Demand(ready, running, rate), current)
    ratio_only = target_replicas(config, Demand(ready, running), current)
    assert with_rate >= ratio_only
    assert config.min_replicas <= with_rate <= config.max_replicas
    wanted = wait_target_replicas(config.target_wait_seconds, Demand(ready, running, rate))
    assert with_rate == max(ratio_only, min(wanted, config.max_replicas))


@given(st.integers(1, 100_000), st.floats(0.001, 10_000), st.floats(0.1, 3600))
def test_the_wait_target_drains_the_backlog_in_time_with_no_replica_to_spare(
    ready, rate, wait
) -> None:
    replicas = wait_target_replicas(wait, Demand(ready, 0, rate))
    assert ready / (replicas * rate) <= wait * (1 + 1e-9)
    if replicas > 1:
        assert ready / ((replicas - 1) * rate) > wait * (1 - 1e-9)


@given(
    st.integers(0, 10_000), st.integers(0, 10_000), rates, st.integers(1, 64), st.floats(0.1, 600)
)
def test_the_wait_target_keeps_the_replicas_running_jobs_occupy(
    ready, running, rate, slots, wait
) -> None:
    replicas = wait_target_replicas(wait, Demand(ready, running, rate, slots))
    assert replicas >= math.ceil(running / slots)
    assert wait_target_replicas(None, Demand(ready, running, rate, slots)) == 0


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.floats(0.001, 100), st.floats(0.1, 600))
def test_the_wait_target_grows_with_the_backlog_and_shrinks_with_the_rate(
    one, other, rate, wait
) -> None:
    low, high = min(one, other), max(one, other)
    assert wait_target_replicas(wait, Demand(low, 0, rate)) <= wait_target_replicas(
        wait, Demand(high, 0, rate)
    )
    assert wait_target_replicas(wait, Demand(high, 0, rate * 2)) <= wait_target_replicas(
        wait, Demand(high, 0, rate)
    )
    assert wait_target_replicas(None, Demand(high, 0, rate)) == 0
    assert wait_target_replicas(wait, Demand(high, 0, None)) == 0


@given(waited(), st.floats(0.001, 1000))
def test_the_depth_probe_counts_far_enough_for_the_wait_target(config, rate) -> None:
    cap = config.depth_cap_at(rate)
    assert cap >= config.depth_cap
    # a backlog at the cap already asks for max_replicas, so counting further changes nothing
    at_cap = target_replicas(config, Demand(cap, 0, rate), 1)
    beyond = target_replicas(config, Demand(cap * 10, 0, rate), 1)
    assert at_cap == beyond


def test_a_slow_backlog_gets_more_replicas_than_the_ratio_gives() -> None:
    # 40 jobs of 2 s on 3 slots: a replica does 1.5 jobs/s; 40 ready within 5 s needs 6
    config = ScalingConfig(max_replicas=20, jobs_per_replica=10, target_wait_seconds=5)
    decision = decide(config, 0, Demand(40, 0, 1.5), PolicyState(), 0.0)
    assert decision.replicas == 6 and decision.reason is Reason.SCALE_UP
    assert decide(config, 0, Demand(40, 0), PolicyState(), 0.0).replicas == 4
