"""The REST API, served by Chalice's own local server (what `chalice local` runs).

It runs in the local_cloud process, in a thread, so routes see exactly the
environment the pump's workers see (the embedded AWS, the stack's names). The app
is imported here only after that environment is set: chalicelib reads settings
once, at first use.
"""
from __future__ import annotations

import importlib
import logging
import sys
import threading
from pathlib import Path
from typing import Any

from chalice.config import Config
from chalice.deploy.validate import validate_routes
from chalice.local import CustomLocalChalice, LocalDevServer, create_local_server

from local_cloud.sources import load_chalice_config

log = logging.getLogger("local_cloud.api")


class AppModuleConflictError(RuntimeError):
    """A different module of the same name is already imported in this process."""


def import_app(app_dir: Path, module_name: str = "app") -> Any:
    """Import the Chalice app object from ``app_dir``/``module_name``.py."""
    app_dir = Path(app_dir).resolve()
    loaded = sys.modules.get(module_name)
    if loaded is not None:
        loaded_from = Path(getattr(loaded, "__file__", "") or "").resolve().parent
        if loaded_from != app_dir:
            raise AppModuleConflictError(
                f"module {module_name!r} is already imported from {loaded_from}, not {app_dir}"
            )
        # Imported before local_cloud set the environment: names the app read at
        # import time (settings, decorator arguments) may be another stage's.
        log.warning("using the already imported %s module; it read its settings before local_cloud "
                    "started", module_name)
        return loaded.app
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    return importlib.import_module(module_name).app


class ApiServer:
    def __init__(
        self,
        app_dir: Path,
        port: int = 8000,
        host: str = "127.0.0.1",
        module_name: str = "app",
        chalice_stage: str = "dev",
    ):
        self._app_dir = Path(app_dir)
        self._host = host
        self._port = port
        self._module_name = module_name
        self._chalice_stage = chalice_stage
        self._server: LocalDevServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("ApiServer is not started")
        host, port = self._server.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        app = import_app(self._app_dir, self._module_name)
        # The same check `chalice local` and `chalice deploy` make.
        validate_routes(app.routes)
        config = Config(
            chalice_stage=self._chalice_stage,
            user_provided_params={"chalice_app": app, "project_dir": str(self._app_dir)},
            config_from_disk=load_chalice_config(self._app_dir),
        )
        if isinstance(app, CustomLocalChalice):
            # create_local_server re-parents the app's class; a second start in
            # the same process (tests, benchmarks) must not do that again.
            self._server = LocalDevServer(app, config, self._host, self._port)
        else:
            self._server = create_local_server(app, config, self._host, self._port)
        self._thread = threading.Thread(
            target=self._server.server.serve_forever, name="api-server", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None
