"""The Tables grid in headless Chromium (panels/tables.js and panels/tables/*): two users side
by side on one table — who holds a row's lock shows in the pinned first column, a cell editor
takes the lock and leaving it gives it back, saved values arrive live — filters and sort,
virtual scrolling over 500 rows, row and table history with restore, rename, keyboard use,
formatted values, and the layout guards (no sideways page scroll at 1440 and 390 px with a
9-column table open; axe-core finds no serious or critical problem in the panel).

Data is seeded through python clients (``clients``); the people act through the console.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.browser.harness import PASSWORD
from tests.client import eventually, unique_email
from tests.files_helpers import upload

SCREENS = Path(__file__).parent / "screens"

NINE = [{"name": "user", "type": "text"}, {"name": "desk", "type": "text"},
        {"name": "region", "type": "text"}, {"name": "pnl", "type": "number"},
        {"name": "trades", "type": "number"}, {"name": "active", "type": "bool"},
        {"name": "opened", "type": "datetime"}, {"name": "notes", "type": "text"},
        {"name": "API_key", "type": "text", "secret": True}]
ANA = {"user": "ana", "desk": "Rates", "region": "EMEA", "pnl": 1234.5, "trades": 17,
       "active": True, "opened": "2024-03-04", "notes": "watch the long end of the curve "
       "after the auction, then rebalance", "API_key": "sk-1234567890abcd"}
BEN = {"user": "ben", "desk": "FX", "region": "APAC", "pnl": -20, "trades": 3,
       "active": False, "opened": "2023-11-30T16:45:00+00:00", "notes": None, "API_key": None}
CAROL = {"user": "carol", "desk": "Credit", "region": "AMER", "pnl": 310, "trades": 40,
         "active": True, "opened": "2024-01-15", "notes": "new desk", "API_key": None}


class Seeded:
    def __init__(self, alice, bob, alice_email, bob_email, project, table):
        self.alice, self.bob = alice, bob
        self.alice_email, self.bob_email = alice_email, bob_email
        self.project, self.table = project, table
        self.rows: dict[str, dict] = {}


async def seed(clients, rows=(ANA, BEN, CAROL), table="brokers") -> Seeded:
    """alice owns project Ledger with a 9-column table; bob is an editor."""
    alice, bob = await clients(name="alice-seed"), await clients(name="bob-seed")
    alice_email, bob_email = unique_email("alice"), unique_email("bob")
    await alice.register(alice_email, PASSWORD, username="alice")
    await bob.register(bob_email, PASSWORD, username="bob")
    project = await alice.ok("project:create", {"name": "Ledger"})
    await alice.ok("project:member:add", {"id": project["id"], "email": bob_email,
                                          "role": "editor"})
    made = await alice.ok("table:create", {"projectId": project["id"], "name": table,
                                           "columns": NINE})
    seeded = Seeded(alice, bob, alice_email, bob_email, project, made)
    for values in rows:
        row = await alice.ok("row:add", {"tableId": made["id"], "values": values})
        seeded.rows[values["user"]] = row
    return seeded


async def console_for(open_console, name: str, email: str, table: str = "brokers"):
    """A console signed in as ``name`` with project Ledger and ``table`` open."""
    page = await open_console(name)
    await page.sign_in(email)
    await page.open_project("Ledger")
    await page.open_table(table)
    return page


async def no_sideways_scroll(page) -> None:
    overflow = await page.sideways_overflow()
    assert overflow is None, f"the page scrolls sideways: {overflow}"


async def axe_problems(page, label: str = "grid") -> list:
    """axe-core over the Tables panel (the harness's check: fails on serious/critical)."""
    await page.check_accessibility(label, '[data-panel="tables"]')
    return []


async def shot(page, label: str) -> None:
    """The whole page, and the open table on its own (the part worth a look)."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    await page.page.screenshot(path=str(SCREENS / f"{label}.png"), full_page=True)
    view = page.tid("table-view")
    if await view.is_visible():
        await view.screenshot(path=str(SCREENS / f"{label}-table.png"))


def focused(page):
    return page.page.locator(":focus")


# -- two users side by side ---------------------------------------------------------------

async def test_two_users_see_each_others_locks_in_the_pinned_column_and_values_live(
        open_console, clients):
    s = await seed(clients)
    alice = await console_for(open_console, "alice", s.alice_email)
    bob = await console_for(open_console, "bob", s.bob_email)
    row_a, row_b = alice.table_row("ana"), bob.table_row("ana")

    # Values read as people write them: numbers and dates in the reader's locale (the
    # expectations below are en-US's, Chromium's default here).
    assert await alice.page.evaluate("navigator.language") == "en-US"
    await expect(alice.cell(row_a, "pnl")).to_have_text("1,234.5")
    await expect(alice.cell(row_a, "opened")).to_have_text("Mar 4, 2024")
    await expect(alice.cell(row_a, "opened")).to_have_attribute("title", "2024-03-04")
    await expect(alice.cell(row_a, "active")).to_have_text("Yes")
    await expect(alice.cell(alice.table_row("ben"), "notes")).to_have_text("—")
    await expect(alice.cell(row_a, "API_key")).to_have_text("sk-1234567890abcd")
    await expect(bob.cell(row_b, "API_key")).to_have_text("••••abcd")  # masked for bob

    # Alice opens the far-right notes cell: the lock is taken, and bob sees who holds it in
    # the pinned first column, on screen although the row is wider than the grid.
    await alice.cell(row_a, "notes").dblclick()
    editor = row_a.get_by_test_id("row-input")
    await expect(editor).to_be_focused()
    await expect(row_a.get_by_test_id("row-lock")).to_contain_text("you")
    lock_b = row_b.get_by_test_id("row-lock")
    await expect(lock_b).to_contain_text("alice")
    await expect(lock_b).to_be_in_viewport()
    await expect(row_b).to_have_attribute("data-locked-by", "alice")
    await shot(bob, "grid-locked-by-other")
    await shot(alice, "grid-editing")

    # Bob cannot edit that row: he is told who is editing it, in words.
    await bob.cell(row_b, "pnl").dblclick()
    message = bob.tid("table-message")
    await expect(message).to_have_attribute("data-code", "locked")
    await expect(message).to_have_text(
        "alice is editing this row right now; try again when they are done.")
    await expect(row_b.get_by_test_id("row-input")).to_have_count(0)
    # ...and a write around the console is refused by the server with the holder's name.
    refused = await bob.page.evaluate(
        "([t, r]) => window.collab.call('row:lock', {tableId: t, rowId: r})"
        ".then(() => null, (e) => `${e.code}: ${e.message}`)",
        [s.table["id"], s.rows["ana"]["id"]])
    assert refused == "locked: row is locked by alice"

    # Leaving the cell (focus elsewhere) releases the lock.
    await alice.tid("table-title").click()
    await expect(editor).to_have_count(0)
    await expect(lock_b).to_have_text("")
    await expect(row_b).to_have_attribute("data-locked-by", "")

    # An edit: the lock again, the value typed, Enter saves; bob sees the value and the
    # row unlocked, with its new version.
    await alice.cell(row_a, "pnl").dblclick()
    await expect(lock_b).to_contain_text("alice")
    editor = alice.cell(row_a, "pnl").get_by_test_id("row-input")
    await editor.fill("99")
    await editor.press("Enter")
    await expect(alice.tid("table-message")).to_have_text("Saved.")
    await expect(alice.cell(row_a, "pnl")).to_have_text("99")
    await expect(bob.cell(row_b, "pnl")).to_have_text("99")
    await expect(row_b).to_have_attribute("data-version", "2")
    await expect(lock_b).to_have_text("")

    # Bob edits the secret he cannot read: it is not prefilled (the mask is never written
    # back); Escape gives the row back without a change.
    await bob.cell(row_b, "API_key").dblclick()
    secret = bob.cell(row_b, "API_key").get_by_test_id("row-input")
    await expect(secret).to_have_value("")
    await expect(secret).to_have_attribute("placeholder", re.compile("hidden"))
    await expect(row_a.get_by_test_id("row-lock")).to_contain_text("bob")
    await secret.press("Escape")
    await expect(row_a.get_by_test_id("row-lock")).to_have_text("")
    await expect(bob.cell(row_b, "API_key")).to_have_text("••••abcd")
    await expect(row_b).to_have_attribute("data-version", "2")

    # A bool cell edits with a select; bob's change reaches alice.
    await bob.cell(row_b, "active").dblclick()
    await bob.cell(row_b, "active").get_by_test_id("row-input").select_option("false")
    await bob.cell(row_b, "active").get_by_test_id("row-input").press("Enter")
    await expect(alice.cell(row_a, "active")).to_have_text("No")
    await expect(alice.cell(row_a, "API_key")).to_have_text("sk-1234567890abcd")  # untouched

    # A row added elsewhere appears for both, in place.
    await s.alice.ok("row:add", {"tableId": s.table["id"], "values": {"user": "dora"}})
    await expect(alice.table_row("dora")).to_have_count(1)
    await expect(bob.table_row("dora")).to_have_count(1)
    await expect(bob.tid("table-count")).to_have_text("4 rows")
    assert alice.errors == [] and bob.errors == []


@pytest.mark.server_settings(lock_edit_timeout_s=2)
async def test_heartbeats_keep_the_lock_of_an_open_editor(open_console, clients):
    s = await seed(clients, rows=(ANA,))
    await s.bob.ok("project:join", {"id": s.project["id"]})  # bob's socket hears the room
    alice = await console_for(open_console, "alice", s.alice_email)
    row = alice.table_row("ana")
    await alice.cell(row, "desk").dblclick()
    await expect(row.get_by_test_id("row-lock")).to_contain_text("you")

    async def deadline():
        info = await s.bob.ok("table:get", {"tableId": s.table["id"]})
        return info["locks"][0]["expiresAt"] if info["locks"] else None

    first = await deadline()
    assert first is not None
    # Without heartbeats the lock would end 2 s after it was taken; it is still alice's
    # once its deadline has moved more than 2 s past the first one (so that much time has
    # gone by while the editor stayed open).
    def parse(iso):
        return datetime.fromisoformat(iso.replace("Z", "+00:00"))

    async def moved_on():
        now = await deadline()
        return now and parse(now) > parse(first) + timedelta(seconds=2)

    await eventually(moved_on, timeout=15)
    await expect(row.get_by_test_id("row-lock")).to_contain_text("you")
    assert s.bob.pushes.get("row:unlocked", []) == []
    await row.get_by_test_id("row-input").press("Escape")
    await s.bob.wait_for("row:unlocked", lambda d: d["reason"] == "released")


# -- filters and sort ---------------------------------------------------------------------

async def test_filters_and_sort_narrow_and_order_the_rows_and_follow_live_changes(
        open_console, clients):
    s = await seed(clients)
    alice = await console_for(open_console, "alice", s.alice_email)
    users = alice.page.locator('[data-testid="cell"][data-column="user"]')
    await expect(users).to_have_text(["ana", "ben", "carol"])

    # pnl > 0: ana and carol; the count says how many of all match.
    await alice.tid("filter-toggle").click()
    await alice.tid("filter-column").select_option("pnl")
    await alice.tid("filter-op").select_option("gt")
    await alice.tid("filter-value").fill("0")
    await alice.tid("filter-add").click()
    await expect(alice.tid("filter-chip")).to_have_text(["pnl > 0×"])
    await expect(users).to_have_text(["ana", "carol"])
    await expect(alice.tid("table-count")).to_have_text("2 of 3 rows")

    # and the desk contains "re" (case-insensitive): Credit and Rates both... only those > 0.
    await alice.tid("filter-column").select_option("desk")
    await alice.tid("filter-op").select_option("contains")
    await alice.tid("filter-value").fill("RE")
    await alice.tid("filter-add").click()
    await expect(alice.tid("filter-chip")).to_have_count(2)
    await expect(users).to_have_text(["carol"])

    # A live change: ana's desk moves to "Repo" (matches now), a new row that does not match.
    await s.bob.ok("row:update", {"tableId": s.table["id"], "rowId": s.rows["ana"]["id"],
                                  "version": 1, "values": {"desk": "Repo"}})
    await expect(users).to_have_text(["ana", "carol"])
    await s.bob.ok("row:add", {"tableId": s.table["id"], "values": {"user": "eve", "pnl": -1,
                                                                  "desk": "Rec"}})
    await expect(alice.tid("table-count")).to_have_text("2 of 4 rows")
    await expect(users).to_have_text(["ana", "carol"])

    # Nothing matches: the empty state says so and offers to clear the filters.
    await alice.tid("filter-column").select_option("user")
    await alice.tid("filter-op").select_option("eq")
    await alice.tid("filter-value").fill("nobody")
    await alice.tid("filter-add").click()
    await expect(alice.tid("rows-empty")).to_have_text("No rows match these filters.")
    await alice.tid("filters-clear").click()
    await expect(alice.tid("filter-chip")).to_have_count(0)
    await expect(users).to_have_text(["ana", "ben", "carol", "eve"])

    # Sort from the bar, then from a header (ascending, descending, off).
    await alice.tid("sort-column").select_option("trades")
    await expect(users).to_have_text(["eve", "ben", "ana", "carol"])  # null trades first
    await alice.tid("sort-order").select_option("desc")
    await expect(users).to_have_text(["carol", "ana", "ben", "eve"])
    header = alice.page.locator('[data-testid="column-sort"][data-column="pnl"]')
    await header.click()
    await expect(alice.page.locator('th[data-column="pnl"]')).to_have_attribute(
        "aria-sort", "ascending")
    await expect(alice.tid("sort-column")).to_have_value("pnl")
    await expect(users).to_have_text(["ben", "eve", "carol", "ana"])
    await header.click()
    await expect(users).to_have_text(["ana", "carol", "eve", "ben"])
    # A row added while sorted lands where the server would put it.
    await s.bob.ok("row:add", {"tableId": s.table["id"], "values": {"user": "fay", "pnl": 500}})
    await expect(users).to_have_text(["ana", "fay", "carol", "eve", "ben"])
    await header.click()
    await expect(alice.page.locator('th[data-column="pnl"]')).not_to_have_attribute(
        "aria-sort", re.compile("."))
    await expect(users).to_have_text(["ana", "ben", "carol", "eve", "fay"])
    # Secret columns can be neither sorted nor filtered.
    await expect(alice.page.locator('[data-testid="column-sort"][data-column="API_key"]')) \
        .to_have_count(0)
    await expect(alice.tid("sort-column").locator("option[value=API_key]")).to_have_count(0)
    assert alice.errors == []


# -- virtual scrolling ----------------------------------------------------------------------

async def test_virtual_scrolling_over_500_rows_keeps_few_rows_in_the_page(
        open_console, clients, server):
    s = await seed(clients, rows=())
    csv = "n,name,amount\n" + "".join(f"{i},person {i},{i * 1.5}\n" for i in range(1, 501))
    status, body = await upload(server.url, s.alice.tokens["accessToken"], s.project["id"],
                                csv.encode(), "many.csv")
    assert status == 201, body
    imported = await s.alice.ok("table:import", {"projectId": s.project["id"],
                                                 "fileId": body["data"]["id"]})
    alice = await console_for(open_console, "alice", s.alice_email, table="many")

    await expect(alice.tid("table-count")).to_have_text("500 rows")
    grid = alice.tid("table-grid")
    await expect(grid).to_have_attribute("aria-rowcount", "501")
    rows = alice.table_row()
    first = alice.table_row(re.compile(r"^person 1$"))
    await expect(first).to_have_count(1)
    assert 0 < await rows.count() < 80
    tables = alice.page.locator('[data-panel="tables"]')
    await expect(tables.get_by_text("Load more")).to_have_count(0)

    # Scrolling to the end brings the last rows (pages load as they are needed); the DOM
    # still holds only a window of rows.
    scroller = alice.tid("grid-scroll")
    await scroller.scroll_into_view_if_needed()
    await scroller.evaluate("(el) => { el.scrollTop = el.scrollHeight; }")
    last = alice.table_row("person 500")
    await expect(last).to_be_in_viewport()
    await expect(last).to_have_attribute("aria-rowindex", "501")
    assert await rows.count() < 80
    await expect(first).to_have_count(0)
    await shot(alice, "grid-500-rows-end")

    # Back to the top by keyboard: Ctrl+Home in the grid; Ctrl+End goes to the last row.
    await alice.cell(last, "name").click()
    await alice.page.keyboard.press("Control+Home")
    await expect(focused(alice)).to_have_attribute("data-testid", "row-pin")
    await expect(first).to_be_in_viewport()
    await alice.page.keyboard.press("Control+End")
    await expect(focused(alice)).to_have_attribute("data-column", "amount")
    await expect(focused(alice)).to_have_text("750")
    await expect(last).to_be_in_viewport()

    # Sorting pages through the server's order too.
    await alice.page.locator('[data-testid="column-sort"][data-column="n"]').click()
    await alice.page.locator('[data-testid="column-sort"][data-column="n"]').click()
    await expect(alice.page.locator('th[data-column="n"]')).to_have_attribute(
        "aria-sort", "descending")
    await expect(rows.first.locator('[data-testid="cell"][data-column="n"]')).to_have_text("500")
    await scroller.evaluate("(el) => { el.scrollTop = el.scrollHeight; }")
    await expect(first).to_be_in_viewport()

    # Live: a row added elsewhere counts, and lands first in this order.
    await s.bob.ok("row:add", {"tableId": imported["table"]["id"],
                               "values": {"n": 501, "name": "person 501"}})
    await expect(alice.tid("table-count")).to_have_text("501 rows")
    await scroller.evaluate("(el) => { el.scrollTop = 0; }")
    await expect(rows.first.locator('[data-testid="cell"][data-column="n"]')).to_have_text("501")
    assert alice.errors == []


# -- history and restore --------------------------------------------------------------------

async def test_row_and_table_history_with_restore(open_console, clients):
    s = await seed(clients, rows=(ANA, BEN))
    alice = await console_for(open_console, "alice", s.alice_email)
    bob = await console_for(open_console, "bob", s.bob_email)
    row_a, row_b = alice.table_row("ana"), bob.table_row("ana")

    for value in ("10", "20"):
        await alice.cell(row_a, "pnl").dblclick()
        editor = alice.cell(row_a, "pnl").get_by_test_id("row-input")
        await editor.fill(value)
        await editor.press("Enter")
        await expect(bob.cell(row_b, "pnl")).to_have_text(value)

    # Row history: three versions, newest first, with who and what changed.
    await row_a.get_by_test_id("row-menu").click()
    await alice.tid("row-history-open").click()
    dialog = alice.tid("row-history")
    await expect(dialog).to_be_visible()
    items = dialog.get_by_test_id("history-item")
    await expect(items).to_have_count(3)
    await expect(items.nth(0)).to_contain_text("Version 3 · edited by you")
    await expect(items.nth(0)).to_contain_text("pnl: 10 → 20")
    await expect(items.nth(2)).to_contain_text("Version 1 · added by you")
    await expect(items.nth(0).get_by_test_id("history-restore")).to_have_count(0)  # current
    await items.nth(2).get_by_test_id("history-restore").click()
    await expect(alice.tid("row-history-message")).to_contain_text("Restored version 1")
    await expect(items).to_have_count(4)
    await expect(items.nth(0)).to_contain_text("Version 4 · restored by you")
    await expect(alice.cell(row_a, "pnl")).to_have_text("1,234.5")
    await expect(bob.cell(row_b, "pnl")).to_have_text("1,234.5")
    assert await axe_problems(alice) == []
    await shot(alice, "grid-row-history")
    await alice.tid("row-history-close").click()
    await expect(dialog).to_be_hidden()

    # Bob deletes ben (with a confirmation); alice sees it go.
    await bob.table_row("ben").get_by_test_id("row-menu").click()
    await bob.tid("row-delete").click()
    await expect(bob.tid("row-delete-dialog")).to_be_visible()
    await bob.tid("row-delete-confirm").click()
    await expect(alice.table_row("ben")).to_have_count(0)
    await expect(alice.tid("table-count")).to_have_text("1 row")

    # Table history: newest first; the deleted row comes back from it.
    await alice.tid("table-history-open").click()
    history = alice.tid("table-history")
    entries = history.get_by_test_id("history-item")
    await expect(entries.first).to_contain_text("bob deleted row “ben”")
    assert await axe_problems(alice) == []
    await shot(alice, "grid-table-history")
    await entries.first.get_by_test_id("row-undelete").click()
    await expect(alice.tid("table-history-message")).to_contain_text("Restored row “ben”")
    await expect(alice.table_row("ben")).to_have_count(1)
    await expect(bob.table_row("ben")).to_have_count(1)

    # The whole table back as it was right after ben was first added: ana's edits undone
    # (as new changes), ben kept.
    added_ben = history.locator('[data-testid="history-item"][data-op="add"]',
                                has_text="row “ben”")
    await added_ben.get_by_test_id("table-restore").click()
    await added_ben.get_by_test_id("table-restore-confirm").click()
    await expect(alice.tid("table-history-message")).to_contain_text("Restored the table")
    await expect(entries.first).to_contain_text("restored")
    await alice.tid("table-history-close").click()
    await expect(alice.cell(row_a, "pnl")).to_have_text("1,234.5")
    await expect(bob.tid("table-count")).to_have_text("2 rows")
    assert alice.errors == [] and bob.errors == []


# -- rename ---------------------------------------------------------------------------------

async def test_rename_is_seen_by_the_other_user(open_console, clients):
    s = await seed(clients, rows=(ANA,))
    alice = await console_for(open_console, "alice", s.alice_email)
    bob = await console_for(open_console, "bob", s.bob_email)

    await alice.tid("table-rename").click()
    await expect(alice.tid("table-rename-input")).to_be_focused()
    await alice.tid("table-rename-input").fill("ignored")
    await alice.tid("table-rename-input").press("Escape")  # cancels
    await expect(alice.tid("table-title")).to_have_text("brokers")

    await alice.tid("table-rename").click()
    await alice.tid("table-rename-input").fill("desks 2024")
    await alice.tid("table-rename-input").press("Enter")
    await expect(alice.tid("table-title")).to_have_text("desks 2024")
    await expect(alice.tid("table-message")).to_have_text("Renamed the table to “desks 2024”.")
    await expect(bob.tid("table-title")).to_have_text("desks 2024")
    await expect(bob.table_item("desks 2024")).to_be_visible()
    await expect(bob.table_item("brokers")).to_have_count(0)

    # A table made elsewhere is listed for both at once.
    await s.alice.ok("table:create", {"projectId": s.project["id"], "name": "limits",
                                      "columns": [{"name": "desk"}]})
    await expect(alice.table_item("limits")).to_be_visible()
    await expect(bob.table_item("limits")).to_be_visible()
    await expect(bob.tid("table-title")).to_have_text("desks 2024")  # still on his table

    # A name the server refuses is said in words, the form kept.
    await alice.tid("table-rename").click()
    await alice.tid("table-rename-input").fill("x" * 100)
    await alice.tid("table-rename-input").evaluate("(el) => { el.maxLength = 200; }")
    await alice.tid("table-rename-input").fill("x" * 101)
    await alice.tid("table-rename-save").click()
    await expect(alice.tid("table-rename-error")).to_have_attribute("data-code", "bad_request")
    await expect(alice.tid("table-rename-error")).not_to_contain_text("bad_request")
    assert alice.errors == [] and bob.errors == []


# -- keyboard -------------------------------------------------------------------------------

async def test_every_grid_action_works_from_the_keyboard(open_console, clients):
    s = await seed(clients)
    alice = await console_for(open_console, "alice", s.alice_email)
    bob = await console_for(open_console, "bob", s.bob_email)
    kb = alice.page.keyboard
    row_b = bob.table_row("ben")

    # One tab stop: the grid's active cell (the first cell of the first row).
    await alice.cell(alice.table_row("ana"), "user").click()
    await expect(focused(alice)).to_have_attribute("data-column", "user")
    await kb.press("ArrowDown")
    await expect(focused(alice)).to_have_text("ben")
    await kb.press("ArrowRight")
    await kb.press("ArrowRight")
    await kb.press("ArrowRight")
    await expect(focused(alice)).to_have_attribute("data-column", "pnl")
    await kb.press("ArrowUp")
    await kb.press("ArrowUp")
    await expect(focused(alice)).to_have_attribute("data-column", "pnl")  # the header
    await expect(focused(alice)).to_have_attribute("data-testid", "column-sort")
    await kb.press("ArrowDown")
    await kb.press("ArrowDown")

    # Enter edits (the lock is taken), Tab saves and moves to the next cell of the row with
    # the lock kept, Escape drops the open cell and gives the lock back.
    await kb.press("Enter")
    editor = focused(alice)
    await expect(editor).to_have_attribute("data-testid", "row-input")
    await expect(row_b.get_by_test_id("row-lock")).to_contain_text("alice")
    await kb.press("Control+a")
    await kb.type("-25")
    await kb.press("Tab")
    await expect(focused(alice)).to_have_attribute("data-column", "trades")
    await expect(focused(alice)).to_have_attribute("data-testid", "row-input")
    await expect(bob.cell(row_b, "pnl")).to_have_text("-25")
    await expect(row_b.get_by_test_id("row-lock")).to_contain_text("alice")
    await kb.press("Escape")
    await expect(focused(alice)).to_have_attribute("data-testid", "cell")
    await expect(focused(alice)).to_have_attribute("data-column", "trades")
    await expect(row_b.get_by_test_id("row-lock")).to_have_text("")

    # Typing on a cell starts editing with that character; Enter saves.
    await kb.press("7")
    await expect(focused(alice)).to_have_value("7")
    await kb.press("Enter")
    await expect(bob.cell(row_b, "trades")).to_have_text("7")
    await expect(focused(alice)).to_have_attribute("data-column", "trades")
    # A value the column cannot take is refused with a sentence, and the editor stays.
    await kb.press("ArrowRight")
    await kb.press("ArrowRight")  # opened (datetime)
    await kb.press("Enter")
    await kb.press("Control+a")
    await kb.type("not a date")
    await kb.press("Enter")
    await expect(alice.tid("table-message")).to_have_attribute("data-code", "bad_request")
    await expect(alice.tid("table-message")).to_have_text(
        "Column 'opened' takes a date or date-time value.")
    await kb.press("Escape")
    await expect(row_b.get_by_test_id("row-lock")).to_have_text("")

    # Home: the pinned column; Enter opens the row's actions, arrows move, Escape closes.
    await kb.press("Home")
    await expect(focused(alice)).to_have_attribute("data-testid", "row-pin")
    await kb.press("Enter")
    await expect(focused(alice)).to_have_attribute("data-testid", "row-edit")
    await kb.press("ArrowDown")
    await expect(focused(alice)).to_have_attribute("data-testid", "row-history-open")
    await kb.press("Escape")
    await expect(alice.tid("row-menu-items")).to_be_hidden()
    await expect(focused(alice)).to_have_attribute("data-testid", "row-pin")
    # The history dialog from the keyboard, and Escape back to the grid.
    await kb.press("Enter")
    await kb.press("ArrowDown")
    await kb.press("Enter")
    await expect(alice.tid("row-history")).to_be_visible()
    await expect(alice.tid("row-history").get_by_test_id("history-item")).to_have_count(3)
    await kb.press("Escape")
    await expect(alice.tid("row-history")).to_be_hidden()
    await expect(focused(alice)).to_have_attribute("data-testid", "row-pin")
    # Delete from the keyboard, confirmed in the dialog.
    await kb.press("Enter")
    await kb.press("End")
    await expect(focused(alice)).to_have_attribute("data-testid", "row-delete")
    await kb.press("Enter")
    await expect(focused(alice)).to_have_attribute("data-testid", "row-delete-confirm")
    await kb.press("Enter")
    await expect(bob.table_row("ben")).to_have_count(0)

    # Tab leaves the grid (one tab stop), Shift+Tab comes back to the same cell.
    await alice.cell(alice.table_row("carol"), "desk").click()
    await kb.press("Tab")
    await expect(focused(alice)).not_to_have_attribute("data-testid", re.compile("cell|row-pin"))
    await kb.press("Shift+Tab")
    await expect(focused(alice)).to_have_text("Credit")
    assert alice.errors == [] and bob.errors == []


# -- layout guards and accessibility ----------------------------------------------------------

SIZES = ((1440, 900, "desktop"), (390, 844, "mobile"))


async def test_layout_at_1440_and_390_px_and_axe(open_console, clients):
    s = await seed(clients)
    alice = await console_for(open_console, "alice", s.alice_email)
    for width, height, label in SIZES:
        await alice.page.set_viewport_size({"width": width, "height": height})
        row = alice.table_row("ana")
        await alice.tid("table-grid").scroll_into_view_if_needed()
        await expect(row.get_by_test_id("row-menu")).to_be_in_viewport()
        await no_sideways_scroll(alice)
        assert await axe_problems(alice) == []
        await shot(alice, f"grid-{label}")

        # Editing the last column keeps the editor and the row's lock status on screen.
        await alice.cell(row, "API_key").dblclick()
        editor = alice.cell(row, "API_key").get_by_test_id("row-input")
        await expect(editor).to_be_in_viewport()
        await expect(row.get_by_test_id("row-lock")).to_be_in_viewport()
        await no_sideways_scroll(alice)
        await editor.press("Escape")

        # The row menu and the filter form fit too.
        await row.get_by_test_id("row-menu").click()
        await expect(alice.tid("row-menu-items")).to_be_in_viewport()
        await no_sideways_scroll(alice)
        assert await axe_problems(alice) == []
        await row.get_by_test_id("row-menu").click()  # the ⋯ button toggles its menu
        await expect(alice.tid("row-menu-items")).to_be_hidden()
        await alice.tid("filter-toggle").click()
        await expect(alice.tid("filter-form")).to_be_visible()
        await no_sideways_scroll(alice)
        assert await axe_problems(alice) == []
        await shot(alice, f"grid-{label}-filter")
        await alice.tid("filter-toggle").click()
    assert alice.errors == []


async def test_empty_table_and_a_table_deleted_while_open(open_console, clients):
    s = await seed(clients, rows=())
    alice = await console_for(open_console, "alice", s.alice_email)
    await expect(alice.tid("rows-empty")).to_have_text("No rows yet: add one below.")
    await expect(alice.tid("table-count")).to_have_text("0 rows")
    await alice.add_row({"user": "zed", "pnl": "5", "active": True})
    await expect(alice.tid("rows-empty")).to_be_hidden()
    await expect(alice.tid("table-count")).to_have_text("1 row")

    await s.alice.ok("table:delete", {"tableId": s.table["id"]})
    await expect(alice.tid("table-view")).to_be_hidden()
    await expect(alice.tid("table-list-message")).to_have_text(
        "The table “brokers” was deleted.")
    await expect(alice.table_item("brokers")).to_have_count(0)
    assert alice.errors == []


# -- reconnecting -----------------------------------------------------------------------------

@pytest.mark.server_settings(replay_max_events=2)
async def test_after_a_reconnect_the_grid_catches_up_and_the_editor_keeps_its_lock(
        open_console, clients):
    s = await seed(clients)
    alice = await console_for(open_console, "alice", s.alice_email)
    bob = await console_for(open_console, "bob", s.bob_email)
    await bob.cell(bob.table_row("ben"), "desk").dblclick()
    lock_seen_by_alice = alice.table_row("ben").get_by_test_id("row-lock")
    await expect(lock_seen_by_alice).to_contain_text("bob")

    # Bob's connection drops and stays down while more changes happen than the server keeps
    # for replay (REPLAY_MAX_EVENTS=2): his console must reload what the grid shows.
    await bob.page.evaluate("""() => {
        window.__resync = [];
        window.collab.bus.on('resync', (r) => window.__resync.push(r.room));
        const io = window.collab.socket.io;
        io.reconnection(false);
        io.engine.close();
    }""")
    await expect(bob.tid("conn-status")).to_have_attribute("data-state", "offline")
    for name in ("dora", "eli", "fay"):
        await s.alice.ok("row:add", {"tableId": s.table["id"], "values": {"user": name}})
    await s.alice.ok("row:update", {"tableId": s.table["id"], "rowId": s.rows["ana"]["id"],
                                    "version": 1, "values": {"pnl": 1}})
    await bob.page.evaluate("""() => {
        window.collab.socket.io.reconnection(true);
        window.collab.socket.connect();
    }""")
    await expect(bob.tid("conn-status")).to_have_attribute("data-state", "online")
    await expect(bob.tid("table-count")).to_have_text("6 rows")
    await expect(bob.table_row("fay")).to_have_count(1)
    await expect(bob.cell(bob.table_row("ana"), "pnl")).to_have_text("1")
    assert f"project:{s.project['id']}" in await bob.page.evaluate("window.__resync")

    # The open editor survived, and its lock with it (reclaimed within the grace period).
    editor = bob.cell(bob.table_row("ben"), "desk").get_by_test_id("row-input")
    await expect(editor).to_be_focused()
    await expect(lock_seen_by_alice).to_contain_text("bob")
    await editor.fill("Macro")
    await editor.press("Enter")
    await expect(alice.cell(alice.table_row("ben"), "desk")).to_have_text("Macro")
    await expect(lock_seen_by_alice).to_have_text("")
    assert alice.errors == [] and bob.errors == []
