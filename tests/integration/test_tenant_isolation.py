"""Tenant isolation through the real routes (Chalice's test client, its
authorizer, moto): a tenant's key reaches that tenant's jobs and nothing
else; another tenant's job answers exactly as a job that does not exist;
no key, or a bad one, reaches nothing at all."""
from __future__ import annotations

import pytest
from chalice.test import Client

from app import app
from chalicelib.auth import revoke_key
from chalicelib.wiring import get_pipeline
from tests.integration.test_handlers import deliver_upload, drain_queues
from tests.support.authed import AuthedClient, api_key_for

CSV = b"name,age\nann,30\nbob,41\n"
# Every route that touches a job: (method, path under /jobs/<id>).
JOB_ROUTES = [("GET", ""), ("GET", "/result"), ("GET", "/result?link=1"), ("GET", "/report"),
              ("GET", "/rows"), ("GET", "/pdf"), ("GET", "/report?link=1"), ("POST", "/retry"),
              ("DELETE", "")]


@pytest.fixture
def tenants(moto_stack):
    """Two tenants' clients, and a job of the first that has completed."""
    with Client(app) as chalice:
        acme = AuthedClient(chalice, api_key_for("acme"))
        globex = AuthedClient(chalice, api_key_for("globex"))
        created = acme.http.post("/jobs?processor=carbon&filename=fuel.csv",
                                 headers={"Content-Type": "text/csv"},
                                 body=b"activity,amount,unit,region,year\ndiesel,10,litres,GB,2023\n")
        assert created.status_code == 202, created.body
        job_id = created.json_body["job_id"]
        deliver_upload(acme, moto_stack, f"uploads/{job_id}/source")
        drain_queues(acme, moto_stack)
        assert acme.http.get(f"/jobs/{job_id}").json_body["status"] == "completed"
        yield acme, globex, job_id, chalice


@pytest.mark.parametrize("method, path", JOB_ROUTES)
def test_another_tenants_job_answers_404_on_every_route(tenants, method, path):
    acme, globex, job_id, _ = tenants
    theirs = globex.http.request(method, f"/jobs/{job_id}{path}")
    missing = globex.http.request(method, f"/jobs/no-such-job{path}")
    assert theirs.status_code == 404 == missing.status_code
    assert theirs.json_body == {"error": f"no job with id {job_id!r}"}
    assert "download_url" not in theirs.body.decode() and "Location" not in theirs.headers


def test_the_owner_reaches_every_output(tenants):
    acme, _, job_id, _ = tenants
    assert acme.http.get(f"/jobs/{job_id}/result").status_code == 200
    linked = acme.http.get(f"/jobs/{job_id}/result?link=1").json_body
    assert linked["filename"] == "fuel_result.json" and linked["download_url"].startswith("http")
    for output in ("report", "rows"):
        assert acme.http.get(f"/jobs/{job_id}/{output}").status_code == 302
        linked = acme.http.get(f"/jobs/{job_id}/{output}?link=1")
        assert linked.status_code == 200 and linked.json_body["download_url"].startswith("http")


def test_a_tenant_lists_its_own_jobs_only(tenants):
    acme, globex, job_id, _ = tenants
    assert [j["job_id"] for j in acme.http.get("/jobs").json_body["jobs"]] == [job_id]
    assert globex.http.get("/jobs").json_body["jobs"] == []


def test_jobs_are_made_for_the_callers_tenant(tenants, moto_stack):
    _, globex, _, _ = tenants
    created = globex.http.post("/uploads", headers={"Content-Type": "application/json"},
                               body=b'{"filename": "a.csv", "processor": "profile"}')
    job_id = created.json_body["job_id"]
    assert get_pipeline().store.get_job(job_id).tenant == "globex"
    # The upload key is the job's own, never the caller's file name.
    assert created.json_body["upload"]["fields"]["key"] == f"uploads/{job_id}/source"


@pytest.mark.parametrize("header, status", [
    (None, 401), ("Bearer", 403), ("Basic YWRtaW46YWRtaW4=", 403), ("Bearer slk_" + "x" * 43, 403),
    ("Bearer not-a-key", 403),
])
def test_no_key_or_a_bad_one_reaches_nothing(tenants, header, status):
    _, _, job_id, chalice = tenants
    headers = {"Authorization": header} if header else {}
    routes = [("GET", "/jobs"), ("POST", "/uploads"), *((m, f"/jobs/{job_id}{p}") for m, p in JOB_ROUTES)]
    for method, path in routes:
        answer = chalice.http.request(method, path, headers=headers, body=b"")
        assert answer.status_code == status, (method, path, answer.status_code)


def test_a_revoked_key_reaches_nothing(tenants):
    acme, _, job_id, _ = tenants
    pipe = get_pipeline()
    [key] = pipe.keys.list("acme")
    assert revoke_key(pipe.keys, "acme", key.key_id) is True
    assert acme.http.get(f"/jobs/{job_id}").status_code == 403


def test_the_dashboard_and_processor_list_need_no_key(moto_stack):
    with Client(app) as chalice:
        for path in ("/", "/dashboard/dashboard.js", "/processors"):
            assert chalice.http.get(path).status_code == 200, path
