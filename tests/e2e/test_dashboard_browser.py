"""The dashboard in a real browser over a running ``hub demo --serve``.

Headless Chromium from Debian (``apt-get install -y chromium``) driven by Playwright for
Python; Playwright's own browser download is not used. Without chromium the test skips
locally and fails in CI (``CI=true``).

``HUB_E2E_DOCUMENTS`` sets how many filings the demo carries first (default 60), and
``HUB_DASHBOARD_SCREENSHOT`` a path to keep the overview's screenshot at; the picture in
docs/dashboard-overview.png was taken with 300 documents.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # a dev dependency; require_browser() says what is missing
    expect = sync_playwright = None

from hub.region import load_region
from hub.store.repository import Store
from simulators.serving import free_port

CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI") == "true"
SERVING = re.compile(r"ePUAP simulator (?P<epuap>\S+), EOD simulator (?P<eod>\S+)\)")
LOGIN = re.compile(r"dashboard: (?P<url>\S+) \(login (?P<name>\S+) / (?P<password>\S+)\)")


def require_browser():
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium)")
    if sync_playwright is None:
        missing.append("playwright (pip install -e '.[dev]')")
    if not missing:
        return
    if IN_CI:
        pytest.fail(f"the browser test needs {', '.join(missing)}, and CI must run it")
    pytest.skip(f"no {', '.join(missing)}")


class RunningDemo:
    """``hub demo --serve`` in a child process, with what it printed."""

    def __init__(self, tmp_path, documents):
        self.var_dir = tmp_path
        self.port = free_port()
        self.log = tmp_path / "demo.err"
        env = {
            **os.environ,
            "HUB_VAR_DIR": str(tmp_path),
            "HUB_QUEUE_PREFIX": f"e2e-{uuid.uuid4().hex[:8]}",
            "HUB_HTTP_PORT": str(self.port),
        }
        for name in ("HUB_DATABASE_URL", "HUB_DASHBOARD_USERS"):
            env.pop(name, None)
        with self.log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "hub", "demo", "--serve"),
                    *("--offices", "2", "--documents", str(documents)),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def wait_until_serving(self, timeout_s=300):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.log.read_text(encoding="utf-8", errors="replace")
            serving = SERVING.search(text)
            if serving:
                login = LOGIN.search(text)
                assert login, text
                return login, serving
            if self.process.poll() is not None:
                raise AssertionError(f"the demo exited early:\n{text}")
            time.sleep(0.5)
        raise AssertionError(f"the demo did not serve within {timeout_s} s")

    def store(self):
        return Store.from_url(f"sqlite:///{self.var_dir / 'demo' / 'hub.db'}")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture
def demo(tmp_path):
    require_browser()
    running = RunningDemo(tmp_path, int(os.environ.get("HUB_E2E_DOCUMENTS", "60")))
    yield running
    running.stop()


def make_one_dead(demo, epuap_url, eod_url):
    """The EOD refuses the next document (http400), and one more filing arrives by ePUAP."""
    requests.post(f"{eod_url}/_sim/faults", json={"kind": "http400", "times": 1}, timeout=10)
    office = next(iter(load_region(demo.var_dir / "demo" / "region.toml").offices.values()))
    requests.post(
        f"{epuap_url}/_sim/documents",
        json={
            "mailboxes": [
                {
                    "address": office.esp_address,
                    "office_name": office.name,
                    "office_teryt": office.id.replace("_", ""),
                    "count": 1,
                }
            ],
            "seed": 99,
        },
        timeout=10,
    ).raise_for_status()
    store = demo.store()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            dead = store.dead_deliveries()
            if dead:
                return dead[0]
            time.sleep(0.25)
    finally:
        store.close()
    raise AssertionError("no delivery died after the EOD's http400")


def pour(demo, epuap_url, per_office):
    offices = load_region(demo.var_dir / "demo" / "region.toml").offices.values()
    mailboxes = [
        {
            "address": office.esp_address,
            "office_name": office.name,
            "office_teryt": office.id.replace("_", ""),
            "count": per_office,
        }
        for office in offices
    ]
    requests.post(
        f"{epuap_url}/_sim/documents", json={"mailboxes": mailboxes, "seed": 7}, timeout=60
    ).raise_for_status()


def screenshot_under_load(page, demo, epuap_url):
    """The live overview while filings pour in (kept where HUB_DASHBOARD_SCREENSHOT says).

    For the kept picture the filings keep coming for a few minutes, so the charts have a
    shape; otherwise a short burst shows the page works under load.
    """
    keep = os.environ.get("HUB_DASHBOARD_SCREENSHOT")
    for round_number in range(36 if keep else 3):
        pour(demo, epuap_url, 10 + (round_number % 6) * 4)
        time.sleep(5 if keep else 1)
    page.goto(page.url.split("/dashboard/")[0] + "/dashboard/?window=15m")
    expect_received = page.locator("[data-figure=received]")
    assert int(expect_received.inner_text()) > 0
    path = keep or str(demo.var_dir / "overview.png")
    page.screenshot(path=path, full_page=True)


def test_an_operator_logs_in_watches_traces_and_replays_a_dead_letter(demo):
    login, serving = demo.wait_until_serving()
    dead = make_one_dead(demo, serving["epuap"], serving["eod"])

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        # Polish, the dashboard's default, whatever the machine's own locale.
        page = browser.new_page(viewport={"width": 1440, "height": 1000}, locale="pl-PL")

        page.goto(login["url"])
        expect(page).to_have_url(re.compile(r"/login"))
        page.fill("input[name=name]", login["name"])
        page.fill("input[name=password]", login["password"])
        page.click("form.login button[type=submit]")

        expect(page.locator("[data-figure=received]")).not_to_have_text("0")
        expect(page.locator("#endpoints tbody tr").first).to_be_visible()
        expect(page.locator("#queues")).to_be_visible()
        expect(page.locator("#throughput-chart canvas")).to_be_visible()

        page.fill("header input[name=q]", dead.message_id)
        page.press("header input[name=q]", "Enter")
        expect(page).to_have_url(re.compile(f"/dashboard/messages/{dead.message_id}"))
        expect(page.locator("#hops")).to_contain_text("routed")
        expect(page.locator(".delivery .attempts")).to_contain_text("dead")
        expect(page.locator("#audit")).to_contain_text("accepted")

        page.click("header nav a[href='/dashboard/dead']")
        row = page.locator(f"tr[data-delivery='{dead.delivery_id}']")
        row.locator("input[name=reason]").fill("EOD refused by mistake")
        row.locator("button[type=submit]").click()
        expect(page.locator(".flash")).to_contain_text("Ponowiono")
        screenshot_under_load(page, demo, serving["epuap"])
        browser.close()

    store = demo.store()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            trace = store.message_status(dead.message_id)
            if trace is not None and trace.value == "delivered":
                break
            time.sleep(0.25)
        assert store.message_status(dead.message_id).value == "delivered"
    finally:
        store.close()
