"""`make run`'s process as a developer meets it: what it prints, and that
Ctrl-C (or a SIGTERM) stops all of it cleanly."""
from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest
import requests

from local_cloud import READY_LINE
from tests.e2e.conftest import REPO_ROOT, free_port

pytestmark = pytest.mark.e2e


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_it_prints_how_to_use_it_and_stops_cleanly(tmp_path, stop_signal):
    aws_port, api_port, ws_port = free_port(), free_port(), free_port()
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "local_cloud", "--aws-port", str(aws_port), "--api-port", str(api_port),
             "--ws-port", str(ws_port)],
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while READY_LINE not in log_path.read_text():
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        printed = log_path.read_text()
        api, aws = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{aws_port}"
        assert api in printed and aws in printed and f"ws://127.0.0.1:{ws_port}" in printed
        key = re.search(r"^API key: (slk_\S+)$", printed, re.MULTILINE).group(1)
        assert f"Dashboard     {api}/#key={key}" in printed
        assert f"export SLUICE_API_KEY={key} SLUICE_API_URL={api}" in printed
        assert "python -m sluice submit drawings.zip --processor scan" in printed
        for example, processor in (("sales.csv", "profile"), ("activities.csv", "carbon")):
            assert (f'curl -H "Authorization: Bearer $SLUICE_API_KEY" -X POST --data-binary '
                    f"@examples/{example} -H 'Content-Type: text/csv' "
                    f"'{api}/jobs?processor={processor}&filename={example}'") in printed
            assert (REPO_ROOT / "examples" / example).is_file()
        assert "SLUICE_CALLBACK_SECRET=sluice-local-callback-secret" in printed
        assert requests.get(f"{api}/jobs", timeout=5).status_code == 401
        signed_in = requests.get(f"{api}/jobs", headers={"Authorization": f"Bearer {key}"}, timeout=5)
        assert signed_in.status_code == 200
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 2  # the Lambda worker processes

        proc.send_signal(stop_signal)
        assert proc.wait(30) == 0, log_path.read_text()
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert alive == []
        assert _port_is_free(api_port) and _port_is_free(aws_port) and _port_is_free(ws_port)
    finally:
        if proc.poll() is None:
            proc.kill()
