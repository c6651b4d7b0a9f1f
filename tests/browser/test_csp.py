"""The console under its Content-Security-Policy in Chromium: it works (every browser test
fails on a CSP violation; this one shows the watch sees them), and inline code is refused."""
from __future__ import annotations

from playwright.async_api import expect

from server.web_security import CONSOLE_CSP
from tests.browser.harness import CSP_VIOLATION
from tests.client import eventually, unique_email


async def test_console_works_under_its_policy_and_inline_code_is_refused(open_console):
    page = await open_console("csp", goto=False)
    response = await page.page.goto(page.base_url + "/")
    assert response is not None and response.headers["content-security-policy"] == CONSOLE_CSP
    await page.page.wait_for_selector("body[data-session]", state="attached")
    await expect(page.tid("conn-status")).to_have_attribute("data-state", "online")
    await page.sign_up(unique_email("csp"))
    await page.create_project("Policed")
    await page.open_project("Policed", view="chat")
    await expect(page.tid("chat-panel")).to_be_visible()  # the panel whose CSS moved
    assert page.errors == []

    # Style attributes set through the CSSOM apply (lib.js h() does that)...
    assert await page.page.evaluate("""() => {
        const el = document.createElement('span');
        el.style.cssText = 'display: block; width: 7px';
        document.body.append(el);
        return getComputedStyle(el).width; }""") == "7px"
    # ...while an inline script and a style attribute written as markup are refused, and
    # the harness's watch reports each.
    assert await page.page.evaluate("""() => {
        const s = document.createElement('script');
        s.textContent = 'window.inlineRan = true';
        document.head.append(s);
        const el = document.createElement('span');
        el.setAttribute('style', 'display: block; width: 9px');
        const line = document.createElement('p'); // inline in it, whatever the body's layout
        line.append(el);
        document.body.append(line);
        return [window.inlineRan === true, getComputedStyle(el).width]; }""") == [False, "auto"]
    def reported() -> list[str] | None:
        found = [e for e in page.errors if e.startswith(CSP_VIOLATION)]
        return found if len(found) >= 2 else None

    violations = await eventually(reported)
    assert any("script-src" in v for v in violations), violations
    assert any("style-src" in v for v in violations), violations
    page.errors.clear()  # expected ones: the fixture fails a test on any page error
