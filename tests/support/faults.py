"""Faults injected at the pipeline's ports, and a driver that delivers events
as AWS does: at least once, out of order, sometimes twice at the same time.

Nothing inside chalicelib is patched. The Pipeline's ports (BlobStore,
JobStore, the TaskQueues) are wrapped; every call through a wrapper is one
CallSite, named by the invocation it belongs to ("dispatch", "work#3",
"aggregate", "stream"), the port, the method, what it touches and how many
such calls came before it. A FaultPlan aims one fault at one site:

    CRASH        the process dies right before the call (a killed Lambda):
                 ProcessDied, a BaseException no `except Exception` swallows;
                 once dead, every later call of that invocation dies too
    CRASH_AFTER  the call takes effect, then the process dies (after the
                 last call of an invocation: before the SQS delete)
    THROTTLE     the service refuses the call: ServiceError, the ports'
                 retryable error (or, with `throttle=adapter_error`,
                 exactly what the AWS adapter raises for a throttle today)
    LOST_REPLY   the call takes effect, then its answer is lost (the same
                 error as THROTTLE)
    STALL        the worker stalls right before the call until the message's
                 visibility timeout expires: the message is delivered again
                 and that second delivery runs to its end, then the first
                 one goes on

A fault-free run lists every site (`plan.calls`); faults_to_inject picks
the faults worth injecting at each, and one run per (site, fault) injects
each fault at each step.

The SqsDriver delivers events as AWS does and redelivers whatever an
invocation did not settle: SQS for the work and aggregate queues, Lambda's
asynchronous retries for the S3 event, the DynamoDB stream (job changes, in
order) for the final-status announcements and the stream's copy of each
aggregation message. It adds the faults of whole
deliveries: an invocation that did all its work but died before its message
was deleted, every event delivered twice, out of order, or on two threads at
once. When nothing is left to deliver and a job is still not final, it runs
the scheduled sweeper, if it was given one, as if its deadlines had passed;
`driver.sweeps` says how many sweeps it took.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import json
import os
import random
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.events import run_sqs_batch
from chalicelib.jobs.dispatch import handle_uploaded_object, new_job, store_upload
from chalicelib.jobs.finish import aggregate_job
from chalicelib.jobs.lifecycle import queue_claimed_aggregations
from chalicelib.jobs.model import ChunkTask, Job, ServiceError
from chalicelib.jobs.pipeline import Pipeline
from chalicelib.jobs.work import run_chunk
from chalicelib.live import service as live
from chalicelib.notify.final_status import announce_final_statuses


class ProcessDied(BaseException):  # noqa: N818 - it is an event, not an error to handle
    """The Lambda running this invocation was killed (timeout, OOM, host
    loss). A BaseException, so that no `except Exception` in the code under
    test can swallow it and carry on."""


class Fault(enum.Enum):
    CRASH = "process dies before the call"
    CRASH_AFTER = "process dies after the call"
    THROTTLE = "throttled (call refused)"
    LOST_REPLY = "call made, reply lost"
    STALL = "visibility timeout: redelivered while stalled"


# Calls that change something: only these can have a reply lost that matters.
WRITES = frozenset({"put", "upload_from", "delete_prefix", "create_job", "transition", "put_chunks",
                    "complete_chunk", "fail_chunk", "put_record", "send_all", "send"})
# Calls that never reach a service (a presigned URL is computed locally).
LOCAL = frozenset({"presign_get"})


@dataclass(frozen=True)
class CallSite:
    step: str  # the invocation: dispatch, work#<chunk>, aggregate, stream
    port: str  # S3, DynamoDB, SQS:<queue>
    method: str
    detail: str  # what the call touches, with the job id written <job>
    occurrence: int  # 1 for the first such call of the run, 2 for the next...

    @property
    def step_kind(self) -> str:
        return self.step.split("#")[0]

    @property
    def where(self) -> str:
        return f"{self.step_kind}: {self.port} {self.method}"

    def __str__(self) -> str:
        return f"{self.step} {self.port}.{self.method}({self.detail}) #{self.occurrence}"


def service_error(port: str, method: str) -> Exception:
    return ServiceError(f"{port} throttled {method} (injected)")


class FaultPlan:
    """One fault aimed at one call site, and the log of every call made."""

    def __init__(self, target: CallSite | None = None, fault: Fault | None = None,
                 throttle: Callable[[str, str], BaseException] = service_error):
        self.target = target
        self.fault = fault
        self.throttle = throttle
        self.fired = False
        self.armed = False
        #: the process of the current invocation is dead: nothing more it
        #: does reaches the outside
        self.dead = False
        #: the invocation running now (set by the driver; one at a time,
        #: so background threads of an invocation are attributed to it)
        self.step = "setup"
        self.calls: list[CallSite] = []
        #: called at a STALL: runs the second delivery of the current message
        self.on_stall: Callable[[], None] = lambda: None
        self._seen: Counter[tuple[str, str, str, str]] = Counter()
        self._lock = threading.Lock()

    def call(self, port: str, method: str, detail: str, do: Callable[[], Any]) -> Any:
        if not self.armed:
            return do()
        with self._lock:
            if self.dead:
                raise ProcessDied(f"{self.step}: the process is already dead")
            key = (self.step, port, method, detail)
            self._seen[key] += 1
            site = CallSite(*key, self._seen[key])
            self.calls.append(site)
            hit = not self.fired and site == self.target
            self.fired = self.fired or hit
        if not hit:
            return do()
        return self._inject(site, do)

    def _inject(self, site: CallSite, do: Callable[[], Any]) -> Any:
        if self.fault is Fault.CRASH:
            self.dead = True
            raise ProcessDied(f"killed before {site}")
        if self.fault is Fault.THROTTLE:
            raise self.throttle(site.port, site.method)
        if self.fault is Fault.STALL:
            self.on_stall()
            return do()
        result = do()
        if self.fault is Fault.CRASH_AFTER:
            self.dead = True
            raise ProcessDied(f"killed after {site}")
        if self.fault is Fault.LOST_REPLY:
            raise self.throttle(site.port, site.method)
        return result


def faults_to_inject(sites: Iterable[CallSite]) -> list[tuple[CallSite, Fault]]:
    """The faults worth injecting at the sites of a fault-free run (in the
    order they were called), each once:

    CRASH before every write, and before the first read after a write (or
    the first call of an invocation): a crash before a later read leaves
    the world as a crash before that first one does, since reads change
    nothing; CRASH_AFTER and LOST_REPLY after every write (after a read they
    are a crash before the next call, or a throttle); THROTTLE at every call
    that reaches a service (what catches it differs from call to call);
    STALL at every call of dispatch, work and aggregation (what the stalled
    delivery read before stalling differs from call to call)."""
    chosen = []
    previous: CallSite | None = None
    for site in sites:
        write = site.method in WRITES
        after_write = previous is None or previous.step != site.step or previous.method in WRITES
        if write or after_write:
            chosen.append((site, Fault.CRASH))
        if site.method not in LOCAL:
            chosen.append((site, Fault.THROTTLE))
        if write:
            chosen += [(site, Fault.CRASH_AFTER), (site, Fault.LOST_REPLY)]
        if site.step_kind != "stream":
            chosen.append((site, Fault.STALL))
        previous = site
    return chosen


# -- the ports, wrapped ----------------------------------------------------------

class _Wrapped:
    """Methods named below describe what they touch; any other public method
    of the port is a call site too (described by its name alone), and plain
    attributes of a fake pass through."""

    def __init__(self, inner: Any, plan: FaultPlan, port: str, job_ids: set[str]):
        self._inner = inner
        self._plan = plan
        self._port = port
        self._job_ids = job_ids

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name.startswith("_") or not callable(attr):
            return attr
        return lambda *args, **kwargs: self._call(name, "", lambda: attr(*args, **kwargs))

    def _call(self, method: str, detail: str, do: Callable[[], Any]) -> Any:
        for job_id in self._job_ids:
            detail = detail.replace(job_id, "<job>")
        return self._plan.call(self._port, method, detail, do)


class FaultyBlobStore(_Wrapped):
    def head(self, key):
        return self._call("head", key, lambda: self._inner.head(key))

    def get(self, key):
        return self._call("get", key, lambda: self._inner.get(key))

    def read_range(self, key, start, end):
        return self._call("read_range", key, lambda: self._inner.read_range(key, start, end))

    def iter_blocks(self, key, block_size) -> Iterator[bytes]:
        # A generator, as S3's: the request goes out at the first block.
        yield from self._call("iter_blocks", key, lambda: self._inner.iter_blocks(key, block_size))

    def put(self, key, data, content_type="application/octet-stream", metadata=None):
        return self._call("put", key, lambda: self._inner.put(key, data, content_type, metadata))

    def download_to(self, key, path):
        return self._call("download_to", key, lambda: self._inner.download_to(key, path))

    def upload_from(self, path, key, content_type="text/csv"):
        return self._call("upload_from", key, lambda: self._inner.upload_from(path, key, content_type))

    def delete_prefix(self, prefix):
        return self._call("delete_prefix", prefix, lambda: self._inner.delete_prefix(prefix))

    def presign_get(self, key, seconds, filename=None):
        return self._call("presign_get", key, lambda: self._inner.presign_get(key, seconds, filename))


class FaultyJobStore(_Wrapped):
    def create_job(self, job, ttl_epoch):
        return self._call("create_job", "", lambda: self._inner.create_job(job, ttl_epoch))

    def get_job(self, job_id):
        return self._call("get_job", "", lambda: self._inner.get_job(job_id))

    def list_jobs(self, limit=50, tenant="default"):
        return self._call("list_jobs", "", lambda: self._inner.list_jobs(limit, tenant))

    def transition(self, job_id, from_statuses, to_status, **fields):
        return self._call("transition", f"-> {to_status}",
                          lambda: self._inner.transition(job_id, from_statuses, to_status, **fields))

    def put_chunks(self, job_id, chunks, ttl_epoch):
        detail = f"chunks {chunks[0]['index']}-{chunks[-1]['index']}" if chunks else "none"
        return self._call("put_chunks", detail, lambda: self._inner.put_chunks(job_id, chunks, ttl_epoch))

    def complete_chunk(self, job_id, index, rows, result_key, open_statuses, summary=None):
        return self._call("complete_chunk", f"chunk {index}", lambda: self._inner.complete_chunk(
            job_id, index, rows, result_key, open_statuses, summary=summary))

    def fail_chunk(self, job_id, index, error, open_statuses):
        return self._call("fail_chunk", f"chunk {index}",
                          lambda: self._inner.fail_chunk(job_id, index, error, open_statuses))

    def list_chunks(self, job_id):
        return self._call("list_chunks", "", lambda: self._inner.list_chunks(job_id))

    def put_record(self, job_id, sort_key, item, ttl_epoch):
        return self._call("put_record", sort_key,
                          lambda: self._inner.put_record(job_id, sort_key, item, ttl_epoch))

    def get_record(self, job_id, sort_key):
        return self._call("get_record", sort_key, lambda: self._inner.get_record(job_id, sort_key))


class FaultyTaskQueue(_Wrapped):
    def send_all(self, messages: Iterable[dict[str, Any]]) -> int:
        batch = list(messages)
        return self._call("send_all", _describe(batch), lambda: self._inner.send_all(batch))

    def send(self, message, delay_seconds=0):
        return self._call("send", _describe([message]), lambda: self._inner.send(message, delay_seconds))


def _describe(messages: list[dict[str, Any]]) -> str:
    chunks = [m["chunk"] for m in messages if "chunk" in m]
    if chunks:
        return f"chunks {chunks[0]}-{chunks[-1]}"
    return ",".join(sorted({str(m.get("type")) for m in messages}))


class RecordingJobStore:
    """A JobStore that also keeps what DynamoDB would tell about it: the
    stream of the jobs' META item, as (status before, job after), and how
    often each chunk was settled (a settle that returned True)."""

    def __init__(self, inner: Any):
        self._inner = inner
        self._lock = threading.Lock()
        self.stream: list[tuple[str | None, Job]] = []
        self.settled: Counter[int] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def create_job(self, job, ttl_epoch):
        created = self._inner.create_job(job, ttl_epoch)
        if created:
            self._record(None, job.job_id)
        return created

    def transition(self, job_id, from_statuses, to_status, **fields):
        before = self._inner.get_job(job_id).status.value
        after = self._inner.transition(job_id, from_statuses, to_status, **fields)
        with self._lock:
            self.stream.append((before, after))
        return after

    def complete_chunk(self, job_id, index, rows, result_key, open_statuses, summary=None):
        return self._settled(job_id, index, self._inner.complete_chunk(
            job_id, index, rows, result_key, open_statuses, summary=summary))

    def fail_chunk(self, job_id, index, error, open_statuses):
        return self._settled(job_id, index, self._inner.fail_chunk(job_id, index, error, open_statuses))

    def _settled(self, job_id: str, index: int, counted: bool) -> bool:
        if counted:
            with self._lock:
                self.settled[index] += 1
            self._record(None, job_id, same_status=True)
        return counted

    def changes_since(self, seen: int) -> list[tuple[str | None, Job]]:
        with self._lock:
            return self.stream[seen:]

    def _record(self, before: str | None, job_id: str, same_status: bool = False) -> None:
        job = self._inner.get_job(job_id)
        with self._lock:
            self.stream.append((job.status.value if same_status else before, job))


# -- what the AWS adapters raise ------------------------------------------------

# For each port method: the boto3 operation it makes first, and a call of the
# adapter that makes it.
_S3_CALLS = {
    "head": ("head_object", lambda s, path: s.head("k")),
    "get": ("get_object", lambda s, path: s.get("k")),
    "read_range": ("get_object", lambda s, path: s.read_range("k", 0, 10)),
    "iter_blocks": ("get_object", lambda s, path: list(s.iter_blocks("k", 10))),
    "put": ("put_object", lambda s, path: s.put("k", b"x")),
    "download_to": ("head_object", lambda s, path: s.download_to("k", path)),
    "upload_from": ("put_object", lambda s, path: s.upload_from(path, "k")),
    "delete_prefix": ("list_objects_v2", lambda s, path: s.delete_prefix("p/")),
}
_DYNAMODB_CALLS = {
    "create_job": ("put_item", lambda d: d.create_job(Job("j", "profile", "a.csv", "k"), 1)),
    "get_job": ("get_item", lambda d: d.get_job("j")),
    "list_jobs": ("query", lambda d: d.list_jobs()),
    "transition": ("update_item", lambda d: d.transition("j", ["processing"], "aggregating")),
    "put_chunks": ("put_item", lambda d: d.put_chunks("j", [{"index": 0}], 1)),
    "complete_chunk": ("transact_write_items", lambda d: d.complete_chunk("j", 0, 1, "k", ["processing"])),
    "fail_chunk": ("transact_write_items", lambda d: d.fail_chunk("j", 0, "e", ["processing"])),
    "list_chunks": ("query", lambda d: d.list_chunks("j")),
    "put_record": ("put_item", lambda d: d.put_record("j", "FILE", {"a": 1}, 1)),
    "get_record": ("get_item", lambda d: d.get_record("j", "FILE")),
}
_SQS_CALLS = {
    "send_all": ("send_message_batch", lambda q: q.send_all([{"type": "x"}])),
    "send": ("send_message", lambda q: q.send({"type": "x"})),
}
_stub_lock = threading.Lock()


@functools.cache
def _client(service: str):
    import boto3
    from botocore.config import Config

    # Stubbed: no request leaves, so the keys are placeholders, never looked up.
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="stub",
                        aws_secret_access_key="stub", config=Config(retries={"max_attempts": 0}))


def adapter_error(port: str, method: str) -> BaseException:
    """What the AWS adapter of `port` raises today when AWS throttles
    `method` (S3 SlowDown, DynamoDB ProvisionedThroughputExceeded or a
    transaction cancelled for ThrottlingError, SQS ThrottlingException):
    the real adapter class, on a stubbed boto3 client."""
    from botocore.stub import Stubber

    from chalicelib.adapters import DynamoJobStore, S3BlobStore, SqsTaskQueue

    service = {"S3": "s3", "DynamoDB": "dynamodb"}.get(port, "sqs")
    client = _client(service)
    with _stub_lock, Stubber(client) as stub, tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "file")
        with open(path, "wb") as fh:
            fh.write(b"x")
        if service == "s3":
            operation, call = _S3_CALLS[method]
            stub.add_client_error(operation, "SlowDown", http_status_code=503)
            run = functools.partial(call, S3BlobStore(client, "bucket"), path)
        elif service == "dynamodb":
            operation, call = _DYNAMODB_CALLS[method]
            if operation == "transact_write_items":
                stub.add_client_error(operation, "TransactionCanceledException", http_status_code=400,
                                      modeled_fields={"CancellationReasons": [
                                          {"Code": "ThrottlingError"}, {"Code": "None"}]})
            else:
                stub.add_client_error(operation, "ProvisionedThroughputExceededException",
                                      http_status_code=400)
            run = functools.partial(call, DynamoJobStore(client, "table"))
        else:
            operation, call = _SQS_CALLS[method]
            stub.add_response("get_queue_url", {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/1/q"})
            stub.add_client_error(operation, "ThrottlingException", http_status_code=400)
            run = functools.partial(call, SqsTaskQueue(client, "q"))
        try:
            run()
        except Exception as exc:  # noqa: BLE001 - whatever it is, that is the answer
            return exc
    raise AssertionError(f"{port}.{method} raised nothing on a throttle")


# -- delivering events as AWS does ---------------------------------------------

@dataclass
class Delivery:
    source: str  # s3, work, aggregate, stream
    body: Any
    step: str
    receives: int = 0
    done: bool = False
    #: at most this many receives, then the DLQ (the S3 event: Lambda's
    #: asynchronous invocation, tried three times, then dropped)
    limit: int = 5


@dataclass
class _SqsRecord:
    """What run_sqs_batch reads of Chalice's SQSRecord."""

    body: str
    message_id: str
    receives: int

    def to_dict(self) -> dict[str, Any]:
        return {"messageId": self.message_id, "body": self.body,
                "attributes": {"ApproximateReceiveCount": str(self.receives)}}


@dataclass
class SqsDriver:
    """Runs a job on a memory pipeline with its ports wrapped for `plan`, and
    delivers every event as AWS would: the S3 event to the dispatcher (tried
    up to three times), each queue message until an invocation settles it
    (up to the queues' maxReceiveCount of 5, then the DLQ), the jobs table's
    stream in order after every invocation, until its handler succeeds.

    duplicate:   every message and the S3 event are delivered twice
    shuffle:     messages are received in a random order (this seed)
    concurrent:  each delivery runs on two threads at once, as when a
                 visibility timeout expires while the first is still running
    undeleted:   the first invocation of this step (dispatch, work#<n>,
                 aggregate, stream) does all its work, then dies before the
                 message is deleted (or before Lambda hears it succeeded)
    """

    base: Pipeline
    plan: FaultPlan = field(default_factory=FaultPlan)
    duplicate: bool = False
    shuffle: int | None = None
    concurrent: bool = False
    undeleted: str | None = None
    #: the scheduled sweeper (sweeper(pipe, now)): run when nothing is left
    #: to deliver but a job is not final, a day later each time, so every
    #: deadline has passed; None: nothing ends a stalled job
    sweeper: Callable[[Pipeline, datetime], Any] | None = None

    def __post_init__(self):
        self.job_ids: set[str] = set()
        self.recorder = RecordingJobStore(self.base.store)
        ports = {"plan": self.plan, "job_ids": self.job_ids}
        self.pipe = dataclasses.replace(
            self.base,
            store=FaultyJobStore(self.recorder, port="DynamoDB", **ports),
            blobs=FaultyBlobStore(self.base.blobs, port="S3", **ports),
            **{name: FaultyTaskQueue(getattr(self.base, name), port=f"SQS:{name.removesuffix('_queue')}",
                                     **ports)
               for name in ("work_queue", "aggregate_queue", "results_queue", "callback_queue")})
        self.pending: list[Delivery] = []
        self.dead_letters: list[Delivery] = []
        self.results: list[dict[str, Any]] = []  # the results queue, as a client reads it
        self.callbacks: list[dict[str, Any]] = []  # the callback queue
        self.invocations = 0
        #: sweeps it took to end the jobs (0: the events alone ended them)
        self.sweeps = 0
        self._streamed = 0
        self._rng = random.Random(self.shuffle)
        self._ids = 0

    def submit(self, data: bytes, filename: str, processor: str, options: dict | None = None,
               callback_url: str | None = None, follower: str | None = "c1") -> str:
        """What POST /jobs does before the S3 event (not faulted: a client
        retries its own request)."""
        job = new_job(self.pipe, filename, processor, options or {}, callback_url=callback_url)
        self.job_ids.add(job.job_id)
        if follower:
            self.pipe.connections.subscribe(job.job_id, follower, 0)
        store_upload(self.pipe, job, data, "application/octet-stream")
        for _ in range(2 if self.duplicate else 1):
            self.pending.append(Delivery("s3", job.source_key, "dispatch", limit=3))
        return job.job_id

    def run(self, only: Iterable[str] | None = None, max_invocations: int = 2000) -> None:
        """Deliver until nothing is left (or nothing from the sources in
        `only`: s3, work, aggregate)."""
        sources = set(only) if only is not None else {"s3", "work", "aggregate"}
        self.plan.armed = True
        try:
            self._collect()
            while True:
                while waiting := [d for d in self.pending if d.source in sources]:
                    if self.invocations >= max_invocations:
                        raise AssertionError(f"still delivering after {max_invocations} invocations")
                    self._attempt(waiting[0] if self.shuffle is None else self._rng.choice(waiting))
                    self._collect()
                if only is not None or not self._sweep():
                    break
        finally:
            self.plan.armed = False

    def _sweep(self) -> bool:
        """The sweeper's next run, if a job waits for it; False if none does."""
        stalled = [j for j in self.job_ids if not self.base.store.get_job(j).status.is_final]
        if not stalled or self.sweeper is None or self.sweeps >= 4:
            return False
        self.sweeps += 1
        self.plan.step, self.plan.dead = "sweep", False
        try:
            self.sweeper(self.pipe, datetime.now(UTC) + timedelta(days=self.sweeps))
        except (Exception, ProcessDied):  # noqa: BLE001 - the schedule runs it again
            pass
        self._collect()
        return True

    def _attempt(self, d: Delivery) -> None:
        self.invocations += 1
        d.receives += 1
        receipt = d.receives
        self.plan.step = d.step
        self.plan.dead = False  # a new invocation, on a live Lambda
        self.plan.on_stall = functools.partial(self._stalled, d)
        ok = self._run_concurrently(d) if self.concurrent else self._run(d)
        self.plan.dead = False
        ok = ok and not self._lose_delete(d.step)
        if receipt != d.receives:
            # A later delivery of this message received it again: only the
            # latest receipt handle deletes (or leaves) the message.
            return
        self._settle(d, ok)

    def _lose_delete(self, step: str) -> bool:
        if step != self.undeleted:
            return False
        self.undeleted = None
        return True

    def _stalled(self, d: Delivery) -> None:
        """The first delivery stalls; the message shows again and a second
        Lambda runs it to its end meanwhile."""
        self.plan.on_stall = lambda: None
        d.receives += 1
        self._settle(d, self._run(d))

    def _settle(self, d: Delivery, ok: bool) -> None:
        if d.done:
            return
        if ok:
            d.done = True
            self.pending.remove(d)
        elif d.receives >= d.limit:
            d.done = True
            self.pending.remove(d)
            self.dead_letters.append(d)
        else:
            # Back at the end of the line: its visibility timeout has to pass.
            self.pending.remove(d)
            self.pending.append(d)

    def _run_concurrently(self, d: Delivery) -> bool:
        barrier = threading.Barrier(2)
        outcomes: list[bool] = []

        def deliver():
            barrier.wait()
            outcomes.append(self._run(d))

        threads = [threading.Thread(target=deliver) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return any(outcomes)

    def _run(self, d: Delivery) -> bool:
        """One invocation of the handler app.py has for this event."""
        try:
            if d.source == "s3":
                handle_uploaded_object(self.pipe, d.body)
                return True
            if d.source == "stream":
                queue_claimed_aggregations(self.pipe, d.body)
                announce_final_statuses(self.pipe, d.body)
                live.announce_job_changes(self.pipe, d.body)
                return True
            self._ids += 1
            record = _SqsRecord(json.dumps(d.body), f"m{self._ids}", d.receives)
            return not run_sqs_batch([record], self._work if d.source == "work" else self._aggregate)[
                "batchItemFailures"]
        except (Exception, ProcessDied):  # noqa: BLE001 - Lambda reports it; the event comes back
            return False

    # app.py's handle_work_message and handle_aggregate_message, on this pipeline.
    def _work(self, body: dict[str, Any]) -> Any:
        return run_chunk(self.pipe, ChunkTask.from_message(body))

    def _aggregate(self, body: dict[str, Any]) -> Any:
        return aggregate_job(self.pipe, body["job_id"])

    def _collect(self) -> None:
        """The last invocation's stream records, then the messages it and
        the stream's handler sent."""
        self._stream()
        copies = 2 if self.duplicate else 1
        for body in self.base.work_queue.drain():
            self.pending += [Delivery("work", body, f"work#{body['chunk']}") for _ in range(copies)]
        for body in self.base.aggregate_queue.drain():
            self.pending += [Delivery("aggregate", body, "aggregate") for _ in range(copies)]
        self.results += self.base.results_queue.drain()
        self.callbacks += self.base.callback_queue.drain()

    def _stream(self) -> None:
        """Stream records in order; a failed batch is retried before any
        later record is read, as Lambda does on a shard."""
        batch = self.recorder.changes_since(self._streamed)
        self._streamed += len(batch)
        if not batch:
            return
        d = Delivery("stream", batch, "stream", limit=5)
        while True:
            self.invocations += 1
            d.receives += 1
            self.plan.step, self.plan.dead = "stream", False
            ok = self._run(d) and not self._lose_delete("stream")
            self.plan.dead = False
            self.results += self.base.results_queue.drain()
            self.callbacks += self.base.callback_queue.drain()
            if ok:
                break
            if d.receives >= d.limit:
                self.dead_letters.append(d)
                break
        # The handler may have written: what it wrote is streamed too.
        if self.recorder.changes_since(self._streamed):
            self._stream()
