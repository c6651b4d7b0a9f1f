"""Headless Chromium for console tests: launching it, and a page object per signed-in user.

Driven with Playwright for Python (its bundled driver; never ``playwright install``) against
Debian's ``/usr/bin/chromium`` (``CHROMIUM_PATH`` overrides). Each ``ConsolePage`` lives in its
own browser context — its own localStorage, cookies and socket — so one test can hold several
users side by side. Locators use ``data-testid`` (``page.get_by_test_id``).
"""
from __future__ import annotations

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
        self.log.append(f"[console.{message.type}] {message.text}")
        if message.text.startswith(CSP_VIOLATION):
            self.errors.append(message.text)

    # -- basics ------------------------------------------------------------------------

    def tid(self, testid: str) -> Locator:
        return self.page.get_by_test_id(testid)

    async def goto(self, path: str = "/") -> ConsolePage:
        """Open the console and wait until it knows whether someone is signed in."""
        await self.page.goto(self.base_url + path)
        await self.page.wait_for_selector("body[data-session]", state="attached",
                                          timeout=ACTION_TIMEOUT_MS)
        return self

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

    async def fill_credentials(self, email: str, password: str, username: str | None = None):
        await self.tid("auth-email").fill(email)
        await self.tid("auth-password").fill(password)
        await self.tid("auth-username").fill(username or "")

    async def sign_up(self, email: str, password: str = PASSWORD,
                      username: str | None = None) -> str:
        """Register; returns the username shown in the Account panel."""
        await self.fill_credentials(email, password, username)
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
        """A panel's message box shows an error with this code (and text, if given)."""
        box = self.tid(testid)
        await expect(box).to_have_attribute("data-code", code)
        await expect(box).to_contain_text(f"{code}:")
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
        await self.tid("project-create-name").fill(name)
        await self.tid("project-create-description").fill(description)
        await self.tid("project-create").click()
        item = self.project_item(name)
        await expect(item).to_be_visible()
        return item

    async def open_project(self, name: str) -> None:
        await self.project_item(name).get_by_test_id("project-open").click()
        await expect(self.tid("project-title")).to_have_text(name)

    async def close_project(self) -> None:
        await self.tid("project-close").click()
        await expect(self.tid("project-detail")).to_be_hidden()

    async def add_member(self, email: str, role: str = "editor") -> None:
        await self.tid("member-add-email").fill(email)
        await self.tid("member-add-role").select_option(role)
        await self.tid("member-add").click()
        await expect(self.page.locator('[data-testid="member-row"]', has_text=email)) \
            .to_have_attribute("data-role", role)

    async def rename_project(self, name: str) -> None:
        await self.tid("project-rename-name").fill(name)
        await self.tid("project-rename").click()
        await expect(self.tid("project-title")).to_have_text(name)

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

    async def create_table(self, name: str, columns: list[tuple[str, str, bool]]) -> None:
        """Create a table from (name, type, secret) columns; it opens when created."""
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
