"""The figures failure handling depends on live in three places (the app's
settings, infra/template.yaml, .chalice/config.json); they must agree, or the
sweeper's deadlines and the DLQ handler's words would be wrong."""
from __future__ import annotations

import json
from pathlib import Path

from chalicelib.settings import Settings
from local_cloud.stack import PARAMETERS_FROM_ENV, load_template, stage_parameters

ROOT = Path(__file__).resolve().parents[2]


def _defaults(monkeypatch) -> Settings:
    for name in ("SLUICE_QUEUE_MAX_RECEIVES", "SLUICE_WORK_VISIBILITY_S", "SLUICE_DISPATCH_TIMEOUT_S",
                 "SLUICE_AGGREGATE_TIMEOUT_S", "SLUICE_JOB_TTL_DAYS", *PARAMETERS_FROM_ENV.values()):
        monkeypatch.delenv(name, raising=False)
    return Settings.from_env()


def test_queue_settings_match_the_template(monkeypatch):
    settings = _defaults(monkeypatch)
    resources = load_template()["Resources"]
    for queue in ("WorkQueue", "AggregateQueue"):
        assert resources[queue]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == \
            settings.queue_max_receives
    assert resources["WorkQueue"]["Properties"]["VisibilityTimeout"] == settings.work_visibility_s


def test_function_timeouts_match_the_chalice_config(monkeypatch):
    settings = _defaults(monkeypatch)
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    functions = config["stages"]["dev"]["lambda_functions"]
    assert functions["handle_object_created"]["lambda_timeout"] == settings.dispatch_timeout_s
    assert functions["handle_aggregate_message"]["lambda_timeout"] == settings.aggregate_timeout_s


def test_file_lifetimes_default_to_the_templates_and_results_outlive_no_job(monkeypatch):
    settings = _defaults(monkeypatch)
    parameters = load_template()["Parameters"]
    assert parameters["WorkFilesExpireDays"]["Default"] == settings.work_files_days
    assert parameters["UploadFilesExpireDays"]["Default"] == settings.upload_files_days
    assert parameters["ResultFilesExpireDays"]["Default"] == settings.result_files_days
    # A job record never points at results that are gone, and chunks read their upload.
    assert settings.result_files_days >= settings.job_ttl_days
    assert settings.upload_files_days >= settings.work_files_days


def test_the_stage_sets_the_file_lifetimes_through_its_environment():
    environ = {"SLUICE_WORK_FILES_DAYS": "3", "SLUICE_RESULT_FILES_DAYS": "30", "OTHER": "x"}
    assert stage_parameters(environ) == {"WorkFilesExpireDays": "3", "ResultFilesExpireDays": "30"}
