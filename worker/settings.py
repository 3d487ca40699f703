"""The settings, read from the environment in this one module, in one part per component.

`Settings` is the whole: the shared database URL and logging, and one part each for the worker
(with the handlers' own part inside it), the API and the controller. Each component's entry
point takes only its part; the database URL travels beside it as a DSN. A part keeps the field
names the flat settings had (`settings.worker.lease_seconds`), so moving a field into its part
is one line, and `Settings(lease_seconds=2, api_token="t")` still hands each name to its part.

The seed's names (DB_URL, MAX_CONCURRENT_JOBS, WORKER_QUEUES, POLL_INTERVAL, DEBUG) keep
working; everything newer carries the JOBQUEUE_ prefix.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BeforeValidator, Field, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


def _env(name: str) -> AliasChoices:
    """Accept the prefixed name (JOBQUEUE_X) only."""
    return AliasChoices(f"JOBQUEUE_{name}")


def normalize_dsn(raw: str) -> str:
    """Turn the seed's `user:pass@host:port/db` into a postgresql:// URL; keep full URLs."""
    raw = raw.strip()
    if not raw:
        raise ValueError("DB_URL is empty")
    if "://" in raw:
        scheme = raw.split("://", 1)[0]
        if scheme not in ("postgresql", "postgres"):
            raise ValueError(f"DB_URL scheme must be postgresql://, got {scheme}://")
        return raw
    return f"postgresql://{raw}"


def describe_dsn(dsn: str) -> str:
    """host:port/db of a DSN, without credentials, for error messages."""
    parts = urlsplit(normalize_dsn(dsn))
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    return f"{host}:{port}{parts.path or '/'}"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# A comma-separated list in the environment, a list in Python.
CsvList = Annotated[list[str], NoDecode, BeforeValidator(_split_csv)]


# Read by more than one part, under one variable: each declared once, here.
def _handler_modules() -> Any:
    return Field(default_factory=list, validation_alias=_env("HANDLER_MODULES"))


def _drain_timeout() -> Any:
    return Field(default=25.0, ge=0, validation_alias=_env("DRAIN_TIMEOUT"))


def _debug() -> Any:
    return Field(default=False, validation_alias="DEBUG")


def _part_type(field: FieldInfo) -> type[Part] | None:
    kind = field.annotation
    return kind if isinstance(kind, type) and issubclass(kind, Part) else None


class _ScalarsFromEnv(EnvSettingsSource):
    """The environment fills a model's own fields; a part reads its own variables itself."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if _part_type(field) is not None:
            return None, field_name, False
        return super().get_field_value(field, field_name)


class Part(BaseSettings):
    """A component's settings. Built from the environment like the whole; flat names given
    to a model that holds parts go to the part that declares them."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    def __init__(self, **values: Any) -> None:
        super().__init__(**_hand_to_parts(type(self), values))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _ScalarsFromEnv(settings_cls)

    @classmethod
    def flat_names(cls) -> set[str]:
        """Every name this part answers to, its own parts' included."""
        names: set[str] = set()
        for name, field in cls.model_fields.items():
            part = _part_type(field)
            names |= part.flat_names() if part else {name, *_aliases(field)}
        return names


def _aliases(field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return [alias] if isinstance(alias, str) else []


def _hand_to_parts(model: type[Part], values: dict[str, Any]) -> dict[str, Any]:
    """Build each part from the flat names it declares (a name two parts declare, such as
    handler_modules, goes to both) and from the environment."""
    out = dict(values)
    for name, field in model.model_fields.items():
        part = _part_type(field)
        if part is None or isinstance(values.get(name), part):
            continue
        given = {key: value for key, value in values.items() if key in part.flat_names()}
        given.update(values.get(name) or {})
        out[name] = part(**given)
    return out


class SmtpSettings(Part):
    """The emails handler's server; without smtp_host it writes .eml files to outbox_dir."""

    smtp_host: str | None = Field(default=None, validation_alias=_env("SMTP_HOST"))
    smtp_port: int = Field(default=587, ge=1, le=65535, validation_alias=_env("SMTP_PORT"))
    smtp_username: str | None = Field(default=None, validation_alias=_env("SMTP_USERNAME"))
    smtp_password: str | None = Field(default=None, validation_alias=_env("SMTP_PASSWORD"))
    smtp_tls: str = Field(
        default="starttls", pattern="^(none|starttls|tls)$", validation_alias=_env("SMTP_TLS")
    )
    smtp_from: str = Field(default="jobqueue@localhost", validation_alias=_env("SMTP_FROM"))
    smtp_ca_file: str | None = Field(default=None, validation_alias=_env("SMTP_CA_FILE"))


class HandlerSettings(Part):
    """What handlers get as `ctx.config`: their folders and SMTP, never the database URL or
    the API token."""

    outbox_dir: str = Field(default="./outbox", validation_alias=_env("OUTBOX_DIR"))
    reports_dir: str = Field(default="./reports", validation_alias=_env("REPORTS_DIR"))
    images_dir: str = Field(default="./images", validation_alias=_env("IMAGES_DIR"))
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)


class TracingSettings(Part):
    """OpenTelemetry (docs/tracing.md), a part of the worker's and of the API's: off unless
    asked for, so that an image that carries the otel extra traces nothing until told to."""

    otel: bool = Field(default=False, validation_alias=_env("OTEL"))
    # OpenTelemetry's own variable: otlp, console, none, or a comma-separated list. Checked
    # only when tracing is on (worker.tracing), as a platform may set it for other programs.
    # The SDK reads the exporter's OTEL_EXPORTER_OTLP_* and OTEL_SERVICE_NAME itself.
    otel_traces_exporter: str = Field(
        default="otlp", validation_alias=AliasChoices("OTEL_TRACES_EXPORTER")
    )
    # "module:function" that installs a tracer provider of its own instead (tests, samplers)
    otel_configure: str | None = Field(default=None, validation_alias=_env("OTEL_CONFIGURE"))


class WorkerSettings(Part):
    """`jobqueue worker`: the runtime, and the handlers' part it hands to each job."""

    max_concurrent_jobs: int = Field(
        default=3, ge=1, le=10_000, validation_alias="MAX_CONCURRENT_JOBS"
    )
    worker_queues: CsvList = Field(
        default_factory=lambda: ["default"], validation_alias="WORKER_QUEUES"
    )
    poll_interval: float = Field(default=1.0, gt=0, le=3600, validation_alias="POLL_INTERVAL")
    worker_name: str = Field(
        default_factory=socket.gethostname,  # POD_NAME, when set, comes through the alias
        validation_alias=AliasChoices("JOBQUEUE_WORKER_NAME", "POD_NAME"),
    )
    lease_seconds: float = Field(default=30.0, gt=0, validation_alias=_env("LEASE_SECONDS"))
    heartbeat_seconds: float = Field(default=5.0, gt=0, validation_alias=_env("HEARTBEAT_SECONDS"))
    drain_timeout: float = _drain_timeout()
    rescue_interval: float = Field(default=10.0, gt=0, validation_alias=_env("RESCUE_INTERVAL"))
    rescue_enabled: bool = Field(default=True, validation_alias=_env("RESCUE_ENABLED"))
    retention_seconds: float = Field(
        default=7 * 24 * 3600, ge=0, validation_alias=_env("RETENTION_SECONDS")
    )
    retention_interval: float = Field(
        default=300.0, gt=0, validation_alias=_env("RETENTION_INTERVAL")
    )
    retention_batch: int = Field(default=5000, ge=1, validation_alias=_env("RETENTION_BATCH"))
    backoff_base: float = Field(default=2.0, ge=0, validation_alias=_env("BACKOFF_BASE"))
    backoff_max: float = Field(default=3600.0, ge=0, validation_alias=_env("BACKOFF_MAX"))
    default_job_timeout: float | None = Field(
        default=None, gt=0, validation_alias=_env("JOB_TIMEOUT")
    )
    ack_batch_size: int = Field(default=200, ge=1, validation_alias=_env("ACK_BATCH_SIZE"))
    handler_modules: CsvList = _handler_modules()
    worker_port: int = Field(default=9100, ge=0, le=65535, validation_alias=_env("WORKER_PORT"))
    handlers: HandlerSettings = Field(default_factory=HandlerSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    # --- scheduling (the periodic scheduler runs in every worker; snoozes are acknowledged here)
    scheduler_enabled: bool = Field(default=True, validation_alias=_env("SCHEDULER_ENABLED"))
    scheduler_interval: float = Field(
        default=5.0, gt=0, le=3600, validation_alias=_env("SCHEDULER_INTERVAL")
    )
    schedule_grace_seconds: float = Field(
        default=30.0, gt=0, validation_alias=_env("SCHEDULE_GRACE_SECONDS")
    )
    max_snoozes: int = Field(default=100, ge=0, validation_alias=_env("MAX_SNOOZES"))
    # --- plain `def` handlers run in a bounded thread pool (worker/runtime/threads.py);
    # unset: one thread per job slot (MAX_CONCURRENT_JOBS)
    sync_handler_threads: int | None = Field(
        default=None, ge=1, le=10_000, validation_alias=_env("SYNC_HANDLER_THREADS")
    )
    # each job's start and completion at INFO rather than DEBUG (failures are always logged)
    log_jobs: bool = Field(default=False, validation_alias=_env("LOG_JOBS"))

    @field_validator("worker_queues")
    @classmethod
    def _queues_not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("WORKER_QUEUES must name at least one queue")
        return value


class ApiSettings(Part):
    """`jobqueue api`."""

    api_host: str = Field(default="0.0.0.0", validation_alias=_env("API_HOST"))
    api_port: int = Field(default=8001, ge=1, le=65535, validation_alias=_env("API_PORT"))
    api_token: str | None = Field(default=None, validation_alias=_env("API_TOKEN"))
    api_protect_probes: bool = Field(default=False, validation_alias=_env("API_PROTECT_PROBES"))
    api_pool_min: int = Field(default=1, ge=1, validation_alias=_env("API_POOL_MIN"))
    api_pool_max: int = Field(default=10, ge=1, validation_alias=_env("API_POOL_MAX"))
    api_max_batch: int = Field(default=1000, ge=1, validation_alias=_env("API_MAX_BATCH"))
    api_max_payload_bytes: int = Field(
        default=256 * 1024, ge=1, validation_alias=_env("API_MAX_PAYLOAD_BYTES")
    )
    # uvicorn worker processes, each with its own pool of api_pool_min..api_pool_max
    api_workers: int = Field(default=1, ge=1, le=64, validation_alias=_env("API_WORKERS"))
    # a batch request's whole body; each job's payload is still capped by the line above
    api_max_batch_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1, validation_alias=_env("API_MAX_BATCH_BYTES")
    )
    allow_unknown_job_types: bool = Field(
        default=False, validation_alias=_env("ALLOW_UNKNOWN_JOB_TYPES")
    )
    # the job types it accepts are the built-ins and these modules' handlers
    handler_modules: CsvList = _handler_modules()
    # uvicorn's graceful shutdown
    drain_timeout: float = _drain_timeout()
    # uvicorn's log level and access log
    debug: bool = _debug()
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    # --- scheduling: bulk retry and cancel
    bulk_batch_size: int = Field(
        default=1000, ge=1, le=100_000, validation_alias=_env("BULK_BATCH_SIZE")
    )
    bulk_time_budget: float = Field(
        default=10.0, gt=0, le=300, validation_alias=_env("BULK_TIME_BUDGET")
    )


class ControllerSettings(Part):
    """`jobqueue controller`."""

    controller_namespaces: CsvList = Field(
        default_factory=list, validation_alias=_env("CONTROLLER_NAMESPACES")
    )
    controller_cluster_wide: bool = Field(
        default=False, validation_alias=_env("CONTROLLER_CLUSTER_WIDE")
    )
    controller_interval: float = Field(
        default=1.0, gt=0, validation_alias=_env("CONTROLLER_INTERVAL")
    )
    controller_port: int = Field(
        default=9200, ge=0, le=65535, validation_alias=_env("CONTROLLER_PORT")
    )
    controller_lease_name: str = Field(
        default="jobqueue-controller", validation_alias=_env("CONTROLLER_LEASE_NAME")
    )
    controller_lease_namespace: str | None = Field(
        default=None, validation_alias=_env("CONTROLLER_LEASE_NAMESPACE")
    )
    controller_lease_seconds: float = Field(
        default=15.0, gt=0, validation_alias=_env("CONTROLLER_LEASE_SECONDS")
    )
    controller_identity: str = Field(
        default_factory=lambda: os.environ.get("POD_NAME") or socket.gethostname(),
        validation_alias=_env("CONTROLLER_IDENTITY"),
    )
    controller_status_interval: float = Field(
        default=10.0, ge=0, validation_alias=_env("CONTROLLER_STATUS_INTERVAL")
    )
    controller_db_timeout: float = Field(
        default=5.0, gt=0, validation_alias=_env("CONTROLLER_DB_TIMEOUT")
    )
    # capacity-aware scaling: the completion window, and how long decisions are kept
    controller_rate_window: float = Field(
        default=120.0, gt=0, le=86400, validation_alias=_env("CONTROLLER_RATE_WINDOW")
    )
    controller_decisions_keep: float = Field(
        default=7 * 86400.0, gt=0, validation_alias=_env("CONTROLLER_DECISIONS_KEEP")
    )
    pod_namespace: str | None = Field(
        default=None, validation_alias=AliasChoices("JOBQUEUE_POD_NAMESPACE", "POD_NAMESPACE")
    )
    kubeconfig: str | None = Field(default=None, validation_alias=AliasChoices("KUBECONFIG"))
    # kopf's own loggers
    debug: bool = _debug()


class Settings(Part):
    """The whole: what every process shares, and each component's part. The CLI and the dev
    stack, which compose the components, are its only holders."""

    # --- the seed's names, shared by every process
    db_url: str = Field(
        default="postgres:postgres@localhost:5432/jobqueue",
        validation_alias=AliasChoices("DB_URL", "JOBQUEUE_DB_URL"),
    )
    debug: bool = _debug()
    # unset: each process keeps its own format (worker.logs says which)
    log_format: Literal["plain", "json"] | None = Field(
        default=None, validation_alias=_env("LOG_FORMAT")
    )

    # --- the parts
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    controller: ControllerSettings = Field(default_factory=ControllerSettings)

    @field_validator("db_url")
    @classmethod
    def _normalize_db_url(cls, value: str) -> str:
        return normalize_dsn(value)

    @property
    def dsn(self) -> str:
        return self.db_url

    # --- new fields of an area go below, each in a block headed `# --- <area>`, until they
    # move into their part (one line each: a part keeps the field's name)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
