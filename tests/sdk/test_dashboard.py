"""The dashboard in a real browser: headless Chromium loads /dashboard after traffic, the page must
draw data points and raise no JavaScript or console errors; a screenshot is kept for humans. With
the request history on, the 24 h range shows each key's spend and tokens as /v1/stats reports them,
failovers, and client errors apart from provider errors.

Skipped, saying so, when Chromium is not installed (apt-get install chromium)."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from conftest import BIN_DIR, GATEWAY_KEY, ROOT, Child, _start_mock, _stop

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=8000", "--window-size=1400,1100", "--enable-logging=stderr", "--v=0",
]


class BodyAttributes(HTMLParser):
    """The body's attributes, and the data attributes of every table row, by table id."""

    def __init__(self):
        super().__init__()
        self.body = {}
        self.rows = {}
        self.table = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body":
            self.body = attrs
        elif tag == "table":
            self.table = attrs.get("id")
            self.rows[self.table] = []
        elif tag == "tr" and self.table and any(name.startswith("data-") for name in attrs):
            self.rows[self.table].append(attrs)


def chromium(args, profile):
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed: SKIPPED the dashboard browser test")
def test_dashboard_draws_traffic_without_errors(gateway):
    client = OpenAI(base_url=gateway, api_key=GATEWAY_KEY, max_retries=0, timeout=10)
    for _ in range(5):
        client.chat.completions.create(model="acme/chat-small", messages=[{"role": "user", "content": "hi"}])
    origin = gateway.rsplit("/v1", 1)[0]
    deadline = time.monotonic() + 15
    seen = 0
    while time.monotonic() < deadline and seen < 5:
        with urllib.request.urlopen(f"{origin}/v1/stats", timeout=5) as response:
            stats = json.load(response)
        seen = sum(s["total"]["requests"] for s in stats["seconds"])
    assert seen >= 5, "the requests reached the dashboard data"

    with tempfile.TemporaryDirectory() as profile:
        dom = chromium(["--dump-dom", f"{origin}/dashboard"], profile)
    assert dom.returncode == 0, dom.stderr[-2000:]
    parser = BodyAttributes()
    parser.feed(dom.stdout)
    assert int(parser.body.get("data-rendered-points", "0")) > 0, "the charts drew data points"
    assert int(parser.body.get("data-requests", "0")) >= 5
    assert parser.body.get("data-errors", "") == "", parser.body
    console_errors = [l for l in dom.stderr.splitlines() if "CONSOLE" in l and ("Uncaught" in l or "Error" in l)]
    assert not console_errors, console_errors

    shot = Path(os.environ.get("CORELAY_SCREENSHOT", ROOT / "target" / "dashboard.png"))
    shot.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        taken = chromium([f"--screenshot={shot}", f"{origin}/dashboard"], profile)
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.stat().st_size > 10_000, "a real picture, not a blank page"


KEY_A = "gw-dashboard-key-a-0123456789"
KEY_B = "gw-dashboard-key-b-0123456789"


@pytest.fixture
def history_gateway():
    """A gateway with the request history in a temporary directory: `acme/chat` (1 and 2 USD per
    million tokens), `acme/failover` whose first endpoint answers 503, `acme/down` whose only
    endpoint does, and keys `team-a` and `team-b`. One failure ejects an endpoint."""
    mock, base_url = _start_mock()
    down, down_url = _start_mock("--fault", "status:503")
    with tempfile.TemporaryDirectory() as state:
        config = textwrap.dedent(
            f"""
            [server]
            listen = "127.0.0.1:0"
            cores = 1

            [history]
            path = "{state}/history.sqlite"

            # One failure ejects, for long enough that the page shows it.
            [health]
            eject_consecutive_failures = 1
            eject_base_ms = 60000

            [providers.mock]
            kind = "openai"
            base_url = "{base_url}"

            [providers.down]
            kind = "openai"
            base_url = "{down_url}"

            [models."acme/chat"]
            endpoints = [{{ provider = "mock", model = "gpt-4o-mini" }}]
            price = {{ input = 1.0, output = 2.0 }}

            [models."acme/failover"]
            endpoints = [{{ provider = "down", model = "m" }}, {{ provider = "mock", model = "gpt-4o-mini" }}]
            price = {{ input = 1.0, output = 2.0 }}

            [models."acme/down"]
            endpoints = [{{ provider = "down", model = "m" }}]

            [[keys]]
            name = "team-a"
            key = "{KEY_A}"

            [[keys]]
            name = "team-b"
            key = "{KEY_B}"
            """
        )
        config_path = Path(state) / "corelay.toml"
        config_path.write_text(config)
        proc = Child([str(BIN_DIR / "corelay"), "--config", str(config_path)], "corelay-history")
        try:
            match = proc.stderr.wait_for(r"listening on http://(\S+)")
            yield f"http://{match.group(1)}"
        finally:
            _stop(proc)
            _stop(mock)
            _stop(down)


def chat(origin, key, model):
    client = OpenAI(base_url=f"{origin}/v1", api_key=key, max_retries=0, timeout=10)
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed: SKIPPED the dashboard browser test")
def test_dashboard_range_shows_spend_per_key_failovers_and_client_errors_from_history(history_gateway):
    origin = history_gateway
    spent = {"team-a": 0, "team-b": 0}
    for key, name, model, calls in [(KEY_A, "team-a", "acme/chat", 3), (KEY_B, "team-b", "acme/chat", 1), (KEY_B, "team-b", "acme/failover", 1)]:
        for _ in range(calls):
            usage = chat(origin, key, model).usage
            spent[name] += usage.prompt_tokens + 2 * usage.completion_tokens
    with pytest.raises(openai.NotFoundError):
        chat(origin, KEY_A, "nobody/model")
    with pytest.raises(openai.APIStatusError) as down:
        chat(origin, KEY_A, "acme/down")
    assert down.value.status_code >= 500

    with urllib.request.urlopen(f"{origin}/v1/stats?group_by=key", timeout=5) as response:
        by_key = {row["key"]: row for row in json.load(response)["rows"]}
    assert {k: by_key[k]["cost_micros"] for k in spent} == spent, "the history has what was served"

    # The ejection is decided on the control thread's next tick: waited for, bounded.
    deadline = time.monotonic() + 10
    reason = None
    while reason is None and time.monotonic() < deadline:
        health = urllib.request.Request(f"{origin}/v1/health", headers={"Authorization": f"Bearer {KEY_A}"})
        with urllib.request.urlopen(health, timeout=5) as response:
            endpoints = json.load(response)["endpoints"]
        reason = next((e.get("reason") for e in endpoints if e["provider"] == "down"), None)
    # One or two failures, as the control thread's tick fell between them.
    assert reason is not None and reason.endswith("consecutive failures"), endpoints
    # The page reads health from /v1/stats, which the control thread publishes on its own tick, a
    # moment after the worker's /v1/health knows: wait (bounded) until it says the same.
    deadline = time.monotonic() + 10
    live_reason = None
    while live_reason is None and time.monotonic() < deadline:
        with urllib.request.urlopen(f"{origin}/v1/stats", timeout=5) as response:
            live = json.load(response)["health"]["endpoints"]
        live_reason = next((e.get("reason") for e in live if e["provider"] == "down"), None)
    assert live_reason is not None, live

    with tempfile.TemporaryDirectory() as profile:
        dom = chromium(["--dump-dom", f"{origin}/dashboard#range=24h"], profile)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = BodyAttributes()
    page.feed(dom.stdout)
    assert page.body.get("data-errors", "") == "", page.body
    assert page.body.get("data-range") == "24h", page.body
    assert int(page.body.get("data-rendered-points", "0")) > 0, "the range charts drew points"
    assert int(page.body.get("data-requests", "0")) == 7, page.body
    keys = {row["data-key"]: row for row in page.rows["keys"]}
    assert {k: int(keys[k]["data-cost-micros"]) for k in spent} == spent, "spend per key as served"
    assert keys["team-b"]["data-failovers"] == "1", keys
    models = {row["data-model"]: row for row in page.rows["models"]}
    assert models["acme/failover"]["data-failovers"] == "1", "a call that failed over shows as a failover"
    text = dom.stdout
    assert "team-a" in text and "acme/failover" in text
    assert live_reason in text, "the health table says why the endpoint is out"
    key_legend = re.search(r'id="key-spend-legend">(.*?)</div>', text).group(1)
    assert "team-a" in key_legend and "team-b" in key_legend, "spend over time is drawn per key"

    for other in ("15m", "7d"):
        with tempfile.TemporaryDirectory() as profile:
            dom = chromium(["--dump-dom", f"{origin}/dashboard#range={other}"], profile)
        page = BodyAttributes()
        page.feed(dom.stdout)
        assert (page.body.get("data-range"), page.body.get("data-requests")) == (other, "7"), page.body
        assert page.body.get("data-errors", "") == "", page.body

    shot = Path(os.environ.get("CORELAY_SCREENSHOT_RANGE", ROOT / "target" / "dashboard-24h.png"))
    with tempfile.TemporaryDirectory() as profile:
        taken = chromium([f"--screenshot={shot}", f"{origin}/dashboard#range=24h"], profile)
    assert taken.returncode == 0, taken.stderr[-2000:]
