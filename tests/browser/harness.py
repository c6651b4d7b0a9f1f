"""Headless Chromium for console tests: launching it, and a page object per signed-in user.

Driven with Playwright for Python (its bundled driver; never ``playwright install``) against
Debian's ``/usr/bin/chromium`` (``CHROMIUM_PATH`` overrides). Each ``ConsolePage`` lives in its
own browser context — its own localStorage, cookies and socket — so one test can hold several
users side by side. Locators use ``data-testid`` (``page.get_by_test_id``).

Checks every view should pass, for any panel's tests:

    await page.view("files")                  # a project view, by its nav link
    await page.check_layout("files")          # 1440x900 and 390x844: no sideways scroll;
                                              # screenshots into tests/browser/screens/
    await page.check_accessibility("files")   # axe-core: no serious or critical violation

Every console error in a page fails the test that caused it (conftest); a test that provokes
one on purpose says so first: ``page.allow_console_error(r"status of 413")``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Playwright's launch() already gives every browser a fresh temporary --user-data-dir.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ACTION_TIMEOUT_MS = 10_000
PASSWORD = "correct horse battery"
ROOT = Path(__file__).resolve().parents[2]
SCREENS = Path(__file__).parent / "screens"  # kept by CI as artefacts; not committed
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# The two screens every view must fit: a laptop and a phone.
LAYOUTS = {"desktop": (1440, 900), "phone": (390, 844)}
DEFAULT_VIEWPORT = {"width": 1280, "height": 860}

expect.set_options(timeout=ACTION_TIMEOUT_MS)

# Installed in every context (conftest): each Content-Security-Policy violation in a page is
# reported on its console, where ``ConsolePage.watch`` counts it as a page error — so every
# browser test also checks that the console runs under its policy.
CSP_VIOLATION = "CSP violation:"
CSP_WATCH = (
    "document.addEventListener('securitypolicyviolation', (e) => console.error("
    f"'{CSP_VIOLATION} ' + e.effectiveDirective + ' blocked ' + (e.blockedURI || 'inline')"
    " + ' at ' + e.sourceFile + ':' + e.lineNumber));"
)


def chromium_path() -> str:
    """The Chromium binary, or an explanation of how to get one (tests fail, not skip)."""
    path = CHROMIUM if os.path.isabs(CHROMIUM) else shutil.which(CHROMIUM)
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError(
            f"Chromium not found at {CHROMIUM!r}. Install it (Debian/Ubuntu: `apt-get install -y "
            "chromium`) or point CHROMIUM_PATH at a Chromium/Chrome binary. Browser tests need "
            "a real browser; CI installs it.")
    return path


async def launch(playwright) -> Browser:
    return await playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                            args=CHROMIUM_ARGS)


class ConsolePage:
    """One user's tab on the web console, with helpers for the common flows.

    Helpers wait for the outcome the user would see (a name in the header, an item in a list),
    so a test reads as a sequence of user actions and expectations.
    """

    def __init__(self, context: BrowserContext, page: Page, base_url: str, name: str):
        self.context = context
        self.page = page
        self.base_url = base_url
        self.name = name
        self.closed = False
        self.log: list[str] = []
        self.errors: list[str] = []
        self.allowed: list[re.Pattern] = []
        self.watch(page)

    def watch(self, page: Page) -> None:
        """Record the page's console, uncaught errors and failed requests."""
        page.on("console", self._console)
        page.on("pageerror", lambda exc: (self.errors.append(str(exc)),
                                          self.log.append(f"[pageerror] {exc}")))
        page.on("requestfailed", lambda r: self.log.append(
            f"[requestfailed] {r.method} {r.url}: {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and self.log.append(
            f"[http {r.status}] {r.request.method} {r.url}"))

    def _console(self, message) -> None:
        location = message.location or {}
        where = f" ({location.get('url', '')}:{location.get('lineNumber', '')})" \
            if location.get("url") else ""
        self.log.append(f"[console.{message.type}] {message.text}{where}")
        if message.text.startswith(CSP_VIOLATION) or (
                message.type == "error"
                and not any(p.search(message.text) for p in self.allowed)):
            self.errors.append(f"{message.text}{where}")

    def allow_console_error(self, pattern: str) -> None:
        """A console error this test provokes on purpose (e.g. Chromium's "Failed to load
        resource: ... status of 413" for a refused upload); any other still fails it."""
        self.allowed.append(re.compile(pattern))

    # -- basics ------------------------------------------------------------------------

    def tid(self, testid: str) -> Locator:
        return self.page.get_by_test_id(testid)

    async def goto(self, path: str = "/") -> ConsolePage:
        """Open the console and wait until it knows whether someone is signed in."""
        await self.page.goto(self.base_url + path)
        await self.page.wait_for_selector("body[data-session]", state="attached",
                                          timeout=ACTION_TIMEOUT_MS)
        return self

    async def ready(self) -> None:
        """Wait until the console knows whether someone is signed in."""
        await self.page.wait_for_selector("body[data-session]", state="attached",
                                          timeout=ACTION_TIMEOUT_MS)

    async def shows(self, view: str) -> None:
        """Wait until the shell shows ``view`` (shell.js sets body[data-view])."""
        await expect(self.page.locator("body")).to_have_attribute("data-view", view)

    async def view(self, name: str) -> None:
        """Open one of the open project's views (tables, captures, chat, files, imports,
        members) through its link in the project navigation."""
        await self.tid(f"nav-{name}").click()
        await self.shows(name)

    async def home(self) -> None:
        """Back to the project list (the top bar's Collab link)."""
        if await self.page.locator("body").get_attribute("data-view") != "home":
            await self.tid("nav-home").click()
            await self.shows("home")

    async def reopen(self) -> ConsolePage:
        """Close this tab and open a new one in the same context (same localStorage)."""
        if not self.page.is_closed():
            await self.page.close()
        self.page = await self.context.new_page()
        self.watch(self.page)
        return await self.goto()

    async def call(self, event: str, payload=None):
        """Call an event through the page's own socket (window.collab.call); returns the
        ack's data, or raises with the error code and message."""
        return await self.page.evaluate(
            "([e, p]) => window.collab.call(e, p === null ? undefined : p)", [event, payload])

    async def stored_tokens(self) -> dict | None:
        return await self.page.evaluate("JSON.parse(localStorage.getItem('collab.tokens'))")

    async def close(self) -> None:
        """Close the whole context: the user's socket disconnects, like closing the browser."""
        if not self.closed:
            self.closed = True
            await self.context.close()

    # -- account -----------------------------------------------------------------------

    async def fill_credentials(self, email: str, password: str, username: str | None = None,
                               register: bool = False):
        """Fill the sign-in card in its Sign in mode, or its Register mode."""
        await self.tid("auth-mode-register" if register else "auth-mode-login").click()
        await expect(self.tid("auth-form")).to_have_attribute(
            "data-mode", "register" if register else "login")
        await self.tid("auth-email").fill(email)
        await self.tid("auth-password").fill(password)
        if register:
            await self.tid("auth-username").fill(username or "")

    async def sign_up(self, email: str, password: str = PASSWORD,
                      username: str | None = None) -> str:
        """Register; returns the username shown in the top bar."""
        await self.fill_credentials(email, password, username, register=True)
        await self.tid("auth-register").click()
        return await self.signed_in(username)

    async def sign_in(self, email: str, password: str = PASSWORD) -> str:
        await self.fill_credentials(email, password)
        await self.tid("auth-login").click()
        return await self.signed_in()

    async def guest(self) -> str:
        await self.tid("auth-guest").click()
        return await self.signed_in()

    async def signed_in(self, username: str | None = None) -> str:
        user = self.tid("auth-user")
        await expect(user).to_be_visible()
        if username:
            await expect(user).to_have_text(username)
        return (await user.text_content()) or ""

    async def sign_out(self) -> None:
        await self.tid("auth-logout").click()
        await expect(self.tid("auth-form")).to_be_visible()

    async def expect_error(self, testid: str, code: str, text: str | re.Pattern | None = None):
        """A panel's message box shows an error with this code (data-code: people read a
        sentence, never the code) and text, if given (the server's message is kept)."""
        box = self.tid(testid)
        await expect(box).to_have_attribute("data-code", code)
        await expect(box).not_to_contain_text(f"{code}:")
        if text is not None:
            await expect(box).to_contain_text(text)

    # -- projects ----------------------------------------------------------------------

    def project_item(self, name: str) -> Locator:
        return self.page.locator(f'[data-testid="project-item"][data-project-name="{name}"]')

    def member_row(self, username: str) -> Locator:
        return self.page.locator(f'[data-testid="member-row"][data-username="{username}"]')

    def presence_user(self, username: str) -> Locator:
        return self.page.locator(f'[data-testid="presence-user"][data-username="{username}"]')

    async def create_project(self, name: str, description: str = "") -> Locator:
        await self.home()
        await self.tid("project-create-name").fill(name)
        await self.tid("project-create-description").fill(description)
        await self.tid("project-create").click()
        item = self.project_item(name)
        await expect(item).to_be_visible()
        return item

    async def open_project(self, name: str, view: str | None = None) -> None:
        """Open a project from the project list (its first view, Tables), then ``view``."""
        await self.home()
        await self.project_item(name).get_by_test_id("project-open").click()
        await expect(self.tid("project-title")).to_have_text(name)
        await self.shows("tables")
        if view:
            await self.view(view)

    async def close_project(self) -> None:
        await self.tid("project-close").click()
        await expect(self.tid("project-detail")).to_be_hidden()
        await self.shows("home")

    async def members(self) -> None:
        if await self.page.locator("body").get_attribute("data-view") != "members":
            await self.view("members")

    async def add_member(self, email: str, role: str = "editor") -> None:
        await self.members()
        await self.tid("member-add-email").fill(email)
        await self.tid("member-add-role").select_option(role)
        await self.tid("member-add").click()
        await expect(self.page.locator('[data-testid="member-row"]', has_text=email)) \
            .to_have_attribute("data-role", role)

    async def rename_project(self, name: str) -> None:
        await self.members()
        await self.tid("project-rename-name").fill(name)
        await self.tid("project-rename").click()
        await expect(self.tid("project-title")).to_have_text(name)

    # -- layout and accessibility --------------------------------------------------------

    async def sideways_overflow(self) -> dict | None:
        """None when the page does not scroll sideways; else the widths and the elements
        that stick out the furthest (to say what to fix)."""
        return await self.page.evaluate("""() => {
            const root = document.documentElement;
            if (root.scrollWidth <= innerWidth) return null;
            const wide = [...document.querySelectorAll('body *')]
              .filter((el) => el.getBoundingClientRect().right > innerWidth + 0.5
                && el.getClientRects().length)
              .map((el) => ({ tag: el.tagName.toLowerCase(),
                testid: el.dataset.testid || '', cls: String(el.className || ''),
                right: Math.round(el.getBoundingClientRect().right) }))
              .sort((a, b) => b.right - a.right).slice(0, 8);
            return { scrollWidth: root.scrollWidth, innerWidth, wide };
        }""")

    async def check_layout(self, label: str) -> None:
        """At 1440x900 and at 390x844 the page does not scroll sideways
        (``document.documentElement.scrollWidth <= innerWidth``); a full-page screenshot of
        each is kept in tests/browser/screens/<label>-<desktop|phone>.png."""
        before = self.page.viewport_size or DEFAULT_VIEWPORT
        try:
            for name, (width, height) in LAYOUTS.items():
                await self.page.set_viewport_size({"width": width, "height": height})
                await self.page.evaluate("() => new Promise(requestAnimationFrame)")
                problem = await self.sideways_overflow()
                await self.screenshot(SCREENS / f"{label}-{name}.png")
                assert problem is None, (
                    f"{label} at {width}x{height} scrolls sideways: {json.dumps(problem)}")
        finally:
            await self.page.set_viewport_size(before)

    async def check_accessibility(self, label: str, context: str = "body") -> list[dict]:
        """Run axe-core on the page as it is (``context``: a CSS selector to limit it to);
        fail on any serious or critical violation. Returns the lesser ones (for a look).

        axe.min.js (node_modules, a devDependency) is added with add_script_tag from a URL of
        the page's own origin that Playwright answers from the file: the console's
        Content-Security-Policy (script-src 'self') refuses the inline <script> that
        add_script_tag(path=...) would insert, and must stay on for the test to mean it."""
        if not await self.page.evaluate("() => typeof window.axe === 'object'"):
            if not AXE.exists():
                raise RuntimeError(f"{AXE} is missing: run `npm ci` (axe-core is a "
                                   "devDependency)")
            url = f"{self.base_url}/__tests__/axe.min.js"
            await self.page.route(url, lambda route: route.fulfill(
                path=str(AXE), content_type="text/javascript"))
            await self.page.add_script_tag(url=url)
        results = await self.page.evaluate("""async (context) => {
            // preload: off — it inserts an inline <style>, which the CSP refuses (an error)
            const r = await axe.run(context, { resultTypes: ['violations'], preload: false });
            return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ' — '
                + (n.failureSummary || '').replace(/\\s+/g, ' ')) }));
        }""", context)
        bad = [v for v in results if v["impact"] in ("serious", "critical")]
        assert not bad, f"axe on {label}: " + json.dumps(bad, indent=1)
        return results

    # -- evidence ----------------------------------------------------------------------

    async def screenshot(self, path: str | Path) -> None:
        await self.page.screenshot(path=str(path), full_page=True)

    async def keep_screenshot(self, label: str) -> Path | None:
        """Save a screenshot worth a human look into $BROWSER_SCREENSHOTS, when set."""
        where = os.environ.get("BROWSER_SCREENSHOTS")
        if not where:
            return None
        path = Path(where) / f"{label}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        await self.screenshot(path)
        return path

    async def save_artifacts(self, directory: Path) -> list[Path]:
        """Screenshot, DOM and console log of this tab, for a failed test."""
        directory.mkdir(parents=True, exist_ok=True)
        saved = []
        log = directory / f"{self.name}.console.log"
        log.write_text("\n".join(self.log) + "\n")
        saved.append(log)
        if not self.closed and not self.page.is_closed():
            shot = directory / f"{self.name}.png"
            html = directory / f"{self.name}.html"
            try:
                await self.page.screenshot(path=str(shot), full_page=True, timeout=5000)
                saved.append(shot)
                html.write_text(await self.page.content())
                saved.append(html)
            except Exception as exc:  # a hung page must not hide the test's own failure
                log.write_text(log.read_text() + f"[harness] could not capture the page: {exc}\n")
        return saved

    # -- tables (panels/tables.js) -----------------------------------------------------

    def table_item(self, name: str) -> Locator:
        return self.page.locator(f'[data-testid="table-item"][data-table-name="{name}"]')

    def table_row(self, text: str | re.Pattern | None = None) -> Locator:
        """Rows of the open table, optionally only those showing ``text`` in a cell."""
        rows = self.page.locator('[data-testid="table-row"]')
        return rows.filter(has=self.page.locator('[data-testid="cell"]', has_text=text)) \
            if text is not None else rows

    @staticmethod
    def cell(row: Locator, column: str) -> Locator:
        return row.locator(f'[data-testid="cell"][data-column="{column}"]')

    async def tables(self) -> None:
        if await self.page.locator("body").get_attribute("data-view") != "tables":
            await self.view("tables")

    async def create_table(self, name: str, columns: list[tuple[str, str, bool]]) -> None:
        """Create a table from (name, type, secret) columns; it opens when created."""
        await self.tables()
        section = self.tid("table-create-section")
        if await section.get_attribute("open") is None:
            await self.tid("table-create-toggle").click()
        await self.tid("table-create-name").fill(name)
        for i, (column, kind, secret) in enumerate(columns):
            if i > 0:
                await self.tid("column-add").click()
            editor = self.tid("column-editor").nth(i)
            await editor.get_by_test_id("column-name").fill(column)
            await editor.get_by_test_id("column-type").select_option(kind)
            await editor.get_by_test_id("column-secret").set_checked(secret)
        await self.tid("table-create").click()
        await expect(self.tid("table-title")).to_have_text(name)

    async def open_table(self, name: str) -> None:
        await self.tables()
        await self.table_item(name).get_by_test_id("table-open").click()
        await expect(self.tid("table-title")).to_have_text(name)
        await expect(self.tid("table-count")).to_contain_text("row")

    async def add_row(self, values: dict[str, str | bool | None]) -> None:
        """Fill the add-row form (strings for inputs, True/False/None for bool columns)."""
        form = self.tid("row-add-form")
        before = await self.table_row().count()
        for column, value in values.items():
            control = form.locator(f'[data-testid="row-add-input"][data-column="{column}"]')
            if value is None or isinstance(value, bool):
                await control.select_option("" if value is None else str(value).lower())
            else:
                await control.fill(value)
        await self.tid("row-add").click()
        await expect(self.table_row()).to_have_count(before + 1)
