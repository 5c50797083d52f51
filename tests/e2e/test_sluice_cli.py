"""`python -m sluice` as a user runs it: a real subprocess against the local
stack (`python -m local_cloud`), uploading through POST /uploads and the
presigned S3 POST, following the job, and saving what it produced."""
from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest

from tests.e2e.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e

EXAMPLES = REPO_ROOT / "examples"
# Whatever a developer's shell says, the tests choose the API themselves.
ENV = {k: v for k, v in os.environ.items() if k not in ("SLUICE_API_URL", "SLUICE_API_KEY")}


@dataclass
class Run:
    code: int
    out: str
    err: str


def sluice(*args: str, url: str, key: str | None = None) -> Run:
    env = {**ENV, "SLUICE_API_KEY": key} if key else ENV
    done = subprocess.run([sys.executable, "-m", "sluice", *args, "--url", url], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def profiled(local_cloud, tmp_path_factory) -> tuple[str, Path, Run]:
    """sales.csv profiled once, with --wait and --out: (job id, out dir, the run)."""
    out_dir = tmp_path_factory.mktemp("cli_out")
    run = sluice("submit", str(EXAMPLES / "sales.csv"), "--processor", "profile", "--wait",
                 "--out", str(out_dir), url=local_cloud.api_url, key=local_cloud.api_key)
    assert run.code == 0, run.err
    job_id = run.out.split()[1].rstrip(":")  # "job <id>: sales.csv uploaded (371 bytes)"
    return job_id, out_dir, run


def test_submit_waits_with_progress_and_saves_the_result_and_report(profiled):
    job_id, out_dir, run = profiled
    size = (EXAMPLES / "sales.csv").stat().st_size
    assert run.out.startswith(f"job {job_id}: sales.csv uploaded ({size} bytes)")
    assert "status     completed" in run.out
    # stderr is a pipe, not a terminal: plain progress lines, no redrawn bar.
    progress = run.err.splitlines()
    assert progress[-1].endswith("completed 100% (1/1 chunks, 10 rows)") and "\r" not in run.err
    assert sorted(p.name for p in out_dir.iterdir()) == [f"{job_id}-report.xlsx", f"{job_id}-result.json"]

    result = json.loads((out_dir / f"{job_id}-result.json").read_text())
    assert (result["file_name"], result["row_count"], result["column_count"]) == ("sales.csv", 10, 5)
    book = openpyxl.load_workbook(out_dir / f"{job_id}-report.xlsx", read_only=True)
    assert book.sheetnames == ["Summary", "Columns", "Errors"]
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True) if len(row) > 1}
    assert (summary["job id"], summary["file"], summary["rows read"]) == (job_id, "sales.csv", 10)
    columns = list(book["Columns"].iter_rows(values_only=True))
    assert [row[0] for row in columns[1:]] == ["name", "age", "salary", "join_date", "active"]


def test_status_and_jobs_show_the_job(profiled, local_cloud):
    job_id, _, _ = profiled
    status = sluice("status", job_id, url=local_cloud.api_url, key=local_cloud.api_key)
    assert status.code == 0, status.err
    assert f"job        {job_id}" in status.out and "status     completed" in status.out
    assert f"report     {local_cloud.api_url}/jobs/{job_id}/report" in status.out
    listed = sluice("jobs", "--limit", "200", url=local_cloud.api_url, key=local_cloud.api_key)
    assert listed.code == 0, listed.err
    assert listed.out.splitlines()[0].split() == [
        "JOB", "STATUS", "PROCESSOR", "FILE", "DONE", "CREATED", "(UTC)"]
    row = next(line for line in listed.out.splitlines() if line.startswith(job_id))
    assert row.split()[1:5] == ["completed", "profile", "sales.csv", "100%"]


def test_json_output_parses(profiled, local_cloud):
    job_id, _, _ = profiled
    status = sluice("status", job_id, "--json", url=local_cloud.api_url, key=local_cloud.api_key)
    assert json.loads(status.out)["progress"]["rows_processed"] == 10
    listed = sluice("jobs", "--json", url=local_cloud.api_url, key=local_cloud.api_key)
    assert job_id in [job["job_id"] for job in json.loads(listed.out)]


def test_a_carbon_job_with_options(local_cloud, tmp_path):
    run = sluice("submit", str(EXAMPLES / "activities.csv"), "--processor", "carbon",
                 "--option", "region=GB", "--option", "year=2023", "--option", "strict=false",
                 "--out", str(tmp_path), "--json", url=local_cloud.api_url, key=local_cloud.api_key)
    assert run.code == 0, run.err
    job = json.loads(run.out)
    assert job["status"] == "completed"
    assert {k: job["options"][k] for k in ("region", "year", "strict")} == {
        "region": "GB", "year": 2023, "strict": False}
    assert job["totals"]["rows_calculated"] == 17 and job["totals"]["rows_rejected"] == 0
    files = {name: Path(path) for name, path in job["files"].items()}
    assert sorted(files) == ["report", "result", "rows"]
    with files["rows"].open(newline="") as rows:
        assert len(list(csv.DictReader(rows))) == 17
    book = openpyxl.load_workbook(files["report"], read_only=True)
    assert len(list(book["Rows"].iter_rows(min_row=2, values_only=True))) == 17
    assert json.loads(files["result"].read_text())["rows_calculated"] == 17


def test_a_bad_processor_exits_2_with_the_api_s_message(local_cloud):
    run = sluice("submit", str(EXAMPLES / "sales.csv"), "--processor", "nope", url=local_cloud.api_url,
                 key=local_cloud.api_key)
    assert run.code == 2
    assert run.err.startswith("sluice: unknown processor 'nope'; choose one of: ")
    assert run.err.rstrip().endswith("(HTTP 400 from POST /uploads)") and run.out == ""


def test_without_a_key_the_cli_says_how_to_get_one(local_cloud):
    run = sluice("jobs", url=local_cloud.api_url)
    assert (run.code, run.out) == (1, "")
    assert "no API key was sent: pass --api-key or set SLUICE_API_KEY" in run.err


def test_an_unreachable_api_exits_1():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    run = sluice("jobs", url=url)
    assert (run.code, run.out) == (1, "")
    assert run.err == f"sluice: cannot reach {url} — is `make run` running? (Connection refused)\n"


def test_a_scan_of_generated_documents_as_the_readme_shows_it(local_cloud, tmp_path):
    zipped = tmp_path / "drawings.zip"
    made = subprocess.run([sys.executable, "-m", "bench.make_documents", "40", str(zipped)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True)
    # "...: 40 documents, 24 with codes, 31 matches, 1 unreadable; target_hole_codes=HOLE-1,..."
    matches = int(made.stdout.split(" matches")[0].rsplit(" ", 1)[1])
    codes = made.stdout.strip().rsplit("target_hole_codes=", 1)[1]
    assert codes == "HOLE-1,HOLE-2,HOLE-3,HOLE-4,HOLE-5"
    run = sluice("submit", str(zipped), "--processor", "scan",
                 "--option", f"target_hole_codes={codes}", "--out", str(tmp_path / "out"),
                 url=local_cloud.api_url, key=local_cloud.api_key)
    assert run.code == 3, run.err  # completed_with_errors: the one unreadable document
    assert run.err.splitlines()[-1].endswith("(40/40 documents)")
    job_id = run.out.split()[1].rstrip(":")
    result = json.loads((tmp_path / "out" / f"{job_id}-result.json").read_text())
    assert (result["documents"], result["unreadable_documents"]) == (40, 1)
    assert result["total_matches"] == matches
    book = openpyxl.load_workbook(tmp_path / "out" / f"{job_id}-report.xlsx", read_only=True)
    assert len(list(book["Rows"].iter_rows(min_row=2, values_only=True))) == 40
