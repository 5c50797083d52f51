"""The event pump: Lambda's event source mappings and S3's async invocations, locally.

One poller thread per event source reads the embedded AWS and hands events to the
LambdaPool; settling (deleting messages, advancing a stream) happens back here,
with the rules Lambda applies:

* SQS: a batch of up to ``batch_size`` messages per invocation; on success every
  message is deleted except those the handler names in ``batchItemFailures``; on
  an error none is deleted, so the queue's visibility timeout brings them back and
  its RedrivePolicy moves them to the DLQ after maxReceiveCount receives (moto
  applies the RedrivePolicy on ReceiveMessage, as SQS does). Up to ``concurrency``
  batches per queue are in flight at once, as Lambda scales its pollers.
* S3: Chalice's deploy points bucket notifications at the function; here they go
  to a local-only queue and each one becomes an asynchronous invocation: on error
  it is retried twice, then logged and dropped.
* DynamoDB streams: one batch at a time per shard, in order; a failed batch is
  retried, from the first reported failure when the handler reports
  ``batchItemFailures``, until it succeeds (Lambda's default: retry until the
  record expires).
* Schedules (``@app.schedule(Rate(...))``): a timer per handler invokes it
  asynchronously, as EventBridge does, once per interval (the first one
  interval after start); ``schedule_speedup`` divides the interval, so tests
  see a five-minute schedule fire every few seconds.

Note: Chalice 1.34 does not set ``FunctionResponseTypes: [ReportBatchItemFailures]``
on the mappings it creates; without it deployed Lambda ignores batchItemFailures.
``report_batch_item_failures=False`` makes the pump behave like such a mapping.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local_cloud import events
from local_cloud.lambda_pool import LambdaPool
from local_cloud.sources import S3Source, ScheduleSource, SqsSource, StreamSource

log = logging.getLogger("local_cloud.pump")

# SQS ReceiveMessage returns at most ten messages per call.
_SQS_MAX_RECEIVE = 10
# Where local_cloud's functions live, as runtime.LambdaContext says.
_REGION, _ACCOUNT = "us-east-1", "123456789012"


class EventSourceMissingError(RuntimeError):
    """A handler listens on a queue, bucket or stream the embedded AWS does not have."""


@dataclass(frozen=True)
class PumpSettings:
    """Knobs that differ from AWS only to keep local runs and tests quick."""

    poll_wait_s: int = 1
    # Lambda waits about 1 and 2 minutes between async retries; locally, seconds.
    async_retry_delays_s: tuple[float, ...] = (1.0, 2.0)
    stream_poll_interval_s: float = 0.25
    stream_retry_backoff_s: tuple[float, float] = (0.5, 10.0)
    # None retries a failed stream batch forever (Lambda's default for streams).
    stream_max_retries: int | None = None
    report_batch_item_failures: bool = True
    # Batches in flight per event source; None means one per worker.
    concurrency: int | None = None
    # Schedules run this many times faster than their rate says.
    schedule_speedup: float = 1.0


class EventPump:
    """Wires the app's event sources to the embedded AWS and runs a poller for each."""

    def __init__(
        self,
        pool: LambdaPool,
        clients: Callable[[str], Any],
        stage: str = "local",
        settings: PumpSettings | None = None,
    ):
        self.pool = pool
        self.clients = clients
        self.settings = settings or PumpSettings()
        self.stopping = threading.Event()
        self._pollers: list[_Poller] = []
        self.s3_events_queue = f"sluice-{stage}-s3-events"

    def start(self) -> None:
        description = self.pool.description
        sources = description.sources
        concurrency = self.settings.concurrency or self.pool.workers
        s3_sources = [s for s in sources if isinstance(s, S3Source)]
        if s3_sources:
            queue_url = wire_s3_notifications(self.clients, s3_sources, self.s3_events_queue)
            self._pollers.append(
                _S3EventPoller(self, queue_url, {s.handler: s for s in s3_sources}, concurrency)
            )
        for source in sources:
            if isinstance(source, SqsSource):
                limit = min(concurrency, source.max_concurrency or concurrency)
                self._pollers.append(_SqsPoller(self, source, limit))
            elif isinstance(source, StreamSource):
                self._pollers.append(_StreamPoller(self, source))
            elif isinstance(source, ScheduleSource):
                self._pollers.append(_SchedulePoller(self, source))
        for name in description.not_run:
            log.warning("event source %s is not run by local_cloud", name)
        for poller in self._pollers:
            poller.prepare()
        for poller in self._pollers:
            poller.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for poller in self._pollers:
            poller.join(max(0.0, deadline - time.monotonic()))
        self._pollers = []


def wire_s3_notifications(clients, sources: list[S3Source], queue_name: str) -> str:
    """Point each bucket's notifications at the local events queue, one entry per handler.

    The handler's name is the notification Id, which S3 copies into each record's
    s3.configurationId, so the poller knows which handler an event is for.
    """
    sqs = clients("sqs")
    # Longer than an event's three attempts could take, so it is never redelivered.
    queue_url = sqs.create_queue(
        QueueName=queue_name, Attributes={"VisibilityTimeout": "43200"}
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    by_bucket: dict[str, list[S3Source]] = {}
    for source in sources:
        by_bucket.setdefault(source.bucket, []).append(source)
    s3 = clients("s3")
    for bucket, bucket_sources in by_bucket.items():
        try:
            s3.head_bucket(Bucket=bucket)
        except s3.exceptions.ClientError as exc:
            raise EventSourceMissingError(
                f"{bucket_sources[0].handler} listens on bucket {bucket!r}, which the "
                "stack does not create"
            ) from exc
        configurations = []
        for source in bucket_sources:
            # moto accepts only lower-case rule names (S3 itself takes either case).
            rules = [
                {"Name": name, "Value": value}
                for name, value in (("prefix", source.prefix), ("suffix", source.suffix))
                if value
            ]
            configuration: dict[str, Any] = {
                "Id": source.handler,
                "QueueArn": queue_arn,
                "Events": list(source.events),
            }
            if rules:
                configuration["Filter"] = {"Key": {"FilterRules": rules}}
            configurations.append(configuration)
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": configurations}
        )
    return queue_url


class _Poller(threading.Thread):
    def __init__(self, pump: EventPump, name: str):
        super().__init__(name=name, daemon=True)
        self.pump = pump
        self.stopping = pump.stopping
        self.settings = pump.settings
        self.clients = pump.clients

    def prepare(self) -> None:
        """Resolve the source before any thread starts, so a missing one fails start()."""

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - a poller must survive a bad response
                if self.stopping.is_set():
                    break
                log.exception("%s: polling failed; retrying in 1 s", self.name)
                self.stopping.wait(1.0)
        self.drain()

    def poll_once(self) -> None:
        raise NotImplementedError

    def drain(self) -> None:
        """Wait for in-flight work before the thread ends."""

    def invoke(self, handler: str, event: dict[str, Any]):
        result = self.pump.pool.invoke(handler, event)
        if not result.ok:
            log.warning(
                "%s failed after %.2f s: %s: %s",
                handler, result.duration_s, result.error_type, result.error_message,
            )
        return result

    def invoke_async(self, handler: str, event: dict[str, Any], what: str) -> bool:
        """An asynchronous invocation: on error retried twice, then dropped."""
        delays = self.settings.async_retry_delays_s
        for attempt in range(len(delays) + 1):
            if self.invoke(handler, event).ok:
                return True
            if attempt == len(delays) or self.stopping.wait(delays[attempt]):
                break
        log.error("%s: %s dropped after %d attempts (Lambda async retries)", handler, what, attempt + 1)
        return False


class _QueuePoller(_Poller):
    """Shared by the SQS and S3 pollers: receive when a slot is free, settle per batch."""

    def __init__(self, pump: EventPump, name: str, queue_url: str | None, concurrency: int):
        super().__init__(pump, name)
        self.queue_url = queue_url
        self.concurrency = concurrency
        self._slots = threading.Semaphore(concurrency)
        self._dispatch = cf.ThreadPoolExecutor(concurrency, thread_name_prefix=name)
        self.sqs = self.clients("sqs")

    def receive(self, max_messages: int, wait_s: int) -> list[dict[str, Any]]:
        return self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    def poll_once(self) -> None:
        if not self._slots.acquire(timeout=self.settings.poll_wait_s):
            return
        try:
            messages = self.receive_batch()
        except BaseException:
            self._slots.release()
            raise
        if not messages:
            self._slots.release()
            return
        self._dispatch.submit(self._run_batch, messages)

    def _run_batch(self, messages: list[dict[str, Any]]) -> None:
        try:
            self.handle(messages)
        except Exception:  # noqa: BLE001
            log.exception("%s: settling a batch failed", self.name)
        finally:
            self._slots.release()

    def delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), _SQS_MAX_RECEIVE):
            chunk = messages[start:start + _SQS_MAX_RECEIVE]
            response = self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed", []):
                log.warning("%s: could not delete a message: %s", self.name, failure)

    def drain(self) -> None:
        self._dispatch.shutdown(wait=True, cancel_futures=True)

    def receive_batch(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def handle(self, messages: list[dict[str, Any]]) -> None:
        raise NotImplementedError


class _SqsPoller(_QueuePoller):
    def __init__(self, pump: EventPump, source: SqsSource, concurrency: int):
        super().__init__(pump, f"sqs:{source.queue}", None, concurrency)
        self.source = source
        self.queue_arn = ""

    def prepare(self) -> None:
        try:
            self.queue_url = self.sqs.get_queue_url(QueueName=self.source.queue)["QueueUrl"]
        except self.sqs.exceptions.ClientError as exc:
            raise EventSourceMissingError(
                f"{self.source.handler} listens on queue {self.source.queue!r}, which the "
                "stack does not create"
            ) from exc
        self.queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]

    def receive_batch(self) -> list[dict[str, Any]]:
        size = self.source.batch_size
        messages = self.receive(min(size, _SQS_MAX_RECEIVE), self.settings.poll_wait_s)
        # Batches above ten fill up within the batching window, as Lambda's do.
        window_end = time.monotonic() + self.source.batching_window_s
        while messages and len(messages) < size and not self.stopping.is_set():
            more = self.receive(min(size - len(messages), _SQS_MAX_RECEIVE), 0)
            if not more and time.monotonic() >= window_end:
                break
            messages.extend(more)
            if not more:
                self.stopping.wait(0.1)
        return messages

    def handle(self, messages: list[dict[str, Any]]) -> None:
        region = self.queue_arn.split(":")[3]
        event = events.sqs_event([events.sqs_record(m, self.queue_arn, region) for m in messages])
        result = self.invoke(self.source.handler, event)
        if not result.ok:
            return  # every message comes back after the visibility timeout
        failed: set[str] = set()
        if self.settings.report_batch_item_failures:
            failed = events.failed_item_ids(result.payload, [m["MessageId"] for m in messages])
            if failed:
                log.info("%s reported %d of %d messages failed",
                         self.source.handler, len(failed), len(messages))
        self.delete([m for m in messages if m["MessageId"] not in failed])


class _S3EventPoller(_QueuePoller):
    def __init__(self, pump: EventPump, queue_url: str, sources: dict[str, S3Source], concurrency: int):
        super().__init__(pump, "s3-events", queue_url, concurrency)
        self.sources = sources

    def receive_batch(self) -> list[dict[str, Any]]:
        # Each S3 notification is its own asynchronous invocation.
        return self.receive(1, self.settings.poll_wait_s)

    def handle(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self._invoke_async(message)
        self.delete(messages)

    def _invoke_async(self, message: dict[str, Any]) -> None:
        event = events.s3_notification(message["Body"])
        if event is None:
            return
        handler = events.s3_configuration_id(event)
        if handler not in self.sources:
            log.warning("S3 event for unknown notification %r dropped", handler)
            return
        self.invoke_async(handler, event, f"S3 event for {event['Records'][0]['s3']['object']['key']}")


class _SchedulePoller(_Poller):
    def __init__(self, pump: EventPump, source: ScheduleSource):
        super().__init__(pump, f"schedule:{source.handler}")
        self.source = source
        self.interval_s = source.interval_s / max(self.settings.schedule_speedup, 1e-9)
        function = pump.pool.description.functions[source.handler].function_name
        self.rule_arn = f"arn:aws:events:{_REGION}:{_ACCOUNT}:rule/{function}"

    def poll_once(self) -> None:
        if self.stopping.wait(self.interval_s):
            return
        event = events.scheduled_event(self.rule_arn, _REGION, _ACCOUNT)
        self.invoke_async(self.source.handler, event, f"{self.source.expression} run")


class _StreamPoller(_Poller):
    def __init__(self, pump: EventPump, source: StreamSource):
        super().__init__(pump, f"stream:{source.handler}")
        self.source = source
        self.streams = self.clients("dynamodbstreams")
        self._iterators: dict[str, str] = {}

    def prepare(self) -> None:
        try:
            description = self.streams.describe_stream(StreamArn=self.source.stream_arn)
        except Exception as exc:  # noqa: BLE001 - moto answers a bad ARN with various errors
            raise EventSourceMissingError(
                f"{self.source.handler} reads stream {self.source.stream_arn!r}: {exc}"
            ) from exc
        for shard in description["StreamDescription"]["Shards"]:
            self._iterators[shard["ShardId"]] = self.streams.get_shard_iterator(
                StreamArn=self.source.stream_arn,
                ShardId=shard["ShardId"],
                ShardIteratorType=self.source.starting_position,
            )["ShardIterator"]

    def poll_once(self) -> None:
        delivered = False
        for shard_id, iterator in list(self._iterators.items()):
            response = self.streams.get_records(ShardIterator=iterator, Limit=self.source.batch_size)
            records = [
                events.stream_record(r, self.source.stream_arn) for r in response["Records"]
            ]
            if records:
                delivered = True
                self._deliver(records)
            next_iterator = response.get("NextShardIterator")
            if next_iterator:
                self._iterators[shard_id] = next_iterator
            else:
                del self._iterators[shard_id]  # the shard is closed and read to its end
        if not delivered:
            self.stopping.wait(self.settings.stream_poll_interval_s)

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        """Invoke until the batch succeeds: a shard's records are processed in order."""
        pending = records
        attempt = 0
        first_backoff, max_backoff = self.settings.stream_retry_backoff_s
        while pending and not self.stopping.is_set():
            result = self.invoke(self.source.handler, {"Records": pending})
            if result.ok:
                failed = set()
                if self.settings.report_batch_item_failures:
                    failed = events.failed_item_ids(
                        result.payload, [events.stream_sequence_number(r) for r in pending]
                    )
                if not failed:
                    return
                # Lambda restarts from the lowest failed sequence number.
                first = min(failed, key=int)
                pending = [r for r in pending if int(events.stream_sequence_number(r)) >= int(first)]
            attempt += 1
            limit = self.settings.stream_max_retries
            if limit is not None and attempt > limit:
                log.error("%s: stream batch of %d records dropped after %d retries",
                          self.source.handler, len(pending), limit)
                return
            self.stopping.wait(min(max_backoff, first_backoff * 2 ** (attempt - 1)))

