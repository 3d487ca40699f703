"""`report_generation`: turn a dataset in the payload into a CSV or JSON report file.

Payload: `report_type` (names the report and its file), `rows` (objects, or lists matched to
`columns`), optional `columns`, `format` (csv|json), `title`, `group_by` with `aggregations`
(count/sum/avg/min/max per group), `sort_by`, `descending` and `limit`. See docs/handlers.md.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from worker.handlers.base import JobContext, registry
from worker.handlers.config import handler_settings
from worker.handlers.payload import (
    InvalidPayload,
    choice,
    nested,
    optional_bool,
    optional_int,
    optional_str,
    payload_model,
    require_str,
    str_list,
)
from worker.handlers.storage import safe_file_stem, save_output

MAX_ROWS = 1_000_000
AGGREGATE_OPS = ("count", "sum", "avg", "min", "max")
# Spreadsheets run cells that start with these as formulas; a leading quote keeps them text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Row = dict[str, Any]


@dataclass(frozen=True)
class Aggregation:
    op: str
    column: str | None
    output: str


def read_dataset(payload: dict[str, Any]) -> tuple[list[str], list[Row]]:
    """The columns and the rows as dicts, from object rows or from `columns` + list rows."""
    rows = payload.get("rows")
    if rows is None:
        raise InvalidPayload("rows", "is required (a list of objects, or of lists with columns)")
    if not isinstance(rows, list):
        raise InvalidPayload("rows", f"must be a list, got {type(rows).__name__}")
    if len(rows) > MAX_ROWS:
        raise InvalidPayload("rows", f"holds {len(rows)} rows; the limit is {MAX_ROWS}")
    columns = str_list(payload, "columns", required=False) if "columns" in payload else None
    if columns is not None and len(set(columns)) != len(columns):
        raise InvalidPayload("columns", "names a column twice")
    records: list[Row] = []
    seen: dict[str, None] = {}
    for index, row in enumerate(rows):
        if isinstance(row, dict):
            records.append(row)
            seen.update(dict.fromkeys(row))
        elif isinstance(row, list):
            if columns is None:
                raise InvalidPayload("columns", "is required when rows are lists")
            if len(row) != len(columns):
                problem = f"has {len(row)} values but there are {len(columns)} columns"
                raise InvalidPayload(f"rows[{index}]", problem)
            records.append(dict(zip(columns, row, strict=True)))
        else:
            raise InvalidPayload(f"rows[{index}]", "must be an object or a list")
    if columns is None:
        columns = list(seen)
    return columns, [{name: record.get(name) for name in columns} for record in records]


def read_aggregations(payload: dict[str, Any], columns: list[str]) -> list[Aggregation]:
    specs = payload.get("aggregations")
    if specs is None:
        return [Aggregation("count", None, "count")] if payload.get("group_by") else []
    if not isinstance(specs, list) or not specs:
        raise InvalidPayload("aggregations", "must be a non-empty list of {op, column, as}")
    aggregations = []
    for index, spec in enumerate(specs):
        field = f"aggregations[{index}]"
        if not isinstance(spec, dict):
            raise InvalidPayload(field, "must be an object like {'op': 'sum', 'column': 'x'}")
        with nested(field):
            op = choice(spec, "op", AGGREGATE_OPS, default=None)
            column = optional_str(spec, "column")
            if column is None and op != "count":
                raise InvalidPayload("column", f"is required for {op}")
            if column is not None and column not in columns:
                raise InvalidPayload("column", f"unknown column {column!r}")
            output = optional_str(spec, "as") or (op if column is None else f"{op}_{column}")
        aggregations.append(Aggregation(op, column, output))
    outputs = [a.output for a in aggregations]
    if len(set(outputs)) != len(outputs):
        raise InvalidPayload("aggregations", "two aggregations share an output name; set 'as'")
    return aggregations


def _aggregate(agg: Aggregation, rows: list[tuple[int, Row]]) -> Any:
    if agg.column is None:
        return len(rows)
    values = []
    for index, row in rows:
        value = row[agg.column]
        if value is None:
            continue
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if not numeric and (agg.op in ("sum", "avg") or not isinstance(value, str)):
            wanted = "a number" if agg.op in ("sum", "avg") else "a number or a string"
            problem = f"must be {wanted} for {agg.op}, got {value!r}"
            raise InvalidPayload(f"rows[{index}].{agg.column}", problem)
        values.append(value)
    if agg.op == "count":
        return len(values)
    if agg.op == "sum":
        return sum(values)
    if not values:
        return None
    if agg.op == "avg":
        return sum(values) / len(values)
    if len({isinstance(v, str) for v in values}) > 1:
        problem = f"mixes numbers and strings, so {agg.op} is undefined"
        raise InvalidPayload(f"rows[*].{agg.column}", problem)
    return min(values) if agg.op == "min" else max(values)


def summarize(
    columns: list[str], rows: list[Row], group_by: list[str], aggregations: list[Aggregation]
) -> tuple[list[str], list[Row]]:
    """One row per group (in first-seen order), or one row overall when there is no group."""
    for index, name in enumerate(group_by):
        if name not in columns:
            raise InvalidPayload(f"group_by[{index}]", f"unknown column {name!r}")
    groups: dict[tuple[Any, ...], list[tuple[int, Row]]] = {}
    for index, row in enumerate(rows):
        key = tuple(row[name] for name in group_by)
        try:
            groups.setdefault(key, []).append((index, row))
        except TypeError:
            raise InvalidPayload(f"rows[{index}]", "a group_by value is a list or object") from None
    if not group_by and not groups:
        groups = {(): []}  # a total over no rows is still one row: count 0
    outputs = [a.output for a in aggregations]
    clash = set(group_by) & set(outputs)
    if clash:
        raise InvalidPayload("aggregations", f"output name {sorted(clash)[0]!r} is a group column")
    result = [
        {
            **dict(zip(group_by, key, strict=True)),
            **{a.output: _aggregate(a, members) for a in aggregations},
        }
        for key, members in groups.items()
    ]
    return [*group_by, *outputs], result


def _sort_key(value: Any) -> tuple[bool, bool, Any]:
    return (value is None, isinstance(value, str), 0 if value is None else value)


def order_and_limit(payload: dict[str, Any], columns: list[str], rows: list[Row]) -> list[Row]:
    sort_by = str_list(payload, "sort_by", required=False)
    descending = optional_bool(payload, "descending", default=False)
    for index, name in enumerate(sort_by):
        if name not in columns:
            field = "sort_by" if isinstance(payload["sort_by"], str) else f"sort_by[{index}]"
            raise InvalidPayload(field, f"unknown column {name!r}; columns: {', '.join(columns)}")
    if sort_by:
        try:
            rows = sorted(
                rows, key=lambda r: [_sort_key(r[n]) for n in sort_by], reverse=descending
            )
        except TypeError:
            raise InvalidPayload("sort_by", "a sorted column holds lists or objects") from None
    limit = optional_int(payload, "limit", minimum=1, maximum=MAX_ROWS)
    return rows[:limit] if limit else rows


def _csv_cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def render(fmt: str, columns: list[str], rows: list[Row], meta: dict[str, Any]) -> bytes:
    if fmt == "json":
        document = {**meta, "columns": columns, "row_count": len(rows), "rows": rows}
        return json.dumps(document, ensure_ascii=False, indent=2, default=str).encode() + b"\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: CRLF line ends, quotes where needed
    writer.writerow(columns)
    writer.writerows([_csv_cell(row[name]) for name in columns] for row in rows)
    return buffer.getvalue().encode()


@payload_model("report_generation")
def check_payload(payload: dict[str, Any]) -> None:
    """The fields the API can check cheaply; sorting and limits are checked by the worker,
    against the report's columns after grouping."""
    require_str(payload, "report_type")
    choice(payload, "format", ("csv", "json"), default="csv")
    optional_str(payload, "title")
    columns, _ = read_dataset(payload)
    str_list(payload, "group_by", required=False)
    read_aggregations(payload, columns)


def build_report(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Validate, compute and write the report (blocking; runs in a thread)."""
    report_type = require_str(payload, "report_type")
    fmt = choice(payload, "format", ("csv", "json"), default="csv")
    title = optional_str(payload, "title") or report_type
    columns, rows = read_dataset(payload)
    source_rows = len(rows)
    ctx.progress(0.1, f"read {source_rows} rows")
    group_by = str_list(payload, "group_by", required=False)
    aggregations = read_aggregations(payload, columns)
    if group_by or aggregations:
        columns, rows = summarize(columns, rows, group_by, aggregations)
    rows = order_and_limit(payload, columns, rows)
    ctx.progress(0.6, f"computed {len(rows)} report rows")
    meta = {
        "report_type": report_type,
        "title": title,
        "job_id": ctx.job_id,
        "generated_at": datetime.now(UTC).isoformat(),
    }
    data = render(fmt, columns, rows, meta)
    name = f"{safe_file_stem(report_type, fallback='report')}-job{ctx.job_id}.{fmt}"
    result = save_output(
        handler_settings().reports_dir,
        name,
        data,
        format=fmt,
        report_type=report_type,
        title=title,
        columns=columns,
        row_count=len(rows),
        source_rows=source_rows,
    )
    ctx.progress(1.0, f"wrote {name}")
    return result


@registry.register("report_generation", timeout_seconds=300)
async def generate_report(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    return await asyncio.to_thread(build_report, payload, ctx)
