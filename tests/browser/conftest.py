"""Fixtures for browser tests: one Chromium per session, a real server per test, and
``open_console(name)`` opening a fresh context + tab per user.

Everything here runs on pytest-asyncio's *session* event loop (the browser outlives a test),
so this file also re-declares ``server`` and ``clients`` from tests/conftest.py on that loop.
Async tests under tests/browser/ are put on the session loop automatically.

    async def test_x(open_console, clients):
        alice = await open_console("alice")          # a ConsolePage, already on "/"
        await alice.sign_up("a@example.com")
        await alice.create_project("Apollo")

    @pytest.mark.server_settings(access_token_minutes=0.05)   # Settings overrides
    async def test_y(open_console): ...

On failure each tab's screenshot, DOM and console log are saved in the test's tmp_path
(printed in the teardown output). Any error in a page's console — an uncaught exception, a
console.error, a CSP violation, a resource that failed to load — fails the test that caused
it, unless the test allowed it (``ConsolePage.allow_console_error``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import pytest_asyncio

from tests.client import Client
from tests.conftest import RunningServer, make_settings

HERE = Path(__file__).parent
REPORTS = pytest.StashKey[dict]()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "server_settings(**overrides): Settings for the browser tests' server, "
        "e.g. access_token_minutes=0.05")


def pytest_collection_modifyitems(items):
    session_loop = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if HERE in Path(item.path).parents and pytest_asyncio.is_async_test(item):
            item.add_marker(session_loop, append=False)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser():
    try:
        from playwright.async_api import async_playwright
    except ImportError:  # pragma: no cover - an environment problem, said plainly
        pytest.fail("Playwright is not installed: pip install -e '.[test]' (playwright>=1.40)",
                    pytrace=False)
    from tests.browser import harness
    problem = None
    try:
        harness.chromium_path()
    except RuntimeError as exc:
        problem = str(exc)
    if problem:
        pytest.fail(problem, pytrace=False)
    async with async_playwright() as playwright:
        browser = await harness.launch(playwright)
        yield browser
        await browser.close()


@pytest.fixture
def settings(request, tmp_path):
    marker = request.node.get_closest_marker("server_settings")
    return make_settings(tmp_path, **(marker.kwargs if marker else {}))


@pytest_asyncio.fixture(loop_scope="session")
async def server(settings):
    srv = await RunningServer(settings).start()
    yield srv
    await srv.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def clients(server):
    """Python socket.io clients on the same server (to seed data or observe pushes)."""
    made: list[Client] = []

    async def make(token: str | None = None, name: str = "") -> Client:
        client = await Client(server.url, name).connect(token)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest_asyncio.fixture(loop_scope="session")
async def open_console(browser, server, request, tmp_path):
    """open_console(name="user", goto=True) → a ConsolePage in a fresh browser context."""
    from tests.browser import harness
    from tests.browser.harness import ConsolePage

    opened: list[ConsolePage] = []

    async def make(name: str = "user", goto: bool = True) -> ConsolePage:
        context = await browser.new_context(viewport=dict(harness.DEFAULT_VIEWPORT))
        context.set_default_timeout(harness.ACTION_TIMEOUT_MS)
        await context.add_init_script(harness.CSP_WATCH)
        page = await context.new_page()
        console = ConsolePage(context, page, server.url, f"{len(opened) + 1}-{name}")
        opened.append(console)
        if goto:
            await console.goto()
        return console

    yield make

    reports = request.node.stash.get(REPORTS, {})
    failed = any(r.failed for r in reports.values())
    if failed:
        saved = []
        for console in opened:
            saved += await console.save_artifacts(tmp_path / "browser")
        print(f"browser artifacts: {', '.join(str(p) for p in saved)}", file=sys.stderr)
    for console in opened:
        await console.close()
    errors = [f"{c.name}: {e}" for c in opened for e in c.errors]
    if errors and not failed:
        pytest.fail("errors in the page's console:\n" + "\n".join(errors), pytrace=False)

