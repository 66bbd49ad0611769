"""End to end in a real headless browser: sign in, open the overview, see an event arrive live.

pytest-django's live_server is WSGI (no websockets), so a real daphne process serves the
project: against the test database on PostgreSQL, or a fresh SQLite file otherwise (the
SQLite test database lives in memory, where no other process can see it). The browser is
Debian's chromium driven by Playwright; nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote
from urllib.request import urlopen

import pytest
from django.conf import settings
from django.db import connection
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BASE_DIR = Path(settings.BASE_DIR)
PYTHON = sys.executable
USERNAME, PASSWORD = "browser", "pw-browser-123"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    # CI installs chromium (.ci/run), so there a missing browser is a failure, not a skip.
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("CI"),
        reason=f"chromium is not installed at {CHROMIUM}",
    ),
]

SEED = f"""
from django.contrib.auth import get_user_model
from strategies.models import Strategy
get_user_model().objects.create_user({USERNAME!r}, password={PASSWORD!r}, is_staff=True)
from marketdata.models import Stock
strategy = Strategy.objects.create(name="Browser demo", strategy_class="sma_crossover")
strategy.stocks.add(Stock.objects.create(symbol="BRWS"))
print(strategy.pk)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url(tmp_path: Path) -> tuple[str, bool]:
    """The URL the server process uses, and whether it still needs migrating."""
    if connection.vendor == "postgresql":
        s = connection.settings_dict
        auth = quote(s["USER"] or "") + (":" + quote(s["PASSWORD"]) if s.get("PASSWORD") else "")
        return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}", False
    return f"sqlite:///{tmp_path / 'browser.sqlite3'}", True


@pytest.fixture
def server(tmp_path, transactional_db):
    url, needs_migrate = _database_url(tmp_path)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_IGNORE_DOTENV": "1",
        "LOG_TO_FILE": "0",
        "LOG_LEVEL": "WARNING",
        "DEBUG": "true",
    }
    if needs_migrate:
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=env, check=True, timeout=120
        )
    seeded = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", SEED],
        cwd=BASE_DIR,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    )
    strategy_id = int(seeded.stdout.strip().splitlines()[-1])
    port = _free_port()
    daphne = shutil.which("daphne", path=str(Path(PYTHON).parent)) or "daphne"
    process = subprocess.Popen(
        [daphne, "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # a loaded 2-core machine can take over 30 s
    while True:
        try:
            with urlopen(base + "/health", timeout=2):
                break
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    "daphne did not start: " + process.stderr.read().decode()[-2000:]
                ) from None
            time.sleep(0.2)
    yield {"url": base, "strategy_id": strategy_id, "env": env}
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def _journal_from_another_process(env: dict[str, str], message: str) -> None:
    """Write a journal event the way the engine does: from its own process, with
    ``record_event`` (database row + broadcast after commit). With Redis the broadcast
    crosses processes; with the in-memory layer the server's relay reads the row."""
    code = (
        "from strategies.events import record_event; "
        f"record_event('engine.note', {message!r}, severity='warning')"
    )
    subprocess.run([PYTHON, "manage.py", "shell", "-c", code], cwd=BASE_DIR, env=env, check=True, timeout=60)


def test_overview_shows_a_new_event_without_reload(server):
    base = server["url"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(base + "/")
            assert "/accounts/login/" in page.url  # anonymous: sent to sign in
            page.fill("input[name=username]", USERNAME)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(base + "/")
            assert page.locator("h1").first.inner_text() == "Overview"
            # The socket is up once the status dot says so.
            page.wait_for_selector("[data-live-status][data-state=live]", timeout=15000)
            page.evaluate("window.__notReloaded = true")

            # Trigger an event inside the server process: activate the strategy over HTTP
            # (the page's own form action), which journals "strategy.activated".
            csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
            response = page.request.post(
                f"{base}/strategies/{server['strategy_id']}/activation/",
                form={"active": "1"},
                headers={"X-CSRFToken": csrf, "Referer": base + "/"},
                max_redirects=0,
            )
            assert response.status == 302
            item = page.locator("#event-feed li", has_text="Browser demo activated")
            item.wait_for(timeout=15000)
            assert page.evaluate("window.__notReloaded") is True

            # Another process (like the engine) journals an event: it appears too.
            _journal_from_another_process(server["env"], "hello from another process")
            page.locator("#event-feed li", has_text="hello from another process").wait_for(timeout=15000)
            assert page.evaluate("window.__notReloaded") is True

            # A lost message (a jump in seq) makes the page reload its state from the API.
            page.evaluate(
                """() => {
                  const deliver = (seq) => window.Live._state.socket.onmessage({data: JSON.stringify({
                    type: "event.created", group: "events", source: "test", seq: seq, sent_at: "",
                    payload: {id: -seq, event_type: "test.gap", severity: "info", message: "seq " + seq,
                              created_at: new Date().toISOString()}})});
                  deliver(1); deliver(3);
                }"""
            )
            page.wait_for_function("window.Live.stats.gaps === 1 && window.Live.stats.resyncs >= 1")
            # The resync re-renders the feed from /api/overview/: the fake rows are gone.
            page.locator("#event-feed li", has_text="seq 3").wait_for(state="detached", timeout=10000)
            assert page.locator("#event-feed li", has_text="Browser demo activated").count() == 1

            # A dropped socket reconnects by itself and resyncs.
            page.evaluate("window.Live._state.socket.close()")
            page.wait_for_function("window.Live.stats.reconnects === 1", timeout=20000)
            page.wait_for_selector("[data-live-status][data-state=live]", timeout=15000)
            assert page.evaluate("window.__notReloaded") is True

            # The chart and vendored library are served locally.
            assert page.evaluate("typeof window.LightweightCharts") == "object"

            # The interactive API docs render from the project's own copy of Swagger UI.
            page.goto(base + "/api/docs/")
            page.wait_for_selector(".swagger-ui .info .title", timeout=20000)
            assert "Stocktrader API" in page.locator(".swagger-ui .info .title").inner_text()
        finally:
            browser.close()
