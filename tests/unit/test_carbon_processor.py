"""The carbon processor on the whole (in-memory) pipeline: totals, per-row
output, row errors, strictness, and the files a finished job leaves."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import openpyxl
import pytest

from chalicelib.jobs.model import InputError, JobStatus
from chalicelib.processors import get_processor
from tests.support.files import csv_bytes, xlsx_bytes
from tests.support.memory_pipeline import memory_pipeline, run_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "activities.csv"


def _run(data: bytes, filename: str = "activities.csv", options: dict | None = None, **settings):
    pipe = memory_pipeline(**settings)
    job = run_file(pipe, data, filename=filename, processor="carbon", options=options)
    result = json.loads(pipe.blobs.get(job.result_key)) if job.result_key else None
    return pipe, job, result


def test_the_example_file_totals_are_the_sum_of_its_rows():
    _, job, result = _run(EXAMPLE.read_bytes())
    assert job.status == JobStatus.COMPLETED
    rows = result["rows"]
    assert len(rows) == result["rows_calculated"] == 17
    assert result["totals"]["kg_co2e"] == pytest.approx(sum(r["kg_co2e"] for r in rows), rel=1e-11)
    for scope, sums in result["by_scope"].items():
        mine = [r for r in rows if str(r["scope"]) == scope]
        assert sums["rows"] == len(mine)
        assert sums["kg_co2e"] == pytest.approx(sum(r["kg_co2e"] for r in mine), rel=1e-11)
    assert set(result["by_scope"]) == {"1", "2", "3"}
    assert job.totals["kg_co2e"] == result["totals"]["kg_co2e"]
    assert job.totals["rows_calculated"] == 17


def test_a_hand_worked_row_in_the_result():
    # 12,500 kWh of UK grid electricity x 0.20707 kg CO2e/kWh (DESNZ 2023,
    # UK electricity) = 2,588.375 kg CO2e, scope 2.
    _, _, result = _run(EXAMPLE.read_bytes())
    row = result["rows"][0]
    assert row["row"] == 2 and row["activity"] == "electricity"
    assert row["kg_co2e"] == pytest.approx(2588.375, rel=1e-11)
    assert row["scope"] == 2 and row["factor"] == 0.20707 and row["factor_year"] == 2023


def test_chunking_does_not_change_the_result():
    data = EXAMPLE.read_bytes()
    _, _, whole = _run(data)
    _, job, split = _run(data, chunk_bytes=120)
    assert job.chunks_total > 5
    assert split == whole


def test_gases_no_factor_gives_are_unknown_not_zero():
    data = csv_bytes([["activity", "amount", "unit", "region"], ["electricity", "10", "MWh", "CAMX"]])
    _, _, result = _run(data)
    assert result["by_activity"]["electricity"]["kg_ch4"] is None
    assert result["rows"][0]["kg_ch4"] is None


def test_bad_rows_are_reported_and_the_others_still_count():
    data = csv_bytes([
        ["Activity", "Quantity", "Unit"],
        ["diesel", "100", "litres"],
        ["unobtainium", "5", "kg"],
        ["electricity", "12", "kg"],
        ["petrol", "-3", "litres"],
        ["petrol", "lots", "litres"],
        ["rail", "250", "passenger-km"],
    ])
    pipe, job, result = _run(data)
    assert job.status == JobStatus.COMPLETED_WITH_ERRORS
    assert result["rows_calculated"] == 2 and result["rows_rejected"] == 4
    errors = {e["row"]: e["error"] for e in result["errors"]["rows"]}
    assert sorted(errors) == [3, 4, 5, 6]
    assert "unobtainium" in errors[3]
    assert "kg" in errors[4] and "electricity" in errors[4]
    assert "negative" in errors[5]
    assert "lots" in errors[6]
    assert job.totals["rows_rejected"] == 4


def test_strict_jobs_fail_on_the_first_bad_row():
    data = csv_bytes([["activity", "amount", "unit"], ["diesel", "100", "litres"],
                      ["diesel", "x", "litres"]])
    _, job, _ = _run(data, options={"strict": True})
    assert job.status == JobStatus.FAILED
    assert "strict" in job.error and "row 3" in job.error


def test_columns_can_be_mapped_in_options_and_excel_works_too():
    rows = [["Fuel type", "Litres used", "UoM", "Where"], ["Diesel", 100, "litres", "UK"]]
    _, job, result = _run(xlsx_bytes(rows), filename="fleet.xlsx",
                          options={"columns": {"activity": "Fuel type", "amount": "Litres used",
                                               "unit": "UoM", "region": "Where"}})
    assert job.status == JobStatus.COMPLETED, job.error
    # 100 litres of diesel x 2.51206 kg CO2e/litre (DESNZ 2023) = 251.206 kg
    assert result["totals"]["kg_co2e"] == pytest.approx(251.206, rel=1e-11)


def test_a_file_without_the_needed_columns_fails_with_the_reason():
    _, job, _ = _run(csv_bytes([["name", "value"], ["a", "1"]]))
    assert job.status == JobStatus.FAILED
    assert "activity" in job.error and "options" in job.error


@pytest.mark.parametrize("options, words", [
    ({"colour": "red"}, "unknown option"),
    ({"factor_source": "magic"}, "factor_source"),
    ({"year": "last year"}, "options.year"),
    ({"columns": {"fuel": "x"}}, "unknown role"),
    ({"columns": ["activity"]}, "options.columns"),
])
def test_bad_options_are_refused_by_name(options, words):
    with pytest.raises(InputError, match=words):
        get_processor("carbon").validate_options(options)


def test_api_factors_without_a_configured_api_fail_the_job_clearly():
    data = csv_bytes([["activity", "amount", "unit"], ["diesel", "100", "litres"]])
    _, job, _ = _run(data, options={"factor_source": "api"})
    assert job.status == JobStatus.FAILED
    assert "no factor API is configured" in job.error


def test_the_row_file_and_the_report_hold_every_row_and_error(tmp_path):
    data = csv_bytes([["activity", "amount", "unit"], ["diesel", "100", "litres"],
                      ["=cmd|' /C calc'!A0", "1", "kg"], ["petrol", "20", "litres"]])
    pipe, job, result = _run(data, chunk_bytes=40)
    assert set(job.outputs) == {"result", "rows", "report"}
    table = list(csv.DictReader(io.StringIO(pipe.blobs.get(job.outputs["rows"]).decode())))
    assert [int(r["row"]) for r in table] == [r["row"] for r in result["rows"]] == [2, 4]

    path = tmp_path / "report.xlsx"
    path.write_bytes(pipe.blobs.get(job.outputs["report"]))
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Summary", "Rows", "Errors"]
    sheet = book["Rows"]
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["Row", "Activity", "Amount"]
    assert [sheet.cell(r, 1).value for r in (2, 3)] == [2, 4]
    kg = sheet.cell(2, header.index("kg CO2e") + 1)
    assert kg.data_type == "n" and kg.value == pytest.approx(251.206)
    errors = book["Errors"]
    assert errors.cell(2, 1).value == 3
    message = errors.cell(2, 2)
    assert message.data_type == "s" and "cmd" in message.value
    summary = [[c.value for c in row] for row in book["Summary"].iter_rows()]
    assert any(line[:2] == ["rows rejected", 1] for line in summary)
