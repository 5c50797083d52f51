"""The dashboard (GET /): one HTML page, a script and a stylesheet, served by
the app itself from this folder. No build step and nothing from a CDN.

The page learns at load where the WebSocket is and where the REST API lives
from a JSON block rendered into index.html, and every URL it builds is
relative to a <base> set to the API's own path: deployed, API Gateway serves
the routes under a stage path (/api/), so "/" would be the wrong root.

GET / and the page's files are public; the job routes need a tenant's API
key. The key never passes through here: the page reads it from a `#key=`
link (a fragment never reaches a server) or its sign-in form, keeps it in
the browser's localStorage and sends it with each call (dashboard.js).
"""
from __future__ import annotations

import functools
import html
import json
import re
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# The only files GET /dashboard/{name} hands out: anything else in this folder
# (this module included) stays private, whatever the name asked for.
ASSET_TYPES = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}

# Scripts and styles from this app only, none inline (the config block is
# data, not script), and the page may not be framed. Uploads go to S3 and the
# live updates to the WebSocket API, both elsewhere, hence connect-src.
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self' https: http: wss: ws:; object-src 'none'; base-uri 'self'; "
               "form-action 'self'; frame-ancestors 'none'")
_COMMON_HEADERS = {"X-Content-Type-Options": "nosniff"}
_PLACEHOLDER = re.compile(r"\{\{(base_href|config_json)\}\}")


@functools.cache
def read_asset(name: str) -> str:
    """A file of this folder, read once per process."""
    return (HERE / name).read_text(encoding="utf-8")


def api_base(request_path: str) -> str:
    """The path the API is served under, ending in "/": "/" locally, "/api/"
    behind API Gateway's stage, given the path GET / was asked as."""
    return (request_path or "/").split("?", 1)[0].rstrip("/") + "/"


def render_index(ws_url: str, base: str) -> str:
    values = {"base_href": html.escape(base, quote=True),
              "config_json": script_json({"ws_url": ws_url, "api_base": base})}
    # One pass, so a value can never be read as another placeholder.
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], read_asset("index.html"))


def script_json(value: Any) -> str:
    """JSON safe inside a <script> element: a value holding "</script>" or
    "<!--" would otherwise end the element early or change how it is read."""
    return (json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


def index_page(ws_url: str, request_path: str) -> tuple[int, str, dict[str, str]]:
    return 200, render_index(ws_url, api_base(request_path)), {
        **_COMMON_HEADERS, "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"}


def asset(name: str) -> tuple[int, Any, dict[str, str]]:
    content_type = ASSET_TYPES.get(name)
    if content_type is None:
        return 404, {"error": f"no dashboard file named {name!r}; there are "
                              f"{', '.join(sorted(ASSET_TYPES))}"}, {}
    return 200, read_asset(name), {**_COMMON_HEADERS, "Content-Type": content_type,
                                   "Cache-Control": "public, max-age=300"}
