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
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator

from worker.settings_base import CsvList, Part, describe_dsn, normalize_dsn
from worker.settings_base import env_name as _env

__all__ = ["CsvList", "Part", "describe_dsn", "normalize_dsn"]  # re-exported for callers


# Read by more than one part, under one variable: each declared once, here.
def _handler_modules() -> Any:
    return Field(default_factory=list, validation_alias=_env("HANDLER_MODULES"))


def _drain_timeout() -> Any:
    return Field(default=25.0, ge=0, validation_alias=_env("DRAIN_TIMEOUT"))


def _debug() -> Any:
    return Field(default=False, validation_alias="DEBUG")


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


class HandlerLimits(Part):
    """What the built-in handlers refuse, checked by the API at enqueue (422) and by the
    worker again before the work (docs/security.md). Held by the worker's handlers and by the
    API, from the same variables."""

    # a built-in (or any registered) handler that is not to run: the API refuses its jobs
    disabled_handlers: CsvList = Field(
        default_factory=list, validation_alias=_env("DISABLED_HANDLERS")
    )
    # images_processing: the most pixels an output may have (width x height)
    images_max_pixels: int = Field(
        default=16_777_216, ge=1, le=10**9, validation_alias=_env("IMAGES_MAX_PIXELS")
    )
    # emails: recipients (to + cc + bcc) per job, and the domains they may be in (empty: any)
    emails_max_recipients: int = Field(
        default=50, ge=1, le=10_000, validation_alias=_env("EMAILS_MAX_RECIPIENTS")
    )
    emails_allowed_domains: CsvList = Field(
        default_factory=list, validation_alias=_env("EMAILS_ALLOWED_DOMAINS")
    )

    @field_validator("emails_allowed_domains")
    @classmethod
    def _lower_domains(cls, value: list[str]) -> list[str]:
        return [domain.lower().lstrip(".") for domain in value]


class HandlerSettings(Part):
    """The built-in handlers' settings (worker.handlers.config): their folders, SMTP and
    limits, never the database URL or the API token. User handlers do not see them."""

    outbox_dir: str = Field(default="./outbox", validation_alias=_env("OUTBOX_DIR"))
    reports_dir: str = Field(default="./reports", validation_alias=_env("REPORTS_DIR"))
    images_dir: str = Field(default="./images", validation_alias=_env("IMAGES_DIR"))
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    limits: HandlerLimits = Field(default_factory=HandlerLimits)
    # the address space of a memory-heavy handler's own process (worker.handlers.bounded):
    # past it the job fails for good, and the worker and its other jobs carry on
    handler_memory_mb: int = Field(
        default=256, ge=32, le=1024 * 1024, validation_alias=_env("HANDLER_MEMORY_MB")
    )


class DatabaseTimeouts(Part):
    """Limits on every statement of a component's pools (docs/security.md): the server's
    statement_timeout, and the client's wait for an answer a little longer (a server that
    stopped answering). 0 turns either off."""

    db_statement_timeout: float = Field(
        default=30.0, ge=0, le=86400, validation_alias=_env("DB_STATEMENT_TIMEOUT")
    )
    db_command_timeout: float = Field(
        default=35.0, ge=0, le=86400, validation_alias=_env("DB_COMMAND_TIMEOUT")
    )
    # the longest wait for a free connection of a pool (then a 503, or a retry)
    db_acquire_timeout: float = Field(
        default=10.0, gt=0, le=3600, validation_alias=_env("DB_ACQUIRE_TIMEOUT")
    )

    def connect_kwargs(self, server_settings: dict[str, str] | None = None) -> dict[str, Any]:
        """asyncpg's arguments for a pool or connection under these limits. A transaction
        left idle (a bug, a cut client) is ended too, so that it cannot pin the xmin horizon."""
        statement_ms = int(self.db_statement_timeout * 1000)
        limits = {
            "statement_timeout": str(statement_ms),
            "idle_in_transaction_session_timeout": str(max(60_000, 2 * statement_ms)),
        }
        return {
            "server_settings": {**limits, **(server_settings or {})},
            "command_timeout": self.db_command_timeout or None,
        }


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
    timeouts: DatabaseTimeouts = Field(default_factory=DatabaseTimeouts)
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


class ApiAccess(Part):
    """Who may reach the API and from where, beyond its tokens (docs/security.md)."""

    # serve without any token on a non-loopback address (a warning at every start)
    api_insecure: bool = Field(default=False, validation_alias=_env("API_INSECURE"))
    # Host headers answered; empty: loopback names when bound to loopback (no DNS
    # rebinding), any otherwise
    api_allowed_hosts: CsvList = Field(
        default_factory=list, validation_alias=_env("API_ALLOWED_HOSTS")
    )
    # origins besides the API's own whose browsers may POST, PATCH or DELETE
    api_allowed_origins: CsvList = Field(
        default_factory=list, validation_alias=_env("API_ALLOWED_ORIGINS")
    )
    # proxies whose X-Forwarded-For and -Proto are believed (uvicorn's forwarded_allow_ips)
    api_forwarded_allow_ips: str | None = Field(
        default=None, validation_alias=_env("API_FORWARDED_ALLOW_IPS")
    )
    console_session_seconds: float = Field(
        default=8 * 3600.0, gt=0, le=90 * 86400.0, validation_alias=_env("CONSOLE_SESSION_SECONDS")
    )
    # Secure cookies even when the request looks like plain HTTP (TLS ends at a proxy)
    console_secure_cookies: bool = Field(
        default=False, validation_alias=_env("CONSOLE_SECURE_COOKIES")
    )
    # console login attempts per client address per minute, per API process
    console_login_per_minute: int = Field(
        default=10, ge=1, le=10_000, validation_alias=_env("CONSOLE_LOGIN_PER_MINUTE")
    )


class ApiSettings(Part):
    """`jobqueue api`."""

    api_host: str = Field(default="0.0.0.0", validation_alias=_env("API_HOST"))
    api_port: int = Field(default=8001, ge=1, le=65535, validation_alias=_env("API_PORT"))
    # the scopes of DESIGN.md's Tokens contract: admin, read, enqueue
    api_token: str | None = Field(default=None, validation_alias=_env("API_TOKEN"))
    api_read_token: str | None = Field(default=None, validation_alias=_env("API_READ_TOKEN"))
    api_enqueue_token: str | None = Field(default=None, validation_alias=_env("API_ENQUEUE_TOKEN"))
    api_protect_probes: bool = Field(default=False, validation_alias=_env("API_PROTECT_PROBES"))
    access: ApiAccess = Field(default_factory=ApiAccess)
    api_pool_min: int = Field(default=1, ge=1, validation_alias=_env("API_POOL_MIN"))
    api_pool_max: int = Field(default=10, ge=1, validation_alias=_env("API_POOL_MAX"))
    # lists, stats and the console: their own pool, on a replica when one is named
    read_db_url: str | None = Field(default=None, validation_alias=_env("READ_DB_URL"))
    api_read_pool_max: int = Field(
        default=4, ge=1, le=1000, validation_alias=_env("API_READ_POOL_MAX")
    )
    timeouts: DatabaseTimeouts = Field(default_factory=DatabaseTimeouts)
    api_max_batch: int = Field(default=1000, ge=1, validation_alias=_env("API_MAX_BATCH"))
    api_max_payload_bytes: int = Field(
        default=256 * 1024, ge=1, validation_alias=_env("API_MAX_PAYLOAD_BYTES")
    )
    # uvicorn worker processes, each with its own pool of api_pool_min..api_pool_max
    api_workers: int = Field(default=1, ge=1, le=64, validation_alias=_env("API_WORKERS"))
    # a batch request's whole body; each job's payload is still capped by the line above
    api_max_batch_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1, validation_alias=_env("API_MAX_BATCH_BYTES")
    )
    # any other request's body (POST /jobs: the payload cap plus room for its fields)
    api_max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, validation_alias=_env("API_MAX_BODY_BYTES")
    )
    # payload and result bytes in one page of GET /jobs; a page ends early past it
    api_max_list_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024, validation_alias=_env("API_MAX_LIST_BYTES")
    )
    max_schedules: int = Field(default=1000, ge=1, validation_alias=_env("MAX_SCHEDULES"))
    # distinct queue_name labels of the API's metrics; later queues count as "_other"
    metrics_max_queues: int = Field(
        default=100, ge=1, le=100_000, validation_alias=_env("METRICS_MAX_QUEUES")
    )
    allow_unknown_job_types: bool = Field(
        default=False, validation_alias=_env("ALLOW_UNKNOWN_JOB_TYPES")
    )
    # the job types it accepts are the built-ins and these modules' handlers
    handler_modules: CsvList = _handler_modules()
    handler_limits: HandlerLimits = Field(default_factory=HandlerLimits)
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

    @field_validator("read_db_url")
    @classmethod
    def _normalize_read_url(cls, value: str | None) -> str | None:
        return normalize_dsn(value) if value else None


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
    timeouts: DatabaseTimeouts = Field(default_factory=DatabaseTimeouts)
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

    # --- migrations (`jobqueue migrate`, worker.db.migrate_steps): how long one try waits for
    # a lock before it gives up (so that writes do not queue behind it), and how many tries
    migration_lock_timeout: float = Field(
        default=5.0, gt=0, le=600, validation_alias=_env("MIGRATION_LOCK_TIMEOUT")
    )
    migration_retries: int = Field(
        default=20, ge=0, le=1000, validation_alias=_env("MIGRATION_RETRIES")
    )
    # the roles the owner grants rights to once migrated (worker.db.grants; unset: none)
    db_runtime_role: str | None = Field(default=None, validation_alias=_env("DB_RUNTIME_ROLE"))
    db_readonly_role: str | None = Field(default=None, validation_alias=_env("DB_READONLY_ROLE"))

    # --- new fields of an area go below, each in a block headed `# --- <area>`, until they
    # move into their part (one line each: a part keeps the field's name)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
