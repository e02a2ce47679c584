"""The dashboard in a real browser: headless Chromium loads /dashboard after traffic, the page must
draw data points and raise no JavaScript or console errors; a screenshot is kept for humans.

Skipped, saying so, when Chromium is not installed (apt-get install chromium)."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
from openai import OpenAI

from conftest import GATEWAY_KEY, ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=8000", "--window-size=1400,1100", "--enable-logging=stderr", "--v=0",
]


class BodyAttributes(HTMLParser):
    def __init__(self):
        super().__init__()
        self.body = {}

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.body = dict(attrs)


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
