"""The `report_generation` handler: real CSV and JSON files, read back and checked."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.handler_support import job_context, leftover_temp_files
from worker.handlers import PermanentError
from worker.handlers.payload import InvalidPayload
from worker.handlers.report_generation import generate_report

SALES = [
    {"region": "north", "product": "tea", "amount": 10, "units": 2},
    {"region": "south", "product": "tea", "amount": 5.5, "units": 1},
    {"region": "north", "product": "coffee", "amount": 20, "units": None},
    {"region": "south", "product": "coffee", "amount": 4.5, "units": 3},
    {"region": "east", "product": "tea", "amount": 1, "units": 1},
]


def read_report(result: dict[str, Any]) -> bytes:
    """The file, after checking the result describes it truthfully."""
    data = Path(result["path"]).read_bytes()
    assert len(data) == result["bytes"]
    assert hashlib.sha256(data).hexdigest() == result["sha256"]
    return data


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode())))


async def test_csv_of_object_rows(tmp_path: Path) -> None:
    result = await generate_report({"report_type": "sales", "rows": SALES}, job_context(tmp_path))
    assert result["path"] == str((tmp_path / "reports" / "sales-job1.csv").resolve())
    assert result["format"] == "csv" and result["row_count"] == result["source_rows"] == 5
    assert result["columns"] == ["region", "product", "amount", "units"]
    data = read_report(result)
    assert data.startswith(b"region,product,amount,units\r\n")
    rows = csv_rows(data)
    assert rows[1:3] == [["north", "tea", "10", "2"], ["south", "tea", "5.5", "1"]]
    assert rows[3] == ["north", "coffee", "20", ""]  # null is an empty cell


async def test_json_of_list_rows_with_columns(tmp_path: Path) -> None:
    payload = {
        "report_type": "Monthly users / EU",
        "title": "Users per country",
        "format": "JSON",
        "columns": ["country", "users", "tags"],
        "rows": [["fr", 3, ["a", "b"]], ["de", 5, None]],
    }
    result = await generate_report(payload, job_context(tmp_path, job_id=12))
    assert Path(result["path"]).name == "Monthly-users-EU-job12.json"
    document = json.loads(read_report(result))
    assert document["title"] == "Users per country" and document["job_id"] == 12
    assert document["report_type"] == "Monthly users / EU" and document["generated_at"]
    assert document["columns"] == ["country", "users", "tags"] and document["row_count"] == 2
    assert document["rows"] == [
        {"country": "fr", "users": 3, "tags": ["a", "b"]},
        {"country": "de", "users": 5, "tags": None},
    ]


async def test_group_by_with_aggregations_sorted(tmp_path: Path) -> None:
    payload = {
        "report_type": "sales",
        "rows": SALES,
        "group_by": "region",
        "aggregations": [
            {"op": "count"},
            {"op": "sum", "column": "amount", "as": "revenue"},
            {"op": "avg", "column": "amount"},
            {"op": "min", "column": "product"},
            {"op": "max", "column": "units"},
            {"op": "count", "column": "units", "as": "units_known"},
        ],
        "sort_by": ["revenue"],
        "descending": True,
        "format": "json",
    }
    result = await generate_report(payload, job_context(tmp_path))
    assert result["columns"] == [
        "region", "count", "revenue", "avg_amount", "min_product", "max_units", "units_known",
    ]  # fmt: skip
    rows = json.loads(read_report(result))["rows"]
    assert rows == [
        {"region": "north", "count": 2, "revenue": 30, "avg_amount": 15.0,
         "min_product": "coffee", "max_units": 2, "units_known": 1},
        {"region": "south", "count": 2, "revenue": 10.0, "avg_amount": 5.0,
         "min_product": "coffee", "max_units": 3, "units_known": 2},
        {"region": "east", "count": 1, "revenue": 1, "avg_amount": 1.0,
         "min_product": "tea", "max_units": 1, "units_known": 1},
    ]  # fmt: skip
    assert result["row_count"] == 3 and result["source_rows"] == 5


async def test_group_by_two_columns_counts_by_default_and_limits(tmp_path: Path) -> None:
    payload = {
        "report_type": "mix",
        "rows": SALES,
        "group_by": ["product", "region"],
        "sort_by": ["product", "region"],
        "limit": 2,
    }
    result = await generate_report(payload, job_context(tmp_path))
    assert csv_rows(read_report(result)) == [
        ["product", "region", "count"],
        ["coffee", "north", "1"],
        ["coffee", "south", "1"],
    ]


async def test_totals_without_group_and_over_no_rows(tmp_path: Path) -> None:
    totals = {"report_type": "t", "rows": SALES, "aggregations": [{"op": "sum", "column": "units"}]}
    result = await generate_report(totals, job_context(tmp_path))
    assert csv_rows(read_report(result)) == [["sum_units"], ["7"]]

    empty = {"report_type": "t", "columns": ["x"], "rows": [], "aggregations": [{"op": "count"}]}
    result = await generate_report(empty, job_context(tmp_path, job_id=2))
    assert csv_rows(read_report(result)) == [["count"], ["0"]]


async def test_csv_cells_cannot_become_spreadsheet_formulas(tmp_path: Path) -> None:
    rows = [{"name": '=HYPERLINK("http://x")', "note": "@SUM(A1)", "n": -3, "obj": {"b": 1}}]
    result = await generate_report({"report_type": "x", "rows": rows}, job_context(tmp_path))
    assert csv_rows(read_report(result))[1] == [
        '\'=HYPERLINK("http://x")',
        "'@SUM(A1)",
        "-3",
        '{"b": 1}',
    ]


async def test_unsafe_report_type_still_gives_a_safe_file_name(tmp_path: Path) -> None:
    payload = {"report_type": "../../etc/passwd", "rows": [{"a": 1}]}
    result = await generate_report(payload, job_context(tmp_path))
    assert Path(result["path"]).parent == (tmp_path / "reports").resolve()
    assert Path(result["path"]).name == "etc-passwd-job1.csv"


async def test_a_retry_replaces_the_file_and_leaves_no_temp_files(tmp_path: Path) -> None:
    ctx = job_context(tmp_path, job_id=5)
    first = await generate_report({"report_type": "r", "rows": SALES}, ctx)
    second = await generate_report({"report_type": "r", "rows": SALES[:1]}, ctx)
    assert first["path"] == second["path"] and second["row_count"] == 1
    assert csv_rows(read_report(second))[1:] == [["north", "tea", "10", "2"]]
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["r-job5.csv"]
    assert leftover_temp_files(tmp_path) == []


ROWS = [{"g": "a", "v": 1}]


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"rows": ROWS}, "report_type", "is required"),
        ({"report_type": 3, "rows": ROWS}, "report_type", "must be a string"),
        ({"report_type": "r"}, "rows", "is required"),
        ({"report_type": "r", "rows": {"a": 1}}, "rows", "must be a list"),
        ({"report_type": "r", "rows": [1]}, "rows[0]", "object or a list"),
        ({"report_type": "r", "rows": [[1, 2]]}, "columns", "required when rows are lists"),
        ({"report_type": "r", "columns": ["a"], "rows": [[1, 2]]}, "rows[0]", "2 values"),
        ({"report_type": "r", "columns": ["a", "a"], "rows": []}, "columns", "twice"),
        ({"report_type": "r", "rows": ROWS, "format": "xlsx"}, "format", "csv, json"),
        ({"report_type": "r", "rows": ROWS, "group_by": "nope"}, "group_by[0]", "unknown column"),
        ({"report_type": "r", "rows": ROWS, "aggregations": []}, "aggregations", "non-empty"),
        ({"report_type": "r", "rows": ROWS, "aggregations": ["sum"]}, "aggregations[0]", "object"),
        ({"report_type": "r", "rows": ROWS, "aggregations": [{"op": "median", "column": "v"}]},
         "aggregations[0].op", "count, sum, avg"),
        ({"report_type": "r", "rows": ROWS, "aggregations": [{"op": "sum"}]},
         "aggregations[0].column", "required for sum"),
        ({"report_type": "r", "rows": ROWS, "aggregations": [{"op": "avg", "column": "x"}]},
         "aggregations[0].column", "unknown column 'x'"),
        ({"report_type": "r", "rows": ROWS, "aggregations": [{"op": "count"}, {"op": "count"}]},
         "aggregations", "share an output name"),
        ({"report_type": "r", "rows": [*ROWS, {"g": "b", "v": "7"}],
          "aggregations": [{"op": "sum", "column": "v"}]}, "rows[1].v", "must be a number"),
        ({"report_type": "r", "rows": [*ROWS, {"g": "b", "v": True}],
          "aggregations": [{"op": "avg", "column": "v"}]}, "rows[1].v", "must be a number"),
        ({"report_type": "r", "rows": [*ROWS, {"g": "b", "v": "x"}],
          "aggregations": [{"op": "max", "column": "v"}]}, "rows[*].v", "mixes numbers"),
        ({"report_type": "r", "rows": [{"g": [1], "v": 1}], "group_by": "g"}, "rows[0]", "list"),
        ({"report_type": "r", "rows": ROWS, "group_by": "g", "aggregations": [{"op": "count",
          "as": "g"}]}, "aggregations", "group column"),
        ({"report_type": "r", "rows": ROWS, "sort_by": "zz"}, "sort_by", "unknown column 'zz'"),
        ({"report_type": "r", "rows": [{"v": [1]}, {"v": {}}], "sort_by": "v"}, "sort_by", "lists"),
        ({"report_type": "r", "rows": ROWS, "descending": "yes"}, "descending", "true or false"),
        ({"report_type": "r", "rows": ROWS, "limit": 0}, "limit", "between 1 and"),
    ],
)  # fmt: skip
async def test_bad_parameters_fail_permanently_naming_the_field(
    tmp_path: Path, payload: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        await generate_report(payload, job_context(tmp_path))
    assert isinstance(caught.value, InvalidPayload)
    assert caught.value.field == field, str(caught.value)
    assert f"'{field}'" in str(caught.value) and words in str(caught.value)
    assert not (tmp_path / "reports").exists()
