"""The machinery under worker.settings: a `Part` is a component's settings, read from the
environment, that takes flat names meant for it; and the small types and checks every part
shares. worker.settings declares the parts themselves."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, BeforeValidator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


def env_name(name: str) -> AliasChoices:
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
