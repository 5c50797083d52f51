"""Final statuses are announced once each, with the fields clients read."""
from __future__ import annotations

import dataclasses

from chalicelib.jobs.model import Job, JobStatus
from chalicelib.notify.final_status import announce_final_statuses, final_notice
from tests.support.memory_pipeline import memory_pipeline


def _job(status: JobStatus, **fields) -> Job:
    return Job(job_id="j1", processor="carbon", filename="a.csv", source_key="uploads/j1/a.csv",
               status=status, **fields)


def test_the_notice_carries_status_totals_and_links():
    job = _job(JobStatus.COMPLETED_WITH_ERRORS, chunks_total=3, chunks_done=3, rows_done=10,
               totals={"kg_co2e": 12.5, "rows_rejected": 1}, finished_at="2026-01-01T00:00:00Z",
               outputs={"result": "results/j1/result.json", "rows": "results/j1/rows.csv",
                        "report": "results/j1/report.xlsx"})
    notice = final_notice(job, "bucket")
    assert notice["type"] == "job.finished"
    assert notice["event_id"] == "j1/completed_with_errors/2026-01-01T00:00:00Z"
    # A retried job that ends again is a new event, not a copy of the first.
    again = final_notice(_job(JobStatus.COMPLETED_WITH_ERRORS, finished_at="2026-01-02T00:00:00Z"), "bucket")
    assert again["event_id"] != notice["event_id"]
    assert notice["status"] == "completed_with_errors"
    assert notice["totals"] == {"kg_co2e": 12.5, "rows_rejected": 1}
    assert notice["progress"]["rows_processed"] == 10
    assert notice["links"] == {"self": "/jobs/j1", "result": "/jobs/j1/result",
                               "report": "/jobs/j1/report", "rows": "/jobs/j1/rows"}
    assert notice["outputs"]["report"] == "s3://bucket/results/j1/report.xlsx"
    assert notice["finished_at"] == "2026-01-01T00:00:00Z"


def test_only_the_change_into_a_final_status_is_announced():
    pipe = memory_pipeline()
    done = _job(JobStatus.COMPLETED)
    changes = [
        (None, None),                                   # not a job record
        ("processing", _job(JobStatus.AGGREGATING)),    # not final
        ("aggregating", done),                          # becomes final: announced
        ("completed", done),                            # a later write to a final job
        (None, _job(JobStatus.FAILED)),                 # created failed (a bad drop-in)
    ]
    assert announce_final_statuses(pipe, changes) == 2
    sent = pipe.results_queue.drain()
    assert [m["status"] for m in sent] == ["completed", "failed"]
    assert pipe.callback_queue.drain() == []  # no callback asked for


def test_a_job_with_a_callback_queues_its_first_delivery():
    pipe = memory_pipeline()
    job = dataclasses.replace(_job(JobStatus.FAILED, error="a.csv: bad"),
                              callback_url="http://127.0.0.1:9/hook")
    announce_final_statuses(pipe, [("processing", job)])
    [callback] = pipe.callback_queue.drain()
    assert callback["url"] == "http://127.0.0.1:9/hook"
    assert callback["attempt"] == 1
    assert callback["notice"] == pipe.results_queue.drain()[0]
    assert callback["notice"]["error"] == "a.csv: bad"
