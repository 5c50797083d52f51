"""A carbon job whose factors come from an external service (seed 003's
"Lambda calls an external API"): a real HTTP factor service on 127.0.0.1
that fails some requests with 429, the pipeline's chunks on the in-memory
fakes, one shared rate counter and one answer cache per job."""
from __future__ import annotations

import json

import pytest

from chalicelib.carbon.factor_api import HttpFactorLookup, RetryPolicy
from chalicelib.carbon.factor_cache import MemoryFactorCache
from chalicelib.jobs.dispatch import handle_uploaded_object, new_job, store_upload
from chalicelib.jobs.model import ChunkTask, JobStatus, ServiceError
from chalicelib.jobs.work import run_chunk
from chalicelib.limits.limiter import RateLimiter
from tests.support.factor_service import FactorService, Fault, every, factor_body
from tests.support.files import csv_bytes
from tests.support.memory_pipeline import memory_pipeline, run_file

POLICY = RetryPolicy(attempts=4, base_s=0.01, cap_s=0.05, retry_after_cap_s=0.05, timeout_s=5,
                     max_wait_s=5)
RATE = 50  # requests per second, for every worker together

FACTORS = {
    ("diesel", "liter", "GB", 2024): factor_body("diesel", "liter", "GB", 2024, 2.5),
    ("electricity", "kilowatt_hour", "GB", 2024): factor_body("electricity", "kilowatt_hour", "GB",
                                                              2024, 0.2),
}


def _api_pipeline(service: FactorService, **settings):
    pipe = memory_pipeline(**settings)
    caches: dict[str, MemoryFactorCache] = {}

    def factor_api(job_id: str) -> HttpFactorLookup:
        # As chalicelib/wiring.py builds it: a limiter on the shared counter,
        # and the job's cache shared by all of its chunks.
        limiter = RateLimiter(pipe.limits, "factor-api", RATE, 1)
        return HttpFactorLookup(service.url, limiter, caches.setdefault(job_id, MemoryFactorCache()),
                                policy=POLICY)

    pipe.services["factor_api"] = factor_api
    return pipe


def _file(rows: int) -> bytes:
    kinds = [("Diesel", "litres", ""), ("electricity", "kWh", ""), ("diesel", "litres", "FR")]
    body = [["activity", "amount", "unit", "region"]]
    body += [[kinds[i % 3][0], str(i + 1), kinds[i % 3][1], kinds[i % 3][2]] for i in range(rows)]
    return csv_bytes(body)


@pytest.fixture
def service():
    with FactorService(FACTORS) as svc:
        yield svc


def test_factors_come_from_the_service_once_per_question_despite_429s(service):
    service.faults = every(2, Fault(429, retry_after="0"))
    pipe = _api_pipeline(service, chunk_bytes=200)
    job = run_file(pipe, _file(300), processor="carbon", options={"factor_source": "api"})
    assert job.chunks_total > 10
    assert job.status == JobStatus.COMPLETED_WITH_ERRORS  # the FR rows have no factor
    result = json.loads(pipe.blobs.get(job.result_key))
    assert result["factor_source"] == "api"
    assert result["rows_calculated"] == 200 and result["rows_rejected"] == 100
    diesel = sum(i + 1 for i in range(0, 300, 3)) * 2.5
    electricity = sum(i + 1 for i in range(1, 300, 3)) * 0.2
    assert result["totals"]["kg_co2e"] == pytest.approx(diesel + electricity, rel=1e-11)
    assert {r["factor_source"] for r in result["rows"]} == {"test service"}
    assert "no factor for diesel" in result["errors"]["rows"][0]["error"]

    # Three questions in all, each answered once however many chunks asked;
    # the 429s among the requests were retried.
    assert set(service.by_query) == {("diesel", "liter", None, None),
                                     ("electricity", "kilowatt_hour", None, None),
                                     ("diesel", "liter", "FR", None)}
    assert service.statuses[200] + service.statuses[404] == 3
    assert service.statuses[429] == len(service.requests) - 3 >= 1


def test_every_request_took_a_token_from_the_shared_counter(service):
    pipe = _api_pipeline(service, chunk_bytes=200)
    run_file(pipe, _file(90), processor="carbon", options={"factor_source": "api"})
    hits = sum(count for (key, _), count in pipe.limits.counts.items() if key == "factor-api")
    assert hits == len(service.requests) == 3
    assert all(s.window is not None for s in service.requests)


def test_a_service_that_keeps_failing_fails_the_chunks_for_a_retry_not_the_rows(service):
    service.faults = every(1, Fault(503))
    pipe = _api_pipeline(service)
    job = new_job(pipe, "a.csv", "carbon", {"factor_source": "api"})
    store_upload(pipe, job, _file(3), "text/csv")
    handle_uploaded_object(pipe, job.source_key)
    [task] = pipe.work_queue.drain()
    with pytest.raises(ServiceError):
        run_chunk(pipe, ChunkTask.from_message(task))
    assert pipe.store.get_job(job.job_id).chunks_done == 0  # nothing counted: SQS delivers again
