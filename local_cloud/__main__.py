"""`python -m local_cloud`: start everything, print how to use it, stop on Ctrl-C or SIGTERM."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from local_cloud.cloud import READY_LINE, REPO_ROOT, LocalCloud
from local_cloud.runtime import quiet_noisy_loggers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local_cloud",
        description="Run Sluice locally: embedded AWS (moto), event pump, WebSocket gateway and REST API.",
    )
    parser.add_argument("--aws-port", type=int, default=4566, help="embedded AWS port (default 4566)")
    parser.add_argument("--api-port", type=int, default=8000, help="REST API port (default 8000)")
    parser.add_argument(
        "--ws-port", type=int, default=8001, help="WebSocket gateway and @connections port (default 8001)"
    )
    parser.add_argument("--stage", default="local", help="stack stage; names are sluice-<stage>-*")
    parser.add_argument("--workers", type=int, default=2, help="handler worker processes (default 2)")
    parser.add_argument("--app-dir", default=str(REPO_ROOT), help="directory holding app.py")
    parser.add_argument(
        "--chalice-stage", default="dev", help=".chalice/config.json stage for timeouts and env"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    level = getattr(logging, args.log_level)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    quiet_noisy_loggers()

    stop = threading.Event()

    def request_stop(signum: int, _frame) -> None:
        if stop.is_set():
            # A second Ctrl-C while stopping: give the default handlers back.
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    cloud = LocalCloud(
        app_dir=args.app_dir,
        aws_port=args.aws_port,
        api_port=args.api_port,
        ws_port=args.ws_port,
        stage=args.stage,
        workers=args.workers,
        chalice_stage=args.chalice_stage,
        log_level=level,
    )
    try:
        cloud.start()
    except Exception as exc:  # noqa: BLE001 - report any start failure plainly
        logging.getLogger("local_cloud").exception("local cloud failed to start")
        print(f"local_cloud: {exc}", file=sys.stderr)
        return 1
    print(cloud.banner(), flush=True)
    print(READY_LINE, flush=True)
    while not stop.wait(0.5):
        pass
    print("Stopping local cloud...", flush=True)
    cloud.stop()
    print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
