"""A pool of worker processes standing in for Lambda's concurrent sandboxes.

The pump process only polls and settles; handlers run here. Workers are spawned,
not forked: the pump process runs moto's server and poller threads, and forking a
threaded process can copy a held lock into the child. A worker that dies (os._exit,
a segfault, the OOM killer) breaks a ProcessPoolExecutor for good, so the pool
replaces the executor, the way Lambda replaces a crashed sandbox.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import threading
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from local_cloud import runtime
from local_cloud.runtime import Invocation
from local_cloud.sources import AppDescription

log = logging.getLogger("local_cloud.pool")


class AppLoadError(RuntimeError):
    """The app could not be imported or described in a worker."""


class LambdaPool:
    def __init__(
        self,
        app_dir: Path,
        environment: dict[str, str],
        workers: int = 2,
        module_name: str = "app",
        chalice_stage: str = "dev",
        local_stage: str = "local",
        log_level: int = logging.INFO,
    ):
        self._init_args = (str(app_dir), module_name, dict(environment), log_level)
        self._workers = workers
        self._chalice_stage = chalice_stage
        self._local_stage = local_stage
        self._lock = threading.Lock()
        self._executor: cf.ProcessPoolExecutor | None = None
        self.description: AppDescription | None = None

    @property
    def workers(self) -> int:
        return self._workers

    def start(self) -> AppDescription:
        """Spawn and warm every worker, then read the app's event sources in one of them."""
        self._executor = self._new_executor()
        try:
            warm = [self._executor.submit(runtime.ping) for _ in range(self._workers)]
            for future in warm:
                future.result(timeout=120)
            self.description = self._executor.submit(
                runtime.describe, self._chalice_stage, self._local_stage
            ).result(timeout=60)
        except Exception as exc:  # noqa: BLE001 - import errors of any kind end here
            self.stop()
            raise AppLoadError(
                f"could not load the app from {self._init_args[0]} in a worker: {exc!r} "
                "(the worker's traceback is above)"
            ) from exc
        return self.description

    def invoke(self, handler: str, event: dict[str, Any]) -> Invocation:
        """Run one invocation on some worker and wait for it (callers are threads)."""
        settings = self.description.functions[handler]
        executor = self._executor
        if executor is None:
            return Invocation(False, None, "Pool.Stopped", "the pool is stopped")
        try:
            return executor.submit(runtime.invoke, handler, event, settings).result()
        except BrokenProcessPool:
            log.error("a worker died while running %s; starting fresh workers", handler)
            self._replace(executor)
            return Invocation(False, None, "Runtime.ExitError", "the worker process exited")
        except (RuntimeError, cf.CancelledError) as exc:
            # submit() after shutdown, or a queued call cancelled by stop(): the pump is stopping.
            return Invocation(False, None, "Pool.Stopped", repr(exc))

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is None:
            return
        processes = list(getattr(executor, "_processes", {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(timeout)
            if process.is_alive():
                # A handler stuck past the grace period: end it as Lambda would at its timeout.
                process.terminate()
                process.join(5)

    def _new_executor(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=runtime.init_worker,
            initargs=self._init_args,
        )

    def _replace(self, broken: cf.ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is not broken:
                return  # another thread already replaced it, or the pool is stopping
            self._executor = self._new_executor()
        broken.shutdown(wait=False, cancel_futures=True)
