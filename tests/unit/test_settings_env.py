"""Each settings part reads the environment as it did under pydantic-settings
(worker.settings_base says why it no longer imports it): every part of worker.settings is
compared, case by case, with a twin built on pydantic-settings' BaseSettings from the same
fields, on what each reads, which fields count as set, and each error's field, message and
input."""

from __future__ import annotations

import os
from typing import Annotated, Any, get_origin

import pytest
from pydantic import BaseModel, ValidationError, create_model, field_validator

from worker import settings as settings_module
from worker.settings_base import Part, _part_type

pydantic_settings = pytest.importorskip("pydantic_settings")

PARTS = [
    value
    for value in vars(settings_module).values()
    if isinstance(value, type) and issubclass(value, Part) and value is not Part
]
# (environment, keywords): seed names, prefixed names, field names as variables, case, lists,
# empty values, bad values, keywords against the environment, keywords in another case
CASES: list[tuple[dict[str, str], dict[str, Any]]] = [
    ({}, {}),
    ({"max_concurrent_jobs": "5", "Jobqueue_Lease_Seconds": "3", "DEBUG": "1"}, {}),
    ({"LEASE_SECONDS": "7", "WORKER_PORT": "1234", "API_PORT": "9", "OTEL": "true"}, {}),
    ({"KUBECONFIG": "/k", "WORKER_NAME": "wn", "DB_URL": "h/db", "SMTP_PORT": "25"}, {}),
    ({"JOBQUEUE_WORKER_NAME": "a", "POD_NAME": "b", "POD_NAMESPACE": "n"}, {}),
    ({"POD_NAME": "b", "JOBQUEUE_POD_NAMESPACE": "m", "POD_NAMESPACE": "n"}, {}),
    ({"JOBQUEUE_LEASE_SECONDS": "9", "LEASE_SECONDS": "7", "JOBQUEUE_DB_URL": "x/y"}, {}),
    ({"WORKER_QUEUES": "a, b,,c", "JOBQUEUE_EMAILS_ALLOWED_DOMAINS": ".Example.com, b.ORG"}, {}),
    ({"WORKER_QUEUES": "", "JOBQUEUE_HANDLER_MODULES": '["a", "b"]'}, {}),
    ({"MAX_CONCURRENT_JOBS": "0", "JOBQUEUE_LEASE_SECONDS": "-1", "JOBQUEUE_SMTP_PORT": "x"}, {}),
    ({"JOBQUEUE_API_PORT": "x", "JOBQUEUE_CONTROLLER_INTERVAL": "0", "DEBUG": "maybe"}, {}),
    ({"JOBQUEUE_LOG_FORMAT": "xml", "JOBQUEUE_SMTP_TLS": "bogus", "POLL_INTERVAL": "nan"}, {}),
    ({"JOBQUEUE_JOB_TIMEOUT": "", "JOBQUEUE_SMTP_HOST": "", "JOBQUEUE_READ_DB_URL": ""}, {}),
    ({"LEASE_SECONDS": "-1", "JOBQUEUE_DB_URL": "mysql://x", "api_port": "0"}, {}),
    ({"JOBQUEUE_JOB_TIMEOUT": "null", "JOBQUEUE_LOG_FORMAT": "json", "DB_URL": "mysql://x"}, {}),
    ({"MAX_CONCURRENT_JOBS": "5", "JOBQUEUE_OUTBOX_DIR": "/env"}, {"max_concurrent_jobs": 2}),
    ({"MAX_CONCURRENT_JOBS": "0"}, {"MAX_CONCURRENT_JOBS": 2, "outbox_dir": "/o"}),
    ({}, {"max_concurrent_jobs": 0, "JOBQUEUE_LEASE_SECONDS": -1, "api_pool_min": 0}),
    ({"POD_NAME": "p"}, {"worker_name": "w", "Db_Url": "k/w", "unknown": 1}),
    ({"JOBQUEUE_WORKER_NAME": "j"}, {"POD_NAME": "w", "worker_queues": "a,b"}),
    ({}, {"worker_queues": [], "images_max_pixels": 0, "smtp_port": "x", "debug": "no"}),
]


def twins(part: type[Part]) -> tuple[type[BaseModel], type[BaseModel]]:
    """`part`'s own settings (not the parts it holds, whose errors would come first) twice: on
    Part, and on pydantic-settings' BaseSettings as worker.settings_base declared them."""
    fields: dict[str, Any] = {}
    for name, field in part.model_fields.items():
        if not _part_type(field):
            fields[name] = (field.annotation, field)
    validators = {
        name: field_validator(*found.info.fields, mode=found.info.mode)(
            classmethod(found.func.__func__)  # the part's own, unbound from the part
        )
        for name, found in part.__pydantic_decorators__.field_validators.items()
    }
    config = pydantic_settings.SettingsConfigDict(extra="ignore", populate_by_name=True)
    base = type("Reference", (pydantic_settings.BaseSettings,), {"model_config": config})
    reference_fields = {
        # CsvList: pydantic-settings would decode a list as JSON without NoDecode
        name: (Annotated[kind, pydantic_settings.NoDecode], field)
        if get_origin(kind) is list
        else (kind, field)
        for name, (kind, field) in fields.items()
    }
    mine = create_model(part.__name__, __base__=Part, __validators__=validators, **fields)
    reference = create_model(
        part.__name__, __base__=base, __validators__=validators, **reference_fields
    )
    return mine, reference


def own(part: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """What a part's own settings read: the values, or each error."""
    try:
        model = part(**values)
    except ValidationError as exc:
        return {"errors": [(e["loc"], e["msg"], e["input"]) for e in exc.errors()]}
    return {"values": model.model_dump(), "set": sorted(model.model_fields_set)}


@pytest.mark.parametrize("part", PARTS, ids=lambda part: part.__name__)
def test_each_part_reads_what_pydantic_settings_read(
    part: type[Part], monkeypatch: pytest.MonkeyPatch
) -> None:
    mine, reference = twins(part)
    for environ, keywords in CASES:
        for name in os.environ:
            monkeypatch.delenv(name)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        # the part's own keywords only: a part hands the others to the parts it holds
        assert own(mine, keywords) == own(reference, keywords), (environ, keywords)
