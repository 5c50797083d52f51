"""Results survive faults. A fault is injected at every call a job makes to
S3, DynamoDB and SQS while it is dispatched, worked and aggregated, and while
its end is announced: the process killed before or after the call, the call
throttled or its reply lost, the worker stalled there while its message is
delivered again. Each step also does all its work once and dies before its
message is deleted, and every event is delivered twice, out of order, and
twice at the same time. Every run must leave what a fault-free run of the
same file leaves: the same final status, result JSON, row file, report and
file record, exact counters, each chunk settled once, each live match and row
error pushed at most once, one final notice per job once de-duplicated by
event_id.

The faults are injected at the pipeline's ports (tests/support/faults.py);
nothing inside chalicelib is patched. The last test prints the table of the
faults injected and survived. Faults the pipeline does not survive yet are
known bugs, each reproduced by a strict xfail test below.
"""
from __future__ import annotations

import functools
import io
import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import openpyxl
import pytest

from chalicelib.jobs.sweeper import sweep_stalled_jobs
from tests.support.documents import make_corpus, zip_bytes
from tests.support.faults import (
    CallSite,
    Fault,
    FaultPlan,
    ProcessDied,
    SqsDriver,
    faults_to_inject,
)
from tests.support.files import csv_bytes
from tests.support.memory_pipeline import memory_pipeline
from tests.support.pages import npi_document, valid_npi

# A fault that stops a report half-written leaves openpyxl's write-only
# generators to be collected unfinished, and one inside pdfium's read callback
# is printed by ctypes; both complain when collected: noise, not findings
# (the runs themselves are judged by what they leave).
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

FOLLOWER = "c1"
LIVE_ONCE = ("MATCH_FOUND", "ROW_ERROR")
CALLBACK_URL = "http://127.0.0.1:9/sluice-callback"
# What a chunk's record says about the chunk (not about its deliveries).
CHUNK_FIELDS = ("index", "status", "rows", "error", "result_key", "summary", "key", "start", "end",
                "first_row", "last_row")


# -- the files -------------------------------------------------------------------

def _profile_csv(failing_tail: bool = False) -> bytes:
    rows = [["id", "score", "note"]]
    for i in range(1, 20):
        score = "n/a" if i % 9 == 0 else f"{i * 1.5}"
        note = f'line {i}\nand "{i}", more' if i % 4 == 0 else ("" if i % 5 == 0 else f"plain {i}")
        rows.append([i, score, note])
    if not failing_tail:
        return csv_bytes(rows)
    # A long record ends a chunk, so the next holds only a record whose
    # quote never closes: that chunk fails.
    rows.append([20, "0.5", "long " * 40])
    return csv_bytes(rows) + b'21,1.5,"never closed\n22,2,x\n'


def _carbon_csv() -> bytes:
    rows = [["activity", "amount", "unit", "region"]]
    kinds = [("electricity", "kWh", "UK"), ("diesel", "litres", ""), ("natural_gas", "kWh", "UK"),
             ("petrol", "litres", "")]
    for i in range(1, 19):
        activity, unit, region = kinds[i % len(kinds)]
        rows.append([activity, str(100 + 7 * i), unit, region])
    rows.insert(6, ["unobtainium", "5", "kg", ""])  # row errors, pushed live
    rows.insert(13, ["petrol", "lots", "litres", ""])
    return csv_bytes(rows)


def _scan_zip() -> bytes:
    corpus = make_corpus(6, ["HOLE-1", "HOLE-2", "HOLE-3"], seed=5, broken=1)
    return zip_bytes(corpus.documents)


def _pages_pdf() -> bytes:
    rng = random.Random(4)
    npis = {2: [valid_npi(rng)], 7: [valid_npi(rng), valid_npi(rng)]}
    data, _ = npi_document(10, npis, rng, kind="pdf_text")  # text layers: no OCR, quick
    return data


@dataclass(frozen=True)
class Case:
    name: str
    processor: str
    filename: str
    make: Callable[[], bytes]
    options: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    callback: bool = False
    #: pdfium is not thread-safe, and two Lambdas are two processes: for
    #: pages the STALL faults overlap two deliveries instead of threads
    threads: bool = True

    @functools.cached_property
    def data(self) -> bytes:
        return self.make()


CASES = {c.name: c for c in [
    Case("profile", "profile", "scores.csv", _profile_csv, settings={"chunk_bytes": 120}),
    Case("profile, a chunk fails", "profile", "broken.csv", functools.partial(_profile_csv, True),
         settings={"chunk_bytes": 200}),
    Case("carbon", "carbon", "activities.csv", _carbon_csv, settings={"chunk_bytes": 150}, callback=True),
    Case("scan", "scan", "drawings.zip", _scan_zip,
         options={"target_hole_codes": ["HOLE-1", "HOLE-2", "HOLE-3"], "documents_per_chunk": 2}),
    Case("pages", "pages", "claims.pdf", _pages_pdf, options={"pages_per_batch": 5, "pdf": True},
         threads=False),
]}


# -- running a job and reading what it left ----------------------------------------

@dataclass
class Run:
    driver: SqsDriver
    job_id: str


def run_case(case: Case, plan: FaultPlan | None = None, sweeper: bool = True, **delivery) -> Run:
    settings = {"callback_secret": "s", "callback_allow_private": True, **case.settings}
    driver = SqsDriver(memory_pipeline(**settings), plan or FaultPlan(),
                       sweeper=sweep_stalled_jobs if sweeper else None, **delivery)
    job_id = driver.submit(case.data, case.filename, case.processor, dict(case.options),
                           callback_url=CALLBACK_URL if case.callback else None, follower=FOLLOWER)
    driver.run()
    return Run(driver, job_id)


def snapshot(run: Run) -> dict[str, Any]:
    """Everything the job left that a user or a later step can see, with the
    job's id and timestamps (which differ between runs) written alike."""
    pipe, job_id = run.driver.base, run.job_id
    job = pipe.store.get_job(job_id)

    def norm(value: Any) -> Any:
        text = json.dumps(value, sort_keys=True, default=str)
        text = text.replace(job_id, "<job>").replace(job.created_at, "<created>")
        # The finish time is in each final notice's event_id.
        return json.loads(text.replace(job.finished_at, "<finished>") if job.finished_at else text)

    files = {}
    for key, (data, _, _) in pipe.blobs.objects.items():
        if not key.startswith(("results/", "processed/")):
            continue
        if key.endswith(".xlsx"):
            files[key] = _cells(data)
        elif key.endswith((".json", ".csv")):
            files[key] = data.decode("utf-8")
        else:
            files[key] = len(data)
    record = pipe.store.get_record(job_id, "FILE")
    if record:
        record = {k: v for k, v in record.items() if not k.endswith("_timestamp")}
    return norm({
        "status": job.status.value,
        "error": job.error,
        "counters": {name: getattr(job, name) for name in (
            "chunks_total", "chunks_done", "chunks_failed", "rows_done", "items_total", "items_label")},
        "totals": job.totals,
        "outputs": job.outputs,
        "files": files,
        "file_record": record,
        "chunks": [{k: c.get(k) for k in CHUNK_FIELDS} for c in pipe.store.list_chunks(job_id)],
        "live": sorted(json.dumps(m, sort_keys=True) for m in _live_once(run)),
        "notices": _by_event_id(run.driver.results),
        "callbacks": _by_event_id([m["notice"] for m in run.driver.callbacks]),
    })


def _cells(data: bytes) -> dict[str, list]:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    return {sheet.title: [list(row) for row in sheet.iter_rows(values_only=True)] for sheet in book}


def _live_once(run: Run) -> list[dict]:
    return [m for m in run.driver.base.live.sent.get(FOLLOWER, []) if m["type"] in LIVE_ONCE]


def _by_event_id(notices: list[dict]) -> dict[str, dict]:
    """One notice per event_id (what a receiver keeps), without its timestamps."""
    kept = {}
    for notice in notices:
        kept.setdefault(notice["event_id"], {k: v for k, v in notice.items() if not k.endswith("_at")})
    return kept


def problems(run: Run, expected: dict[str, Any]) -> list[str]:
    """What is wrong with a run, against the fault-free run's snapshot."""
    driver = run.driver
    found = []
    job = driver.base.store.get_job(run.job_id)
    if not job.status.is_final:
        found.append(f"the job is still {job.status.value}")
    if driver.dead_letters:
        found.append(f"{len(driver.dead_letters)} event(s) gave up on: "
                     + ", ".join(f"{d.step} after {d.receives}" for d in driver.dead_letters))
    settled = driver.recorder.settled
    wrong = {i: settled[i] for i in range(job.chunks_total or 0) if settled[i] != 1}
    if wrong:
        found.append(f"chunks settled other than once: {wrong}")
    pushed = Counter(json.dumps(m, sort_keys=True) for m in _live_once(run))
    if any(n > 1 for n in pushed.values()):
        found.append(f"live messages pushed more than once: {[m for m, n in pushed.items() if n > 1][:3]}")
    for name, notices in (("results", driver.results), ("callback", [m["notice"] for m in driver.callbacks])):
        by_id = defaultdict(set)
        for notice in notices:
            by_id[notice["event_id"]].add(json.dumps(notice, sort_keys=True))
        if any(len(copies) > 1 for copies in by_id.values()):
            found.append(f"{name} messages with one event_id and different bodies")
    got = snapshot(run)
    # A live message lost with a process that died before pushing it is
    # allowed (live messages are a view; the result holds them all).
    if not set(got["live"]) <= set(expected["live"]):
        found.append("live messages the fault-free run did not push")
    got["live"] = expected["live"]
    for key in expected:
        if got[key] != expected[key]:
            difference = _first_difference(got[key], expected[key])
            found.append(f"{key} differs from the fault-free run: {difference}")
    return found


def _first_difference(got: Any, want: Any, path: str = "") -> str:
    if isinstance(got, dict) and isinstance(want, dict):
        for key in sorted(set(got) | set(want), key=str):
            if got.get(key) != want.get(key):
                return _first_difference(got.get(key), want.get(key), f"{path}/{key}")
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            if a != b:
                return _first_difference(a, b, f"{path}[{i}]")
    return f"{path}: {str(got)[:160]!r} != {str(want)[:160]!r}"


@functools.cache
def fault_free(case_name: str) -> tuple[dict[str, Any], tuple[CallSite, ...]]:
    """The fault-free run's snapshot and every call site it went through."""
    run = run_case(CASES[case_name])
    expected = snapshot(run)
    assert problems(run, expected) == [] and run.driver.sweeps == 0
    return expected, tuple(run.driver.plan.calls)


# -- bugs the sweep finds ---------------------------------------------------------------

@dataclass(frozen=True)
class KnownBug:
    """A fault the pipeline does not survive yet (or survives only when the
    sweeper, minutes later, ends the stalled job). `test` reproduces it as a
    strict xfail: when the bug is fixed it passes, and this entry goes. Every
    problem such a run reports contains `symptom`."""

    test: str
    symptom: str
    applies: Callable[[str, CallSite, Fault, frozenset[CallSite]], bool]


KNOWN_BUGS: list[KnownBug] = []  # every bug the sweep found is fixed; a new one goes here


def known_bug(case: str, site: CallSite, fault: Fault, sites: tuple[CallSite, ...]) -> KnownBug | None:
    # The calls a worker makes after it counted a failed chunk.
    failed = [i for i, s in enumerate(sites) if s.method == "fail_chunk"]
    after_fail = frozenset(s for i in failed for s in sites[i + 1:] if s.step == sites[i].step)
    return next((b for b in KNOWN_BUGS if b.applies(case, site, fault, after_fail)), None)


# -- the sweep ------------------------------------------------------------------------

@dataclass
class Tally:
    runs: int = 0
    survived: int = 0
    #: survived only because the sweeper ended the stalled job: xfail test -> runs
    swept: Counter = field(default_factory=Counter)
    #: not survived, a known bug: xfail test -> runs
    known: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


TABLE: dict[tuple[str, str], Tally] = defaultdict(Tally)
STEP_ORDER = ("dispatch", "work", "aggregate", "stream")
UNDELETED = "work done, died before the SQS delete"
# Whole deliveries gone wrong, each run once per case.
MESSAGE_FAULTS = [
    ("delivered twice", "every event", {"duplicate": True}),
    ("out of order", "every message", {"shuffle": 1}),
    ("out of order", "every message", {"shuffle": 2}),
    ("twice and out of order", "every event", {"duplicate": True, "shuffle": 3}),
    ("two deliveries at once (threads)", "every event", {"concurrent": True}),
    ("two deliveries at once (threads)", "every event", {"concurrent": True, "shuffle": 4}),
]


def _count(fault: str, where: str, what: str, run: Run, expected: dict,
           bug: KnownBug | None = None) -> None:
    tally = TABLE[(fault, where)]
    tally.runs += 1
    found = problems(run, expected)
    explained = bug is not None and found and all(bug.symptom in p or "differs" in p for p in found)
    if not found and not run.driver.sweeps:
        tally.survived += 1
    elif not found and bug is not None:
        tally.survived += 1
        tally.swept[bug.test] += 1
    elif explained and any(bug.symptom in p for p in found):
        tally.known[bug.test] += 1
    else:
        found = found or [f"ended only by the sweeper ({run.driver.sweeps} sweep(s))"]
        tally.failures.append(f"{what}: {'; '.join(found)}")


@functools.cache
def sweep(case_name: str) -> tuple[str, ...]:
    """Every fault at every call site of the fault-free run, each step's
    message left undeleted once, and the message-level faults. Returns what
    did not survive, known bugs apart."""
    case = CASES[case_name]
    expected, sites = fault_free(case_name)
    before = sum(len(t.failures) for t in TABLE.values())
    for site, fault in faults_to_inject(sites):
        run = run_case(case, FaultPlan(site, fault))
        assert run.driver.plan.fired, f"{fault.name} at {site} never fired"
        _count(fault.value, site.where, f"[{case_name}] {fault.name} at {site}", run, expected,
               known_bug(case_name, site, fault, sites))
    for step in dict.fromkeys(s.step for s in sites):
        run = run_case(case, undeleted=step)
        _count(UNDELETED, step.split("#")[0], f"[{case_name}] {UNDELETED}: {step}", run, expected)
    for what, where, delivery in MESSAGE_FAULTS:
        if delivery.get("concurrent") and not case.threads:
            continue
        run = run_case(case, **delivery)
        _count(what, where, f"[{case_name}] {what} {delivery}", run, expected)
    failures = [f for t in TABLE.values() for f in t.failures]
    return tuple(failures[before:])


@pytest.mark.parametrize("case_name", list(CASES))
def test_every_fault_at_every_step_leaves_the_fault_free_result(case_name):
    failures = sweep(case_name)
    assert not failures, f"{len(failures)} run(s) did not survive:\n" + "\n".join(failures[:15])


def test_the_table_of_faults_shows_every_fault_survived(capsys):
    for case_name in CASES:
        sweep(case_name)
    lines = _table()
    with capsys.disabled():
        print("\n".join(lines))
    assert all(t.runs == t.survived + sum(t.known.values()) for t in TABLE.values()), "\n".join(lines)
    assert sum(t.runs for t in TABLE.values()) > 900


def _table() -> list[str]:
    faults = [f.value for f in Fault] + [UNDELETED] + [m[0] for m in MESSAGE_FAULTS]

    def order(key):
        fault, where = key
        step = where.split(":")[0]
        return (STEP_ORDER.index(step) if step in STEP_ORDER else len(STEP_ORDER), where,
                faults.index(fault))

    head = (f"{'fault':45} {'where':33} {'runs':>5} {'survived':>8} {'swept':>5}  "
            "known bug (strict xfail test)")
    lines = ["", f"Faults injected and survived ({'; '.join(CASES)}):", head, "-" * len(head)]
    for key in sorted(TABLE, key=order):
        tally = TABLE[key]
        bugs = Counter(tally.swept) + Counter(tally.known)
        lines.append(f"{key[0]:45} {key[1]:33} {tally.runs:>5} {tally.survived:>8} "
                     f"{sum(tally.swept.values()) or '':>5}  "
                     + ", ".join(f"{n} x {test}" for test, n in bugs.items()))
    total = {name: sum(sum(getattr(t, name).values()) if name in ("swept", "known") else getattr(t, name)
                       for t in TABLE.values()) for name in ("runs", "survived", "swept", "known")}
    lines.append(f"{'total':79} {total['runs']:>5} {total['survived']:>8} {total['swept']:>5}  "
                 f"{total['known']} run(s) not survived, all known bugs")
    lines.append("swept: survived only because the sweeper ended the stalled job (minutes later)")
    return lines


# -- each known bug, on its own -----------------------------------------------------------

def site_of(case_name: str, step: str, method: str, detail: str | None = None,
            occurrence: int = 1) -> CallSite:
    _, sites = fault_free(case_name)
    return next(s for s in sites if s.step.startswith(step) and s.method == method
                and (detail is None or s.detail == detail) and s.occurrence == occurrence)


def _survives(case_name: str, site: CallSite, fault: Fault, sweeper: bool = True, **plan) -> list[str]:
    expected, _ = fault_free(case_name)
    run = run_case(CASES[case_name], FaultPlan(site, fault, **plan), sweeper=sweeper)
    assert run.driver.plan.fired
    return problems(run, expected)


def test_a_failed_chunk_whose_worker_died_after_counting_it_ends_the_job_without_the_sweeper():
    case = "profile, a chunk fails"
    _, sites = fault_free(case)
    step = next(s.step for s in sites if s.method == "fail_chunk")
    assert _survives(case, site_of(case, step, "fail_chunk"), Fault.CRASH_AFTER, sweeper=False) == []


@pytest.mark.parametrize("method, detail, fault", [("transition", "-> aggregating", Fault.CRASH_AFTER),
                                                   ("send_all", "aggregate", Fault.THROTTLE)])
def test_a_worker_dying_between_claiming_the_aggregation_and_queueing_it_strands_no_job(
        method, detail, fault):
    site = site_of("carbon", "work", method, detail)
    assert _survives("carbon", site, fault, sweeper=False) == []


# The FILE record is written in the final transition's own write (it had its
# own put_record after it, which a throttle could also miss): a fault at that
# write leaves both or neither.
@pytest.mark.parametrize("method, fault", [("transition", Fault.CRASH_AFTER),
                                           ("transition", Fault.LOST_REPLY)])
def test_the_file_record_is_written_however_the_aggregator_dies(method, fault):
    site = site_of("carbon", "aggregate", method)
    assert _survives("carbon", site, fault) == []




def test_process_died_is_no_exception_a_handler_could_swallow():
    assert not issubclass(ProcessDied, Exception)
