"""Seed 002 end to end: a 50-page TIFF dropped into uploads/ of the local
stack (`python -m local_cloud`), OCR'd for real by Tesseract in the worker
processes, ends with the right NPI pages and percentage, seed 002's fields
in GET /jobs/<id>, and a PDF that downloads over HTTP."""
from __future__ import annotations

import io
import json
import random

import pikepdf
import pytest

from tests.support.http_jobs import find_job, wait_final
from tests.support.pages import npi_document, valid_npi

pytestmark = pytest.mark.e2e


def test_a_50_page_tiff_dropped_into_uploads_ends_with_its_npi_pages_and_a_pdf(local_cloud):
    rng = random.Random(50)
    npi_pages = {page: [valid_npi(rng) for _ in range(1 + page % 2)] for page in (3, 9, 10, 27, 44, 50)}
    data, expected = npi_document(50, npi_pages, rng, compression="group4")
    local_cloud.client("s3").put_object(
        Bucket=local_cloud.outputs["BucketName"], Key="uploads/fax/claims-2026-11.tiff", Body=data,
        Metadata={"options": json.dumps({"pdf": True})})  # no processor: a TIFF goes to pages
    api = local_cloud.api_url
    dropped = find_job(local_cloud.http, "claims-2026-11.tiff")
    job = wait_final(local_cloud.http, dropped["job_id"], timeout=240)
    assert (job["status"], job["processor"]) == ("completed", "pages")
    assert job["progress"]["items_total"] == 50 and job["progress"]["chunks_total"] == 5

    file = job["file"]  # seed 002's METADATA item
    assert file["npiPages"] == expected.npi_pages == [3, 9, 10, 27, 44, 50]
    assert file["npiPercentage"] == 12.0  # 6 of 50 pages
    assert (file["totalBatches"], file["completedBatches"], file["status"]) == (5, 5, "COMPLETED")
    assert file["isNpiProcessed"] is True and file["isPdfCreated"] is True
    assert [b["pages"] for b in job["batches"]] == ["1-10", "11-20", "21-30", "31-40", "41-50"]
    assert [b["npiPages"] for b in job["batches"]] == [[3, 9, 10], [], [27], [], [44, 50]]

    result = local_cloud.http.get(f"{api}/jobs/{job['job_id']}/result", timeout=30).json()
    found = {}
    for npi in result["npis"]:
        found.setdefault(npi["page"], []).append(npi["value"])
    assert {p: sorted(v) for p, v in found.items()} == {p: sorted(v) for p, v in expected.npis.items()}

    pdf = local_cloud.http.get(f"{api}/jobs/{job['job_id']}/pdf", timeout=60)  # follows the 302 to S3
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    with pikepdf.open(io.BytesIO(pdf.content)) as document:
        assert len(document.pages) >= 51  # the NPI pages listed in front, then all 50 pages
