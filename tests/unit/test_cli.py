"""`python -m sluice` without a server: the command line through `main()`,
with the client on a scripted transport (tests/support/scripted_transport.py)
that answers as Sluice's API and S3 would. Jobs are shaped by chalicelib's
own `Job.to_public()`, so the client is held to what the API really sends."""
from __future__ import annotations

import email.parser
import email.policy
import io
import json
import socket
from pathlib import Path

import pytest
import requests

from chalicelib.jobs.model import Job, JobStatus
from sluice.cli import build_parser, main
from sluice.client import DEFAULT_API_URL, SluiceClient, retry_after_seconds
from sluice.commands import UsageError, build_options, parse_option
from sluice.display import ProgressDisplay, format_jobs_table, format_status, progress_text
from tests.support.scripted_transport import Answer, ScriptedTransport

API = "http://sluice.test"
S3 = "http://s3.test/sluice-data"
JOB_ID = "20261122150301-3f9c2a1b7d4e"


def job(status: str = "processing", job_id: str = JOB_ID, **fields) -> dict:
    fields.setdefault("chunks_total", 4)
    return Job(job_id=job_id, processor=fields.pop("processor", "profile"),
               filename=fields.pop("filename", "sales.csv"), source_key=f"uploads/{job_id}/sales.csv",
               status=JobStatus(status), created_at="2026-11-22T15:03:01.123Z",
               updated_at="2026-11-22T15:03:04.000Z", **fields).to_public()


def created(job_id: str = JOB_ID) -> Answer:
    return Answer(201, {"job_id": job_id, "status": "received",
                        "upload": {"url": S3, "fields": {"key": f"uploads/{job_id}/sales.csv",
                                                         "policy": "cG9saWN5", "x-amz-signature": "abc"},
                                   "method": "POST", "max_bytes": 5 << 30, "expires_in": 900},
                        "links": {"self": f"/jobs/{job_id}", "result": f"/jobs/{job_id}/result",
                                  "report": f"/jobs/{job_id}/report"}})


class Cli:
    """main() with every client on `transport`, its waits recorded instead of slept."""

    def __init__(self, transport: ScriptedTransport | None = None):
        self.transport = transport
        self.sleeps: list[float] = []

    def __call__(self, *argv: str, environ: dict | None = None) -> int:
        return main(list(argv), environ or {}, make_client=lambda url, key: SluiceClient(
            url, key, transport=self.transport, sleep=self.sleeps.append))


@pytest.fixture
def sales_csv(tmp_path) -> Path:
    path = tmp_path / "sales.csv"
    path.write_text("region,amount\nnorth,10\nsouth,12\n")
    return path


# -- arguments and options -----------------------------------------------------

def test_submit_arguments_are_parsed():
    args = build_parser({}).parse_args(
        ["submit", "f.csv", "--processor", "carbon", "--option", "region=GB", "--option", "year=2023",
         "--wait", "--out", "results", "--json", "--url", "https://api.example.com/prod", "--api-key", "k"])
    assert (args.file, args.processor, args.option) == (Path("f.csv"), "carbon", ["region=GB", "year=2023"])
    assert (args.wait, args.out, args.json) == (True, Path("results"), True)
    assert (args.url, args.api_key) == ("https://api.example.com/prod", "k")


def test_url_and_key_default_to_the_environment_then_the_local_stack():
    assert build_parser({}).parse_args(["jobs"]).url == DEFAULT_API_URL == "http://127.0.0.1:8000"
    args = build_parser({"SLUICE_API_URL": "https://x.test", "SLUICE_API_KEY": "k1"}).parse_args(["jobs"])
    assert (args.url, args.api_key, args.limit) == ("https://x.test", "k1", 20)


def test_url_key_and_json_may_come_before_the_command_and_the_last_one_wins():
    parse = build_parser({"SLUICE_API_URL": "https://env.test"}).parse_args
    args = parse(["--url", "https://a.test", "--api-key", "k", "--json", "status", "J"])
    assert (args.url, args.api_key, args.json, args.job_id) == ("https://a.test", "k", True, "J")
    assert parse(["--url", "https://a.test", "status", "J", "--url", "https://b.test"]).url == "https://b.test"
    args = parse(["status", "J"])
    assert (args.url, args.api_key, args.json) == ("https://env.test", None, False)


@pytest.mark.parametrize("argv, complaint", [
    (["jobs", "--url", "127.0.0.1:8000"], "is not an http:// or https:// URL"),
    (["jobs", "--limit", "500"], "is not a whole number from 1 to 200"),
    (["status"], "the following arguments are required: JOB"),
    ([], "the following arguments are required: COMMAND"),
])
def test_bad_arguments_exit_2_with_argparse_s_message(argv, complaint, capsys):
    with pytest.raises(SystemExit) as exit_:
        Cli()(*argv)
    assert exit_.value.code == 2
    assert complaint in capsys.readouterr().err


@pytest.mark.parametrize("text, value", [
    ("dayfirst=true", ("dayfirst", True)),
    ("year=2022", ("year", 2022)),
    ("type_threshold=0.8", ("type_threshold", 0.8)),
    ("region=GB", ("region", "GB")),
    ('target_hole_codes=["HOLE-1","HOLE-2"]', ("target_hole_codes", ["HOLE-1", "HOLE-2"])),
    ('columns={"amount": "kWh used"}', ("columns", {"amount": "kWh used"})),
    ('sheet="2023"', ("sheet", "2023")),  # quoted: text, not a number
    ("sheet=NaN", ("sheet", "NaN")),  # not JSON, so not a float the API would refuse
    ("filter=a=b", ("filter", "a=b")),
    (" region =GB", ("region", "GB")),
])
def test_option_values_are_json_when_they_parse_else_text(text, value):
    assert parse_option(text) == value


@pytest.mark.parametrize("text", ["dayfirst", "=true"])
def test_an_option_without_key_and_value_is_a_usage_error(text):
    with pytest.raises(UsageError, match="write it as key=value"):
        parse_option(text)


def test_each_option_overrides_the_options_json():
    assert build_options('{"region": "US", "strict": true}', ["region=GB", "year=2023"]) == {
        "region": "GB", "strict": True, "year": 2023}
    with pytest.raises(UsageError, match="must be a JSON object, got list"):
        build_options("[1]", [])
    with pytest.raises(UsageError, match="is not valid JSON"):
        build_options("{region", [])


@pytest.mark.parametrize("argv, complaint", [
    (["--option", "dayfirst"],
     "sluice: --option 'dayfirst': write it as key=value, e.g. --option dayfirst=true"),
    (["--options-json", "[]"], "sluice: --options-json must be a JSON object, got list"),
])
def test_bad_options_exit_2_before_anything_is_sent(argv, complaint, sales_csv, capsys):
    cli = Cli(ScriptedTransport({}))
    assert cli("submit", str(sales_csv), "--url", API, *argv) == 2
    assert capsys.readouterr().err.strip() == complaint
    assert cli.transport.sent == []


@pytest.mark.parametrize("name, complaint", [("missing.csv", "no such file"), ("empty.csv", "is empty")])
def test_a_file_that_cannot_be_sent_exits_2_before_anything_is_sent(name, complaint, tmp_path, capsys):
    (tmp_path / "empty.csv").write_bytes(b"")
    cli = Cli(ScriptedTransport({}))
    assert cli("submit", str(tmp_path / name), "--url", API) == 2
    assert complaint in capsys.readouterr().err
    assert cli.transport.sent == []


def test_an_out_dir_that_is_a_file_exits_2_before_anything_is_sent(sales_csv, capsys):
    cli = Cli(ScriptedTransport({}))
    assert cli("submit", str(sales_csv), "--out", str(sales_csv), "--url", API) == 2
    assert capsys.readouterr().err == f"sluice: --out {sales_csv} is a file, not a directory\n"
    assert cli.transport.sent == []


# -- submit, wait and their exit codes -------------------------------------------

def test_submit_uploads_through_the_presigned_post_and_saves_result_and_report(sales_csv, tmp_path, capsys):
    report = b"PK\x03\x04 pretend xlsx"
    presigned = f"{S3}/results/{JOB_ID}/report.xlsx?X-Amz-Signature=s1"
    transport = ScriptedTransport({
        f"POST {API}/uploads": created(),
        f"POST {S3}": Answer(204),
        f"GET {API}/jobs/{JOB_ID}": [Answer(200, job("received", chunks_total=None)),
                                     Answer(200, job("processing", chunks_done=2)),
                                     Answer(200, job("completed", chunks_done=4, rows_done=2,
                                                     outputs={"result": "s3://r", "report": "s3://p"}))],
        f"GET {API}/jobs/{JOB_ID}/result": Answer(200, {"rows": 2}),
        f"GET {API}/jobs/{JOB_ID}/report": Answer(302, {"download_url": presigned}, {"Location": presigned}),
        f"GET {presigned}": Answer(200, report),
    })
    cli = Cli(transport)
    out_dir = tmp_path / "out"
    code = cli("submit", str(sales_csv), "--processor", "profile", "--option", "dayfirst=true",
               "--out", str(out_dir), "--url", API, "--api-key", "secret-key")

    assert code == 0
    asked = json.loads(transport.sent[0].body)
    assert asked == {"filename": "sales.csv", "processor": "profile", "options": {"dayfirst": True}}
    upload = transport.sent_to(S3)[0]
    assert int(upload.headers["Content-Length"]) == len(upload.body)  # S3's POST refuses chunked bodies
    form = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + upload.headers["Content-Type"].encode() + b"\r\n\r\n" + upload.body)
    parts = [(p.get_param("name", header="content-disposition"), p.get_content()) for p in form.iter_parts()]
    assert parts == [("key", f"uploads/{JOB_ID}/sales.csv"), ("policy", "cG9saWN5"),
                     ("x-amz-signature", "abc"), ("file", sales_csv.read_bytes())]  # the file last
    assert all(req.headers.get("Authorization") == "Bearer secret-key" for req in transport.sent_to(API))
    assert not any("Authorization" in req.headers for req in transport.sent_to(S3))

    assert json.loads((out_dir / f"{JOB_ID}-result.json").read_text()) == {"rows": 2}
    assert (out_dir / f"{JOB_ID}-report.xlsx").read_bytes() == report
    assert sorted(p.name for p in out_dir.iterdir()) == [f"{JOB_ID}-report.xlsx", f"{JOB_ID}-result.json"]
    out, err = capsys.readouterr()
    assert out.startswith(f"job {JOB_ID}: sales.csv uploaded ({sales_csv.stat().st_size} bytes)\n")
    assert f"saved report: {out_dir / f'{JOB_ID}-report.xlsx'}" in out
    # Not a terminal: one plain line per change, no carriage returns.
    assert "\r" not in err
    assert [line.split("] ", 1)[1] for line in err.splitlines()] == [
        "received 0% (0/? chunks, 0 rows)", "processing 50% (2/4 chunks, 0 rows)",
        "completed 100% (4/4 chunks, 2 rows)"]
    assert cli.sleeps == [0.5, 0.5]


def test_submit_without_wait_prints_the_job_and_returns(sales_csv, capsys):
    transport = ScriptedTransport({f"POST {API}/uploads": created(), f"POST {S3}": Answer(204)})
    assert Cli(transport)("submit", str(sales_csv), "--url", API, "--json") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["job_id"] == JOB_ID and printed["status"] == "received"
    assert json.loads(transport.sent[0].body) == {"filename": "sales.csv", "options": {}}


@pytest.mark.parametrize("status, code, complaint", [
    ("completed", 0, ""),
    ("completed_with_errors", 3, ""),
    ("failed", 4, f"sluice: job {JOB_ID} failed: the file is not a CSV"),
    ("cancelled", 4, f"sluice: job {JOB_ID} was cancelled"),
])
def test_wait_exits_with_the_code_of_the_final_status(status, code, complaint, capsys):
    final = job(status, error="the file is not a CSV" if status == "failed" else None)
    cli = Cli(ScriptedTransport({f"GET {API}/jobs/{JOB_ID}": [Answer(200, job("processing")),
                                                              Answer(200, final)]}))
    assert cli("wait", JOB_ID, "--url", API) == code
    out, err = capsys.readouterr()
    assert f"status     {status}" in out
    complaints = [line for line in err.splitlines() if line.startswith("sluice:")]
    assert complaints == ([complaint] if complaint else [])


def test_a_throttled_poll_waits_as_long_as_retry_after_says(capsys):
    cli = Cli(ScriptedTransport({f"GET {API}/jobs/{JOB_ID}": [
        Answer(429, {"error": "too many status queries"}, {"Retry-After": "3"}),
        Answer(200, job("completed"))]}))
    assert cli("status", JOB_ID, "--url", API, "--json") == 0
    assert cli.sleeps == [3.0]
    assert json.loads(capsys.readouterr().out)["status"] == "completed"


def test_retry_after_reads_seconds_and_http_dates_within_bounds():
    from datetime import UTC, datetime
    now = datetime(2026, 11, 22, 15, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds("Sun, 22 Nov 2026 15:00:05 GMT", now) == 5.0
    assert retry_after_seconds("3600", now) == 60.0
    assert (retry_after_seconds(None), retry_after_seconds("soon")) == (1.0, 1.0)


# -- errors --------------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_local_api_exits_1_and_says_to_start_it(capsys):
    url = f"http://127.0.0.1:{_closed_port()}"
    assert main(["jobs", "--url", url], {}) == 1
    assert capsys.readouterr().err.strip() == (
        f"sluice: cannot reach {url} — is `make run` running? (Connection refused)")


def test_an_unreachable_remote_api_points_at_the_url(capsys):
    cli = Cli(ScriptedTransport({"GET https://api.example.com/prod/jobs?limit=20":
                                 requests.ConnectionError("[Errno -2] Name or service not known")}))
    assert cli("jobs", "--url", "https://api.example.com/prod") == 1
    assert capsys.readouterr().err.strip() == ("sluice: cannot reach https://api.example.com/prod — "
                                               "check --url or SLUICE_API_URL (Name or service not known)")


@pytest.mark.parametrize("argv, script, code, complaint", [
    (["status", "nope"], {f"GET {API}/jobs/nope": Answer(404, {"error": "no job with id 'nope'"})},
     2, "no job with id 'nope' (HTTP 404 from GET /jobs/nope)"),
    (["jobs"], {f"GET {API}/jobs?limit=20": Answer(403, {"message": "Forbidden"})},
     1, "the API refused the key: it is wrong, revoked or expired (HTTP 403 from GET /jobs)"),
    (["jobs"], {f"GET {API}/jobs?limit=20": Answer(401, {"message": "Unauthorized"})},
     1, "no API key was sent: pass --api-key or set SLUICE_API_KEY (`make run` prints one) "
        "(HTTP 401 from GET /jobs)"),
    (["jobs"], {f"GET {API}/jobs?limit=20": Answer(502, b"<html><h1>502 Bad Gateway</h1></html>")},
     1, "<html><h1>502 Bad Gateway</h1></html> (HTTP 502 from GET /jobs)"),
])
def test_api_errors_print_the_api_s_message_and_exit_by_kind(argv, script, code, complaint, capsys):
    assert Cli(ScriptedTransport(script))(*argv, "--url", API) == code
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"sluice: {complaint}\n")


def test_a_refused_submit_exits_2_with_the_api_s_message_and_uploads_nothing(sales_csv, capsys):
    refusal = "unknown processor 'nope'; choose one of: carbon, profile, scan"
    transport = ScriptedTransport({f"POST {API}/uploads": Answer(400, {"error": refusal})})
    assert Cli(transport)("submit", str(sales_csv), "--processor", "nope", "--url", API) == 2
    assert capsys.readouterr().err == f"sluice: {refusal} (HTTP 400 from POST /uploads)\n"
    assert transport.sent_to(S3) == []


def test_s3_s_refusal_of_the_upload_is_shown_without_the_signature(sales_csv, capsys):
    refusal = b"<Error><Code>AccessDenied</Code><Message>Policy expired</Message></Error>"
    transport = ScriptedTransport({f"POST {API}/uploads": created(), f"POST {S3}": Answer(403, refusal)})
    assert Cli(transport)("submit", str(sales_csv), "--url", API) == 1
    assert capsys.readouterr().err == f"sluice: Policy expired (HTTP 403 from POST {S3})\n"


# -- what is shown ------------------------------------------------------------------

def test_status_shows_one_fact_a_line_and_links_once_done():
    done = job("completed", chunks_done=4, rows_done=1200, processor="carbon", filename="activities.csv",
               options={"region": "GB"}, totals={"kg_co2e": 212.5, "by_scope": {"1": 2}},
               finished_at="2026-11-22T15:03:09.000Z")
    assert format_status(done, API) == "\n".join([
        f"job        {JOB_ID}",
        "status     completed",
        "processor  carbon",
        "file       activities.csv",
        "progress   100% (4/4 chunks, 1,200 rows)",
        "created    2026-11-22 15:03:01 UTC",
        "finished   2026-11-22 15:03:09 UTC",
        'options    {"region":"GB"}',
        'totals     kg_co2e=212.5, by_scope={"1":2}',
        f"result     {API}/jobs/{JOB_ID}/result",
        f"report     {API}/jobs/{JOB_ID}/report",
    ])
    failed = format_status(job("failed", error="not a CSV"), API)
    assert "error      not a CSV" in failed and "/result" not in failed


def test_the_jobs_table_pads_columns_and_shortens_long_names():
    table = format_jobs_table([
        job("processing", chunks_done=1),
        job("completed_with_errors", job_id="20261122150000-aaaaaaaaaaaa", filename="x" * 40),
    ])
    assert table.splitlines() == [
        "JOB                          STATUS                 PROCESSOR  FILE"
        "                              DONE  CREATED (UTC)",
        f"{JOB_ID}  processing             profile    sales.csv                         25%"
        "   2026-11-22 15:03:01",
        "20261122150000-aaaaaaaaaaaa  completed_with_errors  profile    " + "x" * 31 + "…  100%"
        "  2026-11-22 15:03:01",
    ]
    assert format_jobs_table([]) == "no jobs yet"


def test_progress_counts_what_the_job_counts():
    assert progress_text(job("splitting", chunks_total=None, chunks_done=3, rows_done=600)) == \
        "3/? chunks, 600 rows"
    assert progress_text(job("processing", chunks_done=2, chunks_failed=1, rows_done=1200)) == \
        "2/4 chunks, 1 failed, 1,200 rows"
    # A scan job counts documents, a page job pages; rows_processed counts them.
    assert progress_text(job("processing", processor="scan", chunks_total=30, chunks_done=12,
                             rows_done=120, items_total=300, items_label="documents")) == "120/300 documents"
    assert progress_text(job("processing", processor="scan", chunks_failed=2, rows_done=10,
                             items_total=40, items_label="documents")) == "10/40 documents, 2 chunks failed"
    assert progress_text(job("processing", processor="pages", chunks_total=5, chunks_done=2,
                             rows_done=20, items_total=50, items_label="pages")) == "20/50 pages"


class TickingClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_progress_off_a_terminal_is_a_line_per_status_or_tenth():
    stream = io.StringIO()
    display = ProgressDisplay(stream, tty=False, clock=TickingClock())
    for state in [job("processing", chunks_total=20, chunks_done=n) for n in (0, 1, 2, 3, 9)] + \
                 [job("completed", chunks_total=20, chunks_done=20)]:
        display.update(state)
    display.close()
    assert stream.getvalue().splitlines() == [
        "[   1.0s] processing 0% (0/20 chunks, 0 rows)",
        "[   3.0s] processing 10% (2/20 chunks, 0 rows)",  # 5% was the same tenth as 0%
        "[   5.0s] processing 45% (9/20 chunks, 0 rows)",
        "[   6.0s] completed 100% (20/20 chunks, 0 rows)",
    ]


def test_progress_on_a_terminal_is_one_bar_redrawn_in_place():
    stream = io.StringIO()
    display = ProgressDisplay(stream, tty=True, clock=TickingClock())
    display.update(job("processing", chunks_done=1, rows_done=50))
    display.update(job("completed", chunks_done=4, rows_done=200))
    display.close()
    assert stream.getvalue() == (
        "\rprocessing   25% |######..................| 1/4 chunks, 50 rows 1s\x1b[K"
        "\rcompleted   100% |########################| 4/4 chunks, 200 rows 2s\x1b[K\n")
