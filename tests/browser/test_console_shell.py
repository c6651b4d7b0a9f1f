"""The console's shell in Chromium: the place in the URL (reload, back/forward, links, sign-in
on the way), the developer drawer, human formats and error sentences, the register form's
Enter (bug 8), the guest's counter (bug 6), and every view of the shell at 1440 and 390 px
wide (no sideways scroll) and under axe-core (no serious or critical violation)."""
from __future__ import annotations

from playwright.async_api import expect

from tests.browser.harness import PASSWORD
from tests.client import unique_email


async def _url_ends(page, tail: str) -> None:
    await expect(page.page).to_have_url(f"{page.base_url}/{tail}")


async def test_the_url_keeps_the_place_through_reload_history_and_sign_in(open_console):
    page = await open_console("ada")
    email = unique_email("ada")
    await page.sign_up(email, username="ada")
    await page.create_project("Gemini")
    await page.open_project("Gemini")
    pid = await page.project_item("Gemini").get_attribute("data-project-id")
    await _url_ends(page, f"#/p/{pid}/tables")
    await page.view("files")
    await _url_ends(page, f"#/p/{pid}/files")
    # Keyboard: the navigation is links; Enter follows one and the focus moves to the view.
    await page.tid("nav-chat").focus()
    await page.page.keyboard.press("Enter")
    await page.shows("chat")
    await _url_ends(page, f"#/p/{pid}/chat")
    await expect(page.page.locator("section[data-panel=chat] h2")).to_be_focused()
    await expect(page.tid("nav-chat")).to_have_attribute("aria-current", "page")
    assert await page.page.title() == "Chat · Gemini · Collab console"

    # Bug 5: a reload keeps the session and the place.
    await page.page.reload()
    await page.ready()
    await page.signed_in("ada")
    await page.shows("chat")
    await expect(page.tid("project-title")).to_have_text("Gemini")
    await expect(page.tid("chat-panel")).to_be_visible()

    # Back and forward walk the views visited, in the project.
    await page.page.go_back()
    await page.shows("files")
    await page.page.go_back()
    await page.shows("tables")
    await page.page.go_forward()
    await page.shows("files")
    await expect(page.tid("project-title")).to_have_text("Gemini")
    # Home leaves the project (its room too); Back enters it again.
    await page.home()
    await expect(page.tid("project-detail")).to_be_hidden()
    await page.page.go_back()
    await page.shows("files")
    await expect(page.tid("project-title")).to_have_text("Gemini")

    # A link to a place, opened fresh, lands there.
    await page.page.goto("about:blank")
    await page.page.goto(f"{page.base_url}/#/p/{pid}/members")
    await page.ready()
    await page.shows("members")
    await expect(page.member_row("ada")).to_have_attribute("data-online", "true")
    # "#/p/<id>" alone means the project's first view, and the address says so.
    await page.page.goto(f"{page.base_url}/#/p/{pid}")
    await page.shows("tables")
    await _url_ends(page, f"#/p/{pid}/tables")

    # A project that is not there (or not ours) says so, with the way back.
    await page.page.goto(f"{page.base_url}/#/p/no-such-project/chat")
    unavailable = page.tid("project-unavailable")
    await expect(unavailable).to_be_visible()
    await expect(unavailable).to_have_attribute("data-code", "not_found")
    await expect(unavailable).to_contain_text("This project is not available")
    await unavailable.get_by_role("link", name="Your projects").click()
    await page.shows("home")

    # Signed out, a link shows the sign-in card; signing in lands where the link pointed.
    await page.sign_out()
    await page.page.goto(f"{page.base_url}/#/p/{pid}/files")
    await page.shows("signin")
    await page.sign_in(email)
    await page.shows("files")
    await expect(page.tid("project-title")).to_have_text("Gemini")
    await _url_ends(page, f"#/p/{pid}/files")


async def test_the_protocol_log_is_a_drawer(open_console):
    page = await open_console("dev")
    await page.sign_up(unique_email("dev"))
    drawer, toggle = page.tid("drawer"), page.tid("drawer-toggle")
    await expect(drawer).to_be_hidden()  # not in the way of the product
    await expect(toggle).to_have_attribute("aria-expanded", "false")

    await toggle.click()
    await expect(drawer).to_be_visible()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await expect(drawer.locator("h2")).to_be_focused()
    log = page.tid("activity-log")
    await expect(log.locator("li[data-kind=call]", has_text="auth:register ok")).to_have_count(1)
    await page.create_project("Logged")  # calls and pushes land in it as they happen
    await expect(log.locator("li[data-kind=call]", has_text="project:create ok")).to_have_count(1)
    await expect(log.locator("li[data-kind=push]", has_text="project:updated")).not_to_have_count(0)
    await page.check_layout("drawer")
    await page.check_accessibility("drawer")

    # Escape inside it closes it and gives the focus back to the button.
    await drawer.get_by_role("button", name="Clear").focus()
    await page.page.keyboard.press("Escape")
    await expect(drawer).to_be_hidden()
    await expect(toggle).to_be_focused()

    # Open or closed is remembered across a reload.
    await page.page.keyboard.press("Enter")
    await expect(drawer).to_be_visible()
    await page.page.reload()
    await page.ready()
    await expect(page.tid("drawer")).to_be_visible()
    await page.tid("drawer-close").click()
    await expect(page.tid("drawer")).to_be_hidden()
    await page.page.reload()
    await page.ready()
    await expect(page.tid("drawer")).to_be_hidden()


async def test_human_formats_and_error_sentences(open_console):
    page = await open_console("fmt")
    got = await page.page.evaluate("""async () => {
        const f = await import('/static/format.js');
        const e = await import('/static/error-messages.js');
        const now = Date.parse('2026-03-10T12:00:00Z');
        const ago = (s) => f.relativeTime(new Date(now - s * 1000), now);
        const t = f.timeEl('2026-03-10T11:55:00Z');
        return {
          bytes: [39130860, 0, 512, 1536, 524288, 5 * 2 ** 30, 1.5 * 2 ** 40].map(f.bytes),
          durations: [0, 0.0042, 0.42, 2.05, 59.9, 179, 3600, 7260, 200000].map(f.duration),
          relative: [10, 300, 7200, 86400 * 1.2, 86400 * 4].map(ago),
          older: f.relativeTime('2025-01-02T00:00:00Z', now),
          numbers: [1234567, 0.5, NaN].map(f.number),
          plural: [f.plural(1, 'file'), f.plural(1234, 'file')],
          time: { datetime: t.getAttribute('datetime'), title: t.title, text: t.textContent,
                  tag: t.tagName, expected: f.relativeTime('2026-03-10T11:55:00Z') },
          errors: [
            e.errorText({ code: 'unauthorized', message: 'wrong login or password' }),
            e.errorText({ code: 'forbidden', message: 'guests may make only 2 imports',
                          details: { reason: 'guest_limit' } }),
            e.errorText({ code: 'rate_limited', message: 'slow down',
                          details: { retryAfterMs: 2500 } }),
            e.errorText({ code: 'bad_request', message: 'invalid',
                          details: { fields: [{ problem: 'name is required' },
                                              { problem: 'size must be positive' }] } }),
            e.errorText({ code: 'unlocked', message: 'your lock on this row timed out' }),
            e.errorText(new TypeError('x is null')),
          ],
        };
    }""")
    assert got["bytes"] == ["37.3 MiB", "0 B", "512 B", "1.5 KiB", "512 KiB", "5.0 GiB",
                            "1.5 TiB"]
    assert got["durations"] == ["0 s", "4.2 ms", "420 ms", "2.05 s", "59.9 s", "2 min 59 s",
                                "1 h", "2 h 1 min", "2 d 7 h"]
    assert got["relative"] == ["just now", "5 min ago", "2 h ago", "yesterday", "4 days ago"]
    assert got["older"] == "Jan 2, 2025"
    assert got["numbers"] == ["1,234,567", "0.5", "—"]
    assert got["plural"] == ["1 file", "1,234 files"]
    assert got["time"]["tag"] == "TIME" and got["time"]["datetime"] == "2026-03-10T11:55:00.000Z"
    assert got["time"]["title"].startswith("Mar 10, 2026")  # the exact time, on hover
    assert got["time"]["text"] == got["time"]["expected"]  # relative to now, in the element
    assert got["errors"] == [
        "You are not signed in, or the sign-in was refused. (wrong login or password)",
        "Guest accounts have a limit here: register to keep going. "
        "(guests may make only 2 imports)",
        "Too many requests: wait a moment, then try again. (slow down · try again in 3 s)",
        "That was not accepted. (name is required; size must be positive)",
        "your lock on this row timed out",  # a panel's own code: its message says it all
        "Something went wrong in this page. (x is null)",
    ]


async def test_enter_submits_the_form_on_screen(open_console):
    """Bug 8: Enter in the register form signed in (and failed: no such account)."""
    page = await open_console("enter")
    email = unique_email("enter")
    await page.fill_credentials(email, PASSWORD, "enterer", register=True)
    await page.tid("auth-password").press("Enter")
    await page.signed_in("enterer")  # registered, as the name typed
    await page.sign_out()

    await page.fill_credentials(email, PASSWORD)  # Sign in mode: Enter signs in
    await page.tid("auth-password").press("Enter")
    await page.signed_in("enterer")
    await page.sign_out()

    # In Register mode, Enter from the username field too; and the mode's own errors.
    await page.fill_credentials(email, PASSWORD, "again", register=True)
    await page.tid("auth-username").press("Enter")
    await page.expect_error("auth-error", "conflict")
    await expect(page.tid("auth-user")).to_have_count(0)


async def test_the_guest_counter_follows_what_was_spent(open_console, tmp_path):
    """Bug 6: the counter said "2 imports left" after both were used and a third refused."""
    page = await open_console("guest")
    await page.guest()
    imports = page.tid("guest-imports-left")
    await expect(imports).to_have_text("2 imports left")
    await expect(page.tid("guest-messages-left")).to_have_text("20 AI messages left")
    await page.create_project("Guest tables")
    await page.open_project("Guest tables")

    async def import_csv(name: str) -> None:
        data = tmp_path / f"{name}.csv"
        data.write_text("a,b\n1,2\n3,4\n")
        if await page.tid("table-import-section").get_attribute("open") is None:
            await page.tid("table-import-toggle").click()
        await page.tid("table-import-file").set_input_files(str(data))
        await page.tid("table-import").click()

    await import_csv("first")
    await expect(page.tid("table-title")).to_have_text("first")
    await expect(imports).to_have_text("1 import left")
    await import_csv("second")
    await expect(page.tid("table-title")).to_have_text("second")
    await expect(imports).to_have_text("0 imports left")
    await import_csv("third")
    await page.expect_error("table-import-error", "forbidden", "sign up to continue")
    await expect(page.tid("table-import-error")).to_contain_text("Guest accounts have a limit")
    await expect(imports).to_have_attribute("data-remaining", "0")
    # The account page says the same, and so does a fresh page (from the server).
    await page.tid("auth-user").click()
    await page.shows("account")
    await expect(page.tid("auth-guest-limits")).to_contain_text("0 imports")
    await page.page.reload()
    await page.ready()
    await expect(page.tid("guest-imports-left")).to_have_text("0 imports left")


async def test_the_shell_views_fit_both_screens_and_pass_axe(open_console):
    page = await open_console("layout")
    await page.shows("signin")
    await page.check_layout("signin")
    await page.check_accessibility("signin")
    await page.tid("auth-mode-register").click()
    await page.check_accessibility("register")

    email = unique_email("layout")
    name = "rather_long_username_for_layout"  # 31: the longest allowed is 32
    await page.sign_up(email, username=name)
    long = "Project with a name long enough to need clipping on a phone screen, surely"
    await page.create_project(long, "A description that goes on " * 8)
    await page.create_project("Second")
    await page.shows("home")
    await page.check_layout("home")
    await page.check_accessibility("home")

    await page.tid("auth-user").click()
    await page.shows("account")
    await page.check_layout("account")
    await page.check_accessibility("account")

    await page.open_project(long, view="members")
    await page.check_layout("members")
    await page.check_accessibility("members")
    for view in ("files", "chat", "imports"):
        await page.view(view)
        await page.check_layout(f"{view}-empty")
        await page.check_accessibility(f"{view}-empty")

    await page.page.goto(f"{page.base_url}/#/p/gone/files")
    await expect(page.tid("project-unavailable")).to_be_visible()
    await page.check_layout("project-unavailable")
    await page.check_accessibility("project-unavailable")


async def test_admin_view_fits_and_passes_axe(open_console, server):
    from server.keys import services_of

    page = await open_console("root")
    await page.sign_up(unique_email("root"), username="root")
    store = services_of(server.app).store
    await store.users.update_user((await page.call("auth:me"))["id"], role="admin")
    await page.reopen()
    await page.tid("nav-admin").click()
    await page.shows("admin")
    await expect(page.tid("admin-users").locator("tr[data-user-id]")).not_to_have_count(0)
    await page.check_layout("admin")
    await page.check_accessibility("admin")
