"""The README's claims that can be run are run."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

from tests.support.memory_pipeline import memory_pipeline, run_file

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_the_profile_example_is_what_sluice_returns():
    marker = "<!-- README example: examples/sales.csv"
    block = re.search(re.escape(marker) + r".*?```json\n(.*?)```", README, re.S)
    assert block, "the README's profile example is missing"
    shown = json.loads(block.group(1))
    pipe = memory_pipeline(chunk_bytes=90)  # several chunks, same result
    job = run_file(pipe, (ROOT / "examples" / "sales.csv").read_bytes(), filename="sales.csv")
    assert job.chunks_total > 3
    assert json.loads(pipe.blobs.get(job.result_key)) == shown


def test_the_two_commands_are_documented_and_ci_runs_the_test_one():
    assert "make run" in README and "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_callback_verification_snippet_accepts_sluice_signatures_only():
    from chalicelib.notify.callbacks import sign

    block = re.search(r"Verifying, in Python.*?```python\n(.*?)```", README, re.S)
    assert block, "the README's verification snippet is missing"
    scope: dict = {}
    exec(block.group(1), scope)  # noqa: S102 - the README's own code, run as a reader would
    verify = scope["verify"]
    body, secret = b'{"job_id": "j1", "status": "completed"}', b"s3cret"
    header = sign(secret, body, int(time.time()))
    assert verify(secret, body, header)
    assert not verify(secret, body + b" ", header)
    assert not verify(b"other", body, header)
    assert not verify(secret, body, sign(secret, body, int(time.time()) - 3600))
    assert not verify(secret, body, "garbage")


def test_the_scan_example_is_what_sluice_returns():
    import io
    import zipfile

    marker = "<!-- README example: examples/drawings"
    block = re.search(re.escape(marker) + r".*?```json\n(.*?)```", README, re.S)
    assert block, "the README's scan example is missing"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((ROOT / "examples" / "drawings").iterdir()):
            archive.write(path, f"drawings/{path.name}")
    pipe = memory_pipeline()
    job = run_file(pipe, buffer.getvalue(), filename="drawings.zip", processor="scan",
                   options={"target_hole_codes": "HOLE-1,HOLE-2,HOLE-3"})
    result = json.loads(pipe.blobs.get(job.result_key))
    assert [r["status"] for r in result.pop("rows")] == ["2 Codes", "No Code", "2 Codes"]
    assert result == json.loads(block.group(1))
