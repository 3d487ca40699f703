"""The machinery under worker.settings: a `Part` is a component's settings, read from the
environment, that takes flat names meant for it; and the small types and checks every part
shares. worker.settings declares the parts themselves.

A part reads the environment itself (_values_from) rather than through pydantic-settings:
importing that library cost `jobqueue worker` about 35 ms of CPU of its cold start (issue 27),
for an environment read of a few lines. The rules are pydantic-settings' (case_sensitive off,
no prefix, populate_by_name on, no .env or secrets files), which
tests/unit/test_settings_env.py checks against pydantic-settings itself:

- A field answers to its validation alias's choices, in order, then to its own name, without
  regard to case, both as a keyword and as an environment variable (so `LEASE_SECONDS` sets
  lease_seconds as `JOBQUEUE_LEASE_SECONDS` does).
- A value given as a keyword wins over the environment, field by field.
- A value keeps a key that a validation error names: a keyword as written (one in another case
  as the first alias); a variable as the field's first alias, or as the field's name when that
  is what matched.
- Environment values reach pydantic as strings; lists are comma-separated (CsvList), never
  decoded as JSON.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict
from pydantic.fields import FieldInfo


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


# A comma-separated list in the environment, a list in Python (never decoded as JSON).
CsvList = Annotated[list[str], BeforeValidator(_split_csv)]


def _part_type(field: FieldInfo) -> type[Part] | None:
    kind = field.annotation
    return kind if isinstance(kind, type) and issubclass(kind, Part) else None


class Part(BaseModel):
    """A component's settings. Built from the environment like the whole; flat names given
    to a model that holds parts go to the part that declares them. Given values win over the
    environment; each part reads its own variables itself."""

    # validate_default: a default passes the field's checks too, as it did under
    # pydantic-settings' BaseSettings
    model_config = ConfigDict(extra="ignore", populate_by_name=True, validate_default=True)

    def __init__(self, **values: Any) -> None:
        scalars = {
            name: field for name, field in type(self).model_fields.items() if not _part_type(field)
        }
        super().__init__(**_values_from(scalars, _hand_to_parts(type(self), values)))

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


def _field_names(name: str, field: FieldInfo) -> list[str]:
    """The names a field answers to, in the order they are tried: its aliases, then its name."""
    names = _aliases(field)
    return names if name in names else [*names, name]


def _values_from(fields: Mapping[str, FieldInfo], given: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments for a part's model: `given`, and for each of `fields` (the part's
    own settings, not its parts) that `given` does not set, the environment's value."""
    out = dict(given)
    lowered_given: dict[str, str] = {}
    for key in given:
        lowered_given.setdefault(key.lower(), key)
    environ: dict[str, str] | None = None
    for name, field in fields.items():
        names = _field_names(name, field)
        if any(candidate in given for candidate in names):
            continue  # given under a name pydantic takes as it is
        loose = next((lowered_given[n.lower()] for n in names if n.lower() in lowered_given), None)
        if loose is not None:  # given in another case: pydantic-settings took it as the alias
            out[names[0]] = out.pop(loose)
            continue
        if environ is None:  # copied once a part, as the environment may change between parts
            environ = {key.lower(): value for key, value in os.environ.items()}
        for candidate in names:
            value = environ.get(candidate.lower())
            if value is not None:
                # under its first alias, or its name: the key that errors name
                out[name if candidate == name else names[0]] = value
                break
    return out
