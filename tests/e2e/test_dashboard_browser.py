"""The dashboard (GET /) in a real browser: Debian's Chromium, driven by
Playwright through its executable path, against `python -m local_cloud`
(the session's `local_cloud` fixture). The page signs in as a user does,
through the `#key=` link `make run` prints or by typing the key; files are
chosen and uploaded, the bar and the table are read from the page, and
reports are downloaded by clicking.

SLUICE_UPDATE_SCREENSHOT=1 also writes the finished scan to docs/dashboard.png.
"""
from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import openpyxl
import pytest
from playwright.sync_api import Browser, Page, Route, WebSocketRoute, expect, sync_playwright

from bench.generate import make_frame
from chalicelib.adapters.dynamodb_keys import DynamoApiKeyStore
from chalicelib.auth import ApiKey, issue_key, revoke_key
from tests.support.authed import ApiSession
from tests.support.documents import make_corpus, zip_bytes
from tests.support.files import csv_bytes
from tests.support.pages import npi_document, valid_npi

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# What this sandbox (and most CI containers) needs: no setuid sandbox, no
# GPU, and no calls home.
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1440, "height": 900}
JOB_TIMEOUT_MS = 60_000
CODES = ["HOLE-1", "HOLE-2", "HOLE-3"]
REFUSAL = re.compile(r"^The API refused the key ending in …\S{4}: it is wrong, expired or revoked")

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                 reason="Chromium is not installed (`make system-deps` installs it)")]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, local_cloud) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    # Script errors and refused loads (a CSP violation is one) fail the test.
    page.problems = []
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
    # Every request and WebSocket, to check where the key went.
    page.sent = []
    page.on("request", lambda request: page.sent.append(request))
    page.sockets = []
    page.on("websocket", lambda ws: page.sockets.append(ws.url))
    yield page
    context.close()


# -- keys -------------------------------------------------------------------------

def key_store(local_cloud) -> DynamoApiKeyStore:
    return DynamoApiKeyStore(local_cloud.client("dynamodb"), local_cloud.outputs["TableName"])


def new_key(local_cloud, tenant: str = "local") -> tuple[str, ApiKey]:
    """A key issued into the running local cloud, as an admin would."""
    return issue_key(key_store(local_cloud), tenant, "browser test", int(time.time()), days=1)


def job_calls(page: Page, local_cloud) -> list:
    """The requests the page made to the API's job routes (and for its socket's tickets)."""
    return [r for r in page.sent if r.url.startswith(local_cloud.api_url)
            and re.match(r"/(jobs|uploads|live/tickets)\b", urlsplit(r.url).path)]


def socket_tickets(page: Page, local_cloud) -> list[str]:
    """The ticket each socket of the page opened with; a URL that is not one fails."""
    pattern = re.compile(re.escape(local_cloud.ws_url) + r"/\?ticket=(slt_[A-Za-z0-9_-]{43})")
    matches = [pattern.fullmatch(url) for url in page.sockets]
    assert all(matches), page.sockets
    return [m.group(1) for m in matches]


def assert_the_key_went_to_the_api_only(page: Page, local_cloud, key: str) -> None:
    calls = job_calls(page, local_cloud)
    assert calls and all(r.headers.get("authorization") == f"Bearer {key}" for r in calls)
    elsewhere = [r for r in page.sent if not r.url.startswith(local_cloud.api_url)]
    assert not any(key in r.url or key in json.dumps(r.headers) for r in elsewhere)
    # Each socket opened with a ticket of its own, bought with the key in a header.
    tickets = socket_tickets(page, local_cloud)
    assert tickets and len(set(tickets)) == len(tickets)
    assert sum(urlsplit(r.url).path == "/live/tickets" for r in calls) >= len(tickets)
    assert key not in page.content()  # never written into the page


# -- driving the page ------------------------------------------------------------

def open_dashboard(page: Page, local_cloud, key: str | None = None) -> None:
    """Signed in through the link `make run` prints (`/#key=<key>`)."""
    key = key or local_cloud.api_key
    page.goto(f"{local_cloud.api_url}/#key={key}")
    expect(page.locator("#signed-in")).to_have_text(f"Signed in · key …{key[-4:]}")
    assert page.url == f"{local_cloud.api_url}/"  # the key left the address bar at once
    expect(page.locator("#processor option[value=scan]")).to_be_attached()
    # Every value the bar takes and every state of the live channel, in order.
    page.evaluate("""() => {
        const bar = document.getElementById("progress");
        const line = document.getElementById("live-status");
        window.barValues = [];
        window.liveStates = [];
        new MutationObserver(() => window.barValues.push(Number(bar.getAttribute("aria-valuenow"))))
            .observe(bar, {attributes: true, attributeFilter: ["aria-valuenow"]});
        new MutationObserver(() => window.liveStates.push(line.textContent))
            .observe(line, {childList: true, characterData: true, subtree: true});
    }""")


def start_job(page: Page, processor: str, name: str, data: bytes, mime: str,
              options: dict[str, str] | None = None, more: dict[str, str] | None = None,
              checks: tuple[str, ...] = ()) -> str:
    page.get_by_label("Processor").select_option(processor)
    for label, value in (options or {}).items():
        page.get_by_label(label, exact=True).fill(value)
    for label in checks:
        page.get_by_label(label, exact=True).check()
    if more:
        page.get_by_text("More options").click()
        for label, value in more.items():
            page.get_by_label(label, exact=True).fill(value)
    choose_file(page, name, data, mime)
    with page.expect_response(lambda r: r.url.endswith("/uploads") and r.request.method == "POST") as created:
        page.get_by_role("button", name="Start job").click()
    assert created.value.status == 201, created.value.text()
    return created.value.json()["job_id"]


def choose_file(page: Page, name: str, data: bytes, mime: str) -> None:
    chosen = {"name": name, "mimeType": mime, "buffer": data}
    page.get_by_label("File", exact=True).set_input_files(files=[chosen])


def wait_until_finished(page: Page) -> list[int]:
    """The bar at 100 and the report's button shown; returns the bar's values
    from the start of the job on."""
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100", timeout=JOB_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Download report")).to_be_visible()
    values = page.evaluate("window.barValues")
    since_start = values[len(values) - 1 - values[::-1].index(0):]  # follow() resets the bar to 0
    assert since_start == sorted(since_start), f"the bar went back: {values}"
    return since_start


def download(page: Page, button: str, path: Path) -> Path:
    """Click a download button and save what the browser downloads."""
    with page.expect_download() as download:
        page.get_by_role("button", name=button, exact=True).click()
    download.value.save_as(path)
    return path


def download_report(page: Page, tmp_path: Path) -> openpyxl.Workbook:
    """The report, through `?link=1` (the API gives the presigned link, the
    page goes there); S3 serves it as an attachment."""
    with page.expect_response(lambda r: r.url.endswith("/report?link=1")) as link:
        path = download(page, "Download report", tmp_path / "report.xlsx")
    assert link.value.status == 200 and link.value.json()["filename"].endswith("_report.xlsx")
    return openpyxl.load_workbook(path, read_only=True)


def serve_downloads_as_s3_does(page: Page, local_cloud) -> None:
    """S3 answers a presigned link with the Content-Disposition the link asks
    for (response-content-disposition), so a CSV or a PDF is saved rather
    than shown; moto ignores it, so the test adds it."""
    def serve(route: Route) -> None:
        response = route.fetch()
        asked = parse_qs(urlsplit(route.request.url).query)["response-content-disposition"][0]
        route.fulfill(response=response, headers={**response.headers, "content-disposition": asked})
    page.route(lambda url: url.startswith(local_cloud.aws_url) and "response-content-disposition" in url,
               serve)


def table_headers(page: Page) -> list[str]:
    return page.locator("#results-head th").all_text_contents()


def table_rows(page: Page, kind: str) -> list[dict[str, str]]:
    """The results table's rows of one kind ("match" or "error"), cell by header."""
    keys = {"Kind": "kind", "#": "number", "Row": "number", "Page": "number", "File": "file",
            "Code": "code", "Found": "code", "Status or error": "detail", "Link": "link"}
    headers = [keys[h] for h in table_headers(page)]
    return [dict(zip(headers, cells, strict=True))
            for cells in page.locator(f"#results-body tr.result-{kind}").evaluate_all(
                "rows => rows.map(r => [...r.cells].map(c => c.textContent))")]


def expect_recent_status(page: Page, job_id: str, status: str) -> None:
    expect(page.locator(f'#recent-jobs .job-item[data-job-id="{job_id}"] .badge')).to_have_text(status)


def totals(page: Page) -> dict[str, str]:
    """The figures shown beside the report's button, by their words."""
    return page.locator("#totals > div").evaluate_all(
        "items => Object.fromEntries(items.map(i => [i.querySelector('dt').textContent, "
        "i.querySelector('dd').textContent]))")


def book_rows(book: openpyxl.Workbook) -> list[tuple]:
    return list(book["Rows"].iter_rows(min_row=2, values_only=True))


# -- the tests --------------------------------------------------------------------

def test_a_scan_followed_live_from_upload_to_report(page, local_cloud, tmp_path):
    corpus = make_corpus(30, CODES, seed=21, broken=2)
    open_dashboard(page, local_cloud)
    expect(page.locator("#connection")).to_have_text("Live")
    job_id = start_job(page, "scan", "drawings.zip", zip_bytes(corpus.documents), "application/zip",
                       options={"Target hole codes": ", ".join(CODES)})

    bar = wait_until_finished(page)
    assert bar[-1] == 100 and len(set(bar)) > 2, bar  # it moved on the way, not in one jump
    expect(page.locator("#job-status")).to_have_text("completed with errors")
    expect(page.locator("#progress-counts")).to_have_text("30 of 30 documents")
    expect(page.locator("#live-status")).to_have_text("Finished · live")

    # One row per (document, code) found, one row error per broken document.
    expected = {(name, code) for name, codes in corpus.expected.items() for code in codes}
    expect(page.locator("#results-body tr")).to_have_count(len(expected) + len(corpus.broken))
    assert table_headers(page) == ["Kind", "#", "File", "Code", "Status or error", "Link"]
    matches = table_rows(page, "match")
    assert {(r["file"], r["code"]) for r in matches} == expected
    assert {r["detail"] for r in matches} <= {"1 Code", "2 Codes", "3 Codes"}
    assert all(r["link"] == "Open" for r in matches)
    errors = table_rows(page, "error")
    assert sorted(r["file"] for r in errors) == sorted(corpus.broken)
    expect(page.locator("#results-counts")).to_have_text(
        f"{len(expected)} matches · {len(corpus.broken)} row errors")
    assert totals(page) == {"processed": "30", "matches": str(len(expected)),
                            "with codes": str(sum(1 for codes in corpus.expected.values() if codes)),
                            "unreadable": str(len(corpus.broken))}

    book = download_report(page, tmp_path)
    listed = {row[1]: row[2] for row in book_rows(book)}
    assert set(listed) == {name for name, _ in corpus.documents}
    assert [listed[name] for name in corpus.broken] == ["Unreadable"] * len(corpus.broken)
    # The result JSON, fetched with the key and saved from memory.
    result = json.loads(download(page, "Result (JSON)", tmp_path / "result.json").read_text())
    assert result["documents"] == 30 and result["unreadable_documents"] == len(corpus.broken)
    assert_the_key_went_to_the_api_only(page, local_cloud, local_cloud.api_key)

    followed = page.locator(f'#recent-jobs .job-item[data-job-id="{job_id}"]')
    expect(followed).to_have_attribute("aria-current", "true")
    expect_recent_status(page, job_id, "completed with errors")
    assert page.problems == []
    page.locator(".side").evaluate("side => side.scrollTo(0, 0)")
    page.mouse.move(0, 0)
    shot = REPO_ROOT / "docs" / "dashboard.png" if os.environ.get("SLUICE_UPDATE_SCREENSHOT") else \
        tmp_path / "dashboard.png"
    shot.parent.mkdir(exist_ok=True)
    page.screenshot(path=shot)


def test_a_socket_closed_mid_job_hands_over_to_polling(page, local_cloud, tmp_path):
    corpus = make_corpus(30, CODES, seed=22, broken=1)
    cut = {"done": False}

    # The socket passes messages until the first match, then closes; every
    # later attempt to reconnect is refused, so only polling can finish the job.
    def route(ws: WebSocketRoute) -> None:
        if cut["done"]:
            ws.close(code=1011, reason="test: socket down")
            return
        server = ws.connect_to_server()

        def forward(message):
            ws.send(message)
            if '"MATCH_FOUND"' in str(message) and not cut["done"]:
                cut["done"] = True
                ws.close(code=1001, reason="test: socket lost")
        server.on_message(forward)

    page.route_web_socket(lambda url: url.startswith("ws"), route)
    polls: list[str] = []
    page.on("request", lambda request: "/jobs/" in request.url and polls.append(request.url))
    open_dashboard(page, local_cloud)
    job_id = start_job(page, "scan", "drawings.zip", zip_bytes(corpus.documents), "application/zip",
                       options={"Target hole codes": "\n".join(CODES)}, more={"Documents per chunk": "2"})

    wait_until_finished(page)
    assert cut["done"]
    expect(page.locator("#connection")).to_have_text("Offline · polling")
    states = page.evaluate("window.liveStates")
    after_subscribing = states[states.index("Live updates"):]
    assert after_subscribing == ["Live updates", "Live updates lost · polling", "Finished"], states
    assert sum(url.endswith(f"/jobs/{job_id}") for url in polls) >= 2  # polled, then read once finished
    shown = page.locator("#results-body tr.result-match").count()
    assert 1 <= shown < sum(map(len, corpus.expected.values()))  # what came before the socket closed
    expect(page.locator("#job-status")).to_have_text("completed with errors")
    book = download_report(page, tmp_path)
    assert len(book_rows(book)) == 30
    expect_recent_status(page, job_id, "completed with errors")


def test_a_socket_that_comes_back_takes_over_from_polling(page, local_cloud):
    corpus = make_corpus(30, CODES, seed=23)
    connections: list[list[dict]] = []  # what the page sent on each socket

    # The first socket closes at the first match; the page's reconnection
    # goes through. Polls are refused, so only the socket can end the job.
    def route(ws: WebSocketRoute) -> None:
        sent: list[dict] = []
        connections.append(sent)
        server = ws.connect_to_server()

        def upstream(message):
            sent.append(json.loads(message))
            server.send(message)

        def downstream(message):
            ws.send(message)
            if len(connections) == 1 and '"MATCH_FOUND"' in str(message):
                ws.close(code=1001, reason="test: socket lost")
        ws.on_message(upstream)
        server.on_message(downstream)

    page.route_web_socket(lambda url: url.startswith("ws"), route)
    page.route(re.compile(r"/jobs(/[^/?]+)?(\?.*)?$"),
               lambda route: route.abort() if route.request.method == "GET" else route.continue_())
    open_dashboard(page, local_cloud)
    job_id = start_job(page, "scan", "drawings.zip", zip_bytes(corpus.documents), "application/zip",
                       options={"Target hole codes": ", ".join(CODES)}, more={"Documents per chunk": "2"})

    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#job-status")).to_have_text("completed")
    expect(page.locator("#connection")).to_have_text("Live")
    assert len(connections) == 2
    assert {"action": "subscribe", "job_id": job_id} in connections[1]
    states = page.evaluate("window.liveStates")
    assert "Live updates lost · polling" in states and states[-1] == "Finished", states
    assert page.get_by_role("button", name="Download report").is_visible()


def test_a_carbon_csv_shows_its_row_errors_and_its_report(page, local_cloud, tmp_path):
    rows = [["activity", "amount", "unit", "region", "year"]]
    rows += [["Diesel", str(10 + i), "litres", "GB", "2023"] for i in range(240)]
    rows += [["Diesel", "lots", "litres", "GB", "2023"], ["Moonbeams", "5", "kWh", "GB", "2023"]]
    open_dashboard(page, local_cloud)
    job_id = start_job(page, "carbon", "fleet.csv", csv_bytes(rows), "text/csv", options={"Region": "GB"})

    wait_until_finished(page)
    expect(page.locator("#job-status")).to_have_text("completed with errors")
    assert table_headers(page) == ["Kind", "Row", "Status or error"]  # a table has no files or codes
    errors = table_rows(page, "error")
    assert sorted(int(r["number"]) for r in errors) == [242, 243]  # data rows 241 and 242, after the header
    assert any("lots" in r["detail"] for r in errors)
    expect(page.locator("#results-counts")).to_have_text("2 row errors")
    assert totals(page)["rows calculated"] == "240" and totals(page)["rows rejected"] == "2"
    book = download_report(page, tmp_path)
    assert len(book_rows(book)) == 240
    serve_downloads_as_s3_does(page, local_cloud)
    saved = download(page, "Rows (CSV)", tmp_path / "rows.csv")
    assert len(list(csv.DictReader(saved.open(newline="")))) == 240  # the rows calculated
    expect_recent_status(page, job_id, "completed with errors")
    assert page.problems == []


def test_a_scanned_tiff_shows_its_npis_page_by_page_and_its_pdf(page, local_cloud, tmp_path):
    rng = random.Random(8)
    wanted = {2: [valid_npi(rng)], 7: [valid_npi(rng), valid_npi(rng)]}
    data, expected = npi_document(8, wanted, rng, size=(1000, 700), font_size=30)
    open_dashboard(page, local_cloud)
    job_id = start_job(page, "pages", "fax.tiff", data, "image/tiff", checks=("Pdf",))

    wait_until_finished(page)
    expect(page.locator("#job-status")).to_have_text("completed")
    expect(page.locator("#progress-counts")).to_have_text("8 of 8 pages")
    assert table_headers(page) == ["Kind", "Page", "Found", "Status or error"]
    found = sorted((int(r["number"]), r["code"]) for r in table_rows(page, "match"))
    assert found == sorted((p, npi) for p, npis in expected.npis.items() for npi in npis)
    assert totals(page)["% of pages with an NPI"] == "25" and totals(page)["pages"] == "8"
    serve_downloads_as_s3_does(page, local_cloud)
    assert download(page, "PDF", tmp_path / "npi.pdf").read_bytes().startswith(b"%PDF")
    expect_recent_status(page, job_id, "completed")
    assert page.problems == []


def test_a_job_started_while_the_socket_is_down_completes_by_polling(page, local_cloud, tmp_path):
    page.route_web_socket(lambda url: url.startswith("ws"), lambda ws: ws.close(code=1011, reason="down"))
    open_dashboard(page, local_cloud)
    expect(page.locator("#connection")).to_have_text("Offline · polling")
    buffer = io.StringIO()
    make_frame(1500, seed=5).to_csv(buffer, index=False)
    # An option the processor refuses is said on the form, and nothing starts.
    page.get_by_label("Processor").select_option("profile")
    page.get_by_label("Type threshold").fill("0.2")
    choose_file(page, "customers.csv", buffer.getvalue().encode(), "text/csv")
    page.get_by_role("button", name="Start job").click()
    expect(page.get_by_role("alert")).to_have_text(
        "The job could not be started: options.type_threshold must be between 0.5 and 1, got 0.2")
    expect(page.locator("#job-name")).to_have_text("No job yet: start one, or choose a recent job.")
    page.problems.clear()  # the browser logs the 400 as a failed load

    started = time.monotonic()
    job_id = start_job(page, "profile", "customers.csv", buffer.getvalue().encode(), "text/csv",
                       options={"Type threshold": "0.9"})

    expect(page.locator("#live-status")).to_contain_text("polling")
    wait_until_finished(page)
    assert time.monotonic() - started < JOB_TIMEOUT_MS / 1000
    expect(page.locator("#job-status")).to_have_text("completed")
    expect(page.locator("#results-empty")).to_have_text(
        "Matches and row errors come with live updates; the report has every one.")
    assert totals(page)["rows"] == "1,500"
    assert download_report(page, tmp_path).sheetnames
    page.get_by_role("button", name="Refresh").click()
    expect_recent_status(page, job_id, "completed")


def test_an_upload_storage_refuses_is_said_and_not_waited_for(page, local_cloud):
    refusal = ("<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
               "<Message>Policy expired</Message></Error>")
    page.route(lambda url: url.startswith(local_cloud.aws_url),
               lambda route: route.fulfill(status=403, body=refusal, content_type="application/xml",
                                           headers={"Access-Control-Allow-Origin": "*"}))
    open_dashboard(page, local_cloud)
    rows = [["activity", "amount", "unit"], ["Diesel", "1", "litres"]]
    start_job(page, "carbon", "fleet.csv", csv_bytes(rows), "text/csv")
    said = "storage answered 403: Policy expired"
    expect(page.locator("#form-error")).to_have_text(f"The job could not be started: {said}")
    expect(page.locator("#alert")).to_have_text(f"The file did not reach storage: {said}")
    expect(page.locator("#live-status")).to_have_text("")
    expect(page.get_by_role("button", name="Start job")).to_be_enabled()


# -- signing in ---------------------------------------------------------------------

def test_without_a_key_the_page_asks_for_one_before_anything_else(page, local_cloud):
    page.goto(f"{local_cloud.api_url}/")
    form = page.locator("#sign-in")
    expect(form).to_be_visible()
    expect(page.locator("#app")).to_be_hidden()
    expect(page.locator("#api-key-hint")).to_have_text("make run prints one: slk_ and 43 more characters.")
    expect(page.locator("#processor option[value=scan]")).to_be_attached()  # GET /processors is public
    page.get_by_label("API key").fill("not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#sign-in-error")).to_contain_text("That is not an API key")
    assert job_calls(page, local_cloud) == [] and page.sockets == []

    # Typed in (with the blanks a paste brings), the key signs in.
    page.get_by_label("API key").fill(f"  {local_cloud.api_key}\n")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signed-in")).to_have_text(f"Signed in · key …{local_cloud.api_key[-4:]}")
    expect(form).to_be_hidden()
    expect(page.locator("#connection")).to_have_text("Live")
    expect(page.locator("#recent-hint")).not_to_have_text(re.compile("could not"))
    assert page.get_by_label("API key", exact=True).input_value() == ""
    assert_the_key_went_to_the_api_only(page, local_cloud, local_cloud.api_key)

    # Remembered by this browser until signing out.
    page.reload()
    expect(page.locator("#signed-in")).to_be_visible()
    expect(form).to_be_hidden()
    page.get_by_role("button", name="Sign out").click()
    expect(form).to_be_visible()
    expect(page.locator("#sign-in-error")).to_be_hidden()
    expect(page.locator("#recent-jobs .job-item")).to_have_count(0)
    assert page.evaluate("localStorage.length") == 0
    calls = len(job_calls(page, local_cloud))
    page.reload()
    expect(form).to_be_visible()
    page.wait_for_timeout(300)
    assert len(job_calls(page, local_cloud)) == calls
    assert page.problems == []


def test_a_refused_key_brings_the_form_back_and_the_job_form_keeps_its_choices(page, local_cloud):
    wrong = "slk_" + secrets.token_urlsafe(32)
    page.goto(f"{local_cloud.api_url}/#key={wrong}")
    expect(page.locator("#sign-in-error")).to_have_text(REFUSAL)
    expect(page.locator("#sign-in-error")).to_contain_text(f"…{wrong[-4:]}")
    expect(page.locator("#app")).to_be_hidden()
    assert page.url == f"{local_cloud.api_url}/" and page.evaluate("localStorage.length") == 0
    assert page.sockets == []  # no socket for a key the API refused

    # A key revoked while the page uses it, after a job was half set up.
    key, record = new_key(local_cloud)
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#connection")).to_have_text("Live")
    page.get_by_label("Processor").select_option("carbon")
    page.get_by_label("Region", exact=True).fill("GB")
    choose_file(page, "fleet.csv", csv_bytes([["activity", "amount", "unit"], ["Diesel", "1", "litres"]]),
                "text/csv")
    assert revoke_key(key_store(local_cloud), "local", record.key_id)
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#sign-in-error")).to_have_text(REFUSAL)
    expect(page.locator("#sign-in-error")).to_contain_text(f"…{key[-4:]}")
    assert page.evaluate("localStorage.length") == 0

    page.get_by_label("API key").fill(local_cloud.api_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#app")).to_be_visible()
    expect(page.get_by_label("Processor")).to_have_value("carbon")
    expect(page.get_by_label("Region", exact=True)).to_have_value("GB")
    assert page.locator("#file").evaluate("input => input.files[0].name") == "fleet.csv"


def test_a_socket_refusing_the_key_signs_the_page_out(page, local_cloud):
    key, record = new_key(local_cloud)

    # The key is revoked between the ticket the API gave and the socket's connect.
    def answer_then_revoke(route: Route) -> None:
        response = route.fetch()
        revoke_key(key_store(local_cloud), "local", record.key_id)
        route.fulfill(response=response)
    page.route(re.compile(r"/live/tickets$"), answer_then_revoke, times=1)
    page.goto(f"{local_cloud.api_url}/#key={key}")
    expect(page.locator("#sign-in-error")).to_have_text(REFUSAL)
    assert len(socket_tickets(page, local_cloud)) == 1
    checks = [r.url for r in job_calls(page, local_cloud)]
    assert checks[-1].endswith("/jobs?limit=1")  # the API confirmed it was the key


def test_another_tenant_sees_none_of_the_jobs_and_cannot_follow_one(page, local_cloud):
    rows = [["activity", "amount", "unit"], ["Diesel", "1", "litres"]]
    created = local_cloud.http.post(f"{local_cloud.api_url}/jobs?processor=carbon&filename=theirs.csv",
                                    data=csv_bytes(rows), headers={"Content-Type": "text/csv"})
    assert created.status_code == 202, created.text
    theirs = local_cloud.http.get(f"{local_cloud.api_url}/jobs/{created.json()['job_id']}").json()

    other, _ = new_key(local_cloud, f"other-{secrets.token_hex(3)}")
    open_dashboard(page, local_cloud, key=other)
    expect(page.locator("#recent-hint")).to_have_text("No jobs yet.")
    expect(page.locator("#recent-jobs .job-item")).to_have_count(0)

    # Given the job's id (here in a list the test forges), the page follows
    # it; the socket and the API answer as for a job that does not exist.
    page.route(re.compile(r"/jobs\?limit=20$"),
               lambda route: route.fulfill(json={"jobs": [theirs], "processors": []}))
    page.get_by_role("button", name="Refresh").click()
    page.locator(f'.job-item[data-job-id="{theirs["job_id"]}"]').click()
    expect(page.locator("#alert")).to_have_text(f"no job with id {theirs['job_id']!r}")
    expect(page.locator("#job-status")).to_be_hidden()
    expect(page.locator("#live-status")).to_have_text("")
    expect(page.locator("#results-body tr")).to_have_count(0)
    as_other = ApiSession(local_cloud.api_url, other)
    for route in ("", "/result", "/report?link=1"):
        assert as_other.get(f"{local_cloud.api_url}/jobs/{theirs['job_id']}{route}").status_code == 404
