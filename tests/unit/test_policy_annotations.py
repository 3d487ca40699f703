"""L2: the annotation contract parsed into the policy's configuration."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller import annotations as a
from controller.policy import ScalingConfig


def test_defaults_follow_the_design() -> None:
    config = a.parse({})
    assert config.queues == ("default",)
    assert config.scaling == ScalingConfig(
        min_replicas=0,
        max_replicas=10,
        jobs_per_replica=10,
        activation_jobs=0,
        scale_down_delay=60.0,
        paused=False,
    )


def test_every_annotation_is_read() -> None:
    config = a.parse(
        {
            a.QUEUES: "emails, reports,emails",
            a.MIN_REPLICAS: "1",
            a.MAX_REPLICAS: "7",
            a.JOBS_PER_REPLICA: "4",
            a.ACTIVATION_JOBS: "3",
            a.SCALE_DOWN_DELAY: "2.5s",
            a.PAUSED: "True",
        }
    )
    assert config.queues == ("emails", "reports")
    assert config.scaling == ScalingConfig(1, 7, 4, 3, 2.5, True)


@pytest.mark.parametrize(
    ("annotation", "value"),
    [
        (a.MIN_REPLICAS, "-1"),
        (a.MIN_REPLICAS, "one"),
        (a.MAX_REPLICAS, "0"),
        (a.MAX_REPLICAS, "2.5"),
        (a.JOBS_PER_REPLICA, "0"),
        (a.ACTIVATION_JOBS, "-3"),
        (a.SCALE_DOWN_DELAY, "soon"),
        (a.SCALE_DOWN_DELAY, "-5"),
        (a.SCALE_DOWN_DELAY, "nan"),
        (a.PAUSED, "maybe"),
        (a.QUEUES, " , "),
        # the capacity annotations (test_policy_capacity.py)
        (a.TARGET_WAIT_SECONDS, "0"),
        (a.TARGET_WAIT_SECONDS, "soon"),
        (a.CONCURRENCY, "0"),
        (a.CONCURRENCY, "-2"),
        (a.DB_CONNECTIONS_PER_REPLICA, "0"),
        (a.DB_CONNECTIONS_PER_REPLICA, "three"),
        (a.DB_RESERVED_CONNECTIONS, "-1"),
        # the autoscaling additions
        (a.IDLE_REPLICAS, "-1"),
        (a.IDLE_REPLICAS, "two"),
        (a.DB_PRESSURE_SECONDS, "-5"),
        (a.DB_PRESSURE_SECONDS, "a minute"),
    ],
)
def test_an_invalid_value_names_its_annotation(annotation: str, value: str) -> None:
    with pytest.raises(a.InvalidAnnotation) as caught:
        a.parse({annotation: value})
    assert caught.value.annotation == annotation
    assert annotation in str(caught.value)


def test_the_autoscaling_additions_default_and_parse() -> None:
    assert a.parse({}).scaling.idle_replicas == 0
    assert a.parse({}).capacity.db_pressure_seconds == 60.0
    config = a.parse({a.IDLE_REPLICAS: "2", a.DB_PRESSURE_SECONDS: "30s"})
    assert config.scaling.idle_replicas == 2
    assert config.capacity.db_pressure_seconds == 30.0


def test_min_above_max_names_min_replicas() -> None:
    with pytest.raises(a.InvalidAnnotation) as caught:
        a.parse({a.MIN_REPLICAS: "5", a.MAX_REPLICAS: "3"})
    assert caught.value.annotation == a.MIN_REPLICAS


def test_the_status_annotation_is_not_configuration() -> None:
    base = {a.QUEUES: "q", "other": "x"}
    with_status = {**base, a.STATUS: '{"depth": 3}'}
    assert a.config_fingerprint(base) == a.config_fingerprint(with_status)
    assert a.config_fingerprint(base) != a.config_fingerprint({**base, a.PAUSED: "true"})


@given(st.dictionaries(st.sampled_from(a.CONFIG_ANNOTATIONS), st.text(max_size=12)))
def test_any_annotations_parse_or_name_the_culprit(annotations: dict[str, str]) -> None:
    try:
        config = a.parse(annotations)
    except a.InvalidAnnotation as exc:
        assert exc.annotation in annotations
    else:
        assert 0 <= config.scaling.min_replicas <= config.scaling.max_replicas
        assert config.queues
