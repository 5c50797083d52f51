"""The dashboard's server side: the page as rendered (config block, <base>,
escaping), the files it may hand out, the strictness its Content-Security-
Policy relies on, the sign-in form and the download buttons as the page
ships them, that no API key ever reaches the page's HTML, and GET /,
/dashboard/{name} and /processors through Chalice's own test client. The
page's behaviour (signing in, refusals, downloads) is proved in a real
browser by tests/e2e/test_dashboard_browser.py."""
from __future__ import annotations

import json
import re
import secrets
from html.parser import HTMLParser

import pytest
from chalice.test import Client

from app import app, settings
from chalicelib import dashboard
from chalicelib.processors import processor_names

# The option types dashboard.js builds a field for.
FORM_TYPES = {"string", "integer", "number", "boolean", "list", "mapping", "choice"}


class _Page(HTMLParser):
    """What the tests look at in a rendered page: <base>, the config block,
    every script and stylesheet, any inline style or handler, and every
    element with an id (its tag and attributes)."""

    def __init__(self, text: str):
        super().__init__()
        self.base = None
        self.scripts: list[dict] = []
        self.links: list[dict] = []
        self.anchors: list[dict] = []
        self.by_id: dict[str, tuple[str, dict]] = {}
        self.inline_attributes: list[str] = []
        self.config_text = None
        self._in_config = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.inline_attributes += [name for name in attrs if name == "style" or name.startswith("on")]
        if "id" in attrs:
            self.by_id[attrs["id"]] = (tag, attrs)
        if tag == "a":
            self.anchors.append(attrs)
        if tag == "base":
            self.base = attrs["href"]
        elif tag == "script":
            self.scripts.append(attrs)
            self._in_config = attrs.get("id") == "config"
        elif tag == "link":
            self.links.append(attrs)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_config = False

    def handle_data(self, data):
        if self._in_config:
            self.config_text = (self.config_text or "") + data


def _config(page: str) -> dict:
    return json.loads(_Page(page).config_text)


# -- rendering -----------------------------------------------------------------

@pytest.mark.parametrize("asked, base", [("/", "/"), ("", "/"), ("/api/", "/api/"), ("/api", "/api/"),
                                         ("/api/?tab=1", "/api/")])
def test_the_base_is_the_path_the_page_was_asked_as(asked, base):
    assert dashboard.api_base(asked) == base


def test_the_page_carries_where_the_socket_and_the_api_are():
    page = dashboard.render_index("wss://ws.example.com/live", "/api/")
    parsed = _Page(page)
    assert parsed.base == "/api/"
    assert _config(page) == {"ws_url": "wss://ws.example.com/live", "api_base": "/api/"}
    assert "{{" not in page


def test_a_hostile_value_stays_data_inside_the_config_block():
    hostile = '</script><script>alert(1)</script><!-- & "{{base_href}}"'
    page = dashboard.render_index(hostile, '/x"><script>alert(2)</script>/')
    parsed = _Page(page)
    # Still one config block and the two scripts of the page, nothing more.
    assert [s.get("id") or s.get("src") for s in parsed.scripts] == ["config", "dashboard/dashboard.js"]
    assert _config(page)["ws_url"] == hostile  # read back intact, placeholder included
    assert parsed.base == '/x"><script>alert(2)</script>/'  # an attribute value, escaped
    assert "alert(1)</script>" not in page and "<script>alert(2)" not in page


def test_the_page_answer_forbids_inline_script_framing_and_sniffing():
    status, body, headers = dashboard.index_page("", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    policy = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert _config(body)["ws_url"] == ""


# -- what the policy relies on -------------------------------------------------

def test_the_page_has_no_inline_script_style_or_handler():
    parsed = _Page(dashboard.read_asset("index.html"))
    assert parsed.inline_attributes == []
    for script in parsed.scripts:
        assert script.get("src") or script.get("type") == "application/json", script


def test_every_file_the_page_loads_is_served_and_nothing_comes_from_elsewhere():
    parsed = _Page(dashboard.read_asset("index.html"))
    wanted = [s["src"] for s in parsed.scripts if "src" in s]
    wanted += [link["href"] for link in parsed.links if link.get("rel") == "stylesheet"]
    assert sorted(wanted) == sorted(f"dashboard/{name}" for name in dashboard.ASSET_TYPES)
    for name in dashboard.ASSET_TYPES:
        text = dashboard.read_asset(name)
        assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", text), name  # no CDN, no web font
    assert not re.search(r"(src|href)=\"(https?:)?//", dashboard.read_asset("index.html"))


def test_data_reaches_the_page_only_as_text():
    script = dashboard.read_asset("dashboard.js")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink


# -- signing in and downloads --------------------------------------------------

def test_the_page_ships_a_sign_in_form_and_shows_nothing_until_the_script_decides():
    page = dashboard.read_asset("index.html")
    parsed = _Page(page)
    tag, key_input = parsed.by_id["api-key"]
    assert tag == "input" and key_input["type"] == "password" and key_input["autocomplete"] == "off"
    assert "name" not in key_input  # a form sent without the script could not put it in a URL
    assert '<label for="api-key" class="field-label">API key</label>' in page
    assert "<code>make run</code> prints one" in page
    assert parsed.by_id["sign-in-form"][0] == "form" and parsed.by_id["sign-out"][0] == "button"
    # Neither the form nor the dashboard shows before the script has looked
    # for a key (in the link, then in localStorage).
    for hidden in ("sign-in", "app", "signed-in", "sign-out"):
        assert "hidden" in parsed.by_id[hidden][1], hidden


def test_downloads_are_buttons_not_links_to_the_api():
    """A navigation cannot carry the key: the page asks the API on click."""
    parsed = _Page(dashboard.read_asset("index.html"))
    for name in ("download", "download-result", "download-rows", "download-pdf"):
        assert parsed.by_id[name][0] == "button", name
    assert parsed.anchors == []


def test_no_api_key_ever_reaches_the_page_html(client):
    key = "slk_" + secrets.token_urlsafe(32)  # GET / is public: no key is looked up
    for path, headers in [("/", {"Authorization": f"Bearer {key}"}), (f"/?key={key}", {}),
                          (f"/?api_key={key}", {"Cookie": f"key={key}"})]:
        response = client.http.get(path, headers=headers)
        page = response.body.decode()
        assert response.status_code == 200 and key not in page, path
        assert _config(page) == {"ws_url": settings.ws_url, "api_base": "/"}
    # Nor does any file the page loads hold a key (a placeholder names the shape).
    for name in ("index.html", *dashboard.ASSET_TYPES):
        assert not re.search(r"slk_[A-Za-z0-9_-]{43}", dashboard.read_asset(name)), name


# -- the asset allowlist -------------------------------------------------------

@pytest.mark.parametrize("name, content_type", [("dashboard.js", "text/javascript"),
                                                ("dashboard.css", "text/css")])
def test_the_dashboard_files_are_served_with_their_types(name, content_type):
    status, body, headers = dashboard.asset(name)
    assert status == 200 and body == dashboard.read_asset(name)
    assert headers["Content-Type"].startswith(content_type)
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("name", ["__init__.py", "index.html", "../../app.py", "..%2F..%2Fapp.py",
                                  "dashboard.js.map", "DASHBOARD.JS", ""])
def test_nothing_else_in_the_folder_is_served(name):
    status, body, headers = dashboard.asset(name)
    assert status == 404 and "dashboard.css, dashboard.js" in body["error"]
    assert "Content-Type" not in headers


# -- the routes ------------------------------------------------------------------

@pytest.fixture
def client():
    with Client(app) as c:
        yield c


def _headers(response) -> dict[str, str]:
    return {name.lower(): value for name, value in response.headers.items()}


def test_get_root_serves_the_page_for_this_stage(client):
    response = client.http.get("/")
    assert response.status_code == 200
    assert _headers(response)["content-type"] == "text/html; charset=utf-8"
    assert "frame-ancestors 'none'" in _headers(response)["content-security-policy"]
    page = response.body.decode()
    assert _Page(page).base == "/"
    assert _config(page) == {"ws_url": settings.ws_url, "api_base": "/"}


def test_get_a_dashboard_file_and_a_missing_one(client):
    css = client.http.get("/dashboard/dashboard.css")
    assert css.status_code == 200 and _headers(css)["content-type"].startswith("text/css")
    assert css.body.decode() == dashboard.read_asset("dashboard.css")
    missing = client.http.get("/dashboard/app.py")
    assert missing.status_code == 404 and "no dashboard file named 'app.py'" in missing.json_body["error"]


def test_get_processors_describes_every_processor_as_the_form_needs(client):
    response = client.http.get("/processors")
    assert response.status_code == 200
    described = {p["name"]: p for p in response.json_body["processors"]}
    assert sorted(described) == processor_names()
    for processor in described.values():
        assert processor["description"] and processor["item_label"]
        for option in processor["options"]:
            assert option["type"] in FORM_TYPES, (processor["name"], option)
            assert option["help"] and isinstance(option["advanced"], bool)
            assert option["type"] != "choice" or option["choices"]
    scan = {o["name"]: o for o in described["scan"]["options"]}
    assert scan["target_hole_codes"]["type"] == "list" and not scan["target_hole_codes"]["advanced"]
    assert scan["documents_per_chunk"] == {"name": "documents_per_chunk", "type": "integer", "default": 10,
                                           "help": scan["documents_per_chunk"]["help"], "advanced": True}
    assert described["scan"]["item_label"] == "documents"
    carbon = {o["name"]: o for o in described["carbon"]["options"]}
    assert carbon["factor_source"]["choices"] and not carbon["region"]["advanced"]
    assert carbon["delimiter"]["advanced"] and carbon["encoding"]["advanced"]
