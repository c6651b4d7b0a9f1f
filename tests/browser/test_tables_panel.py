"""The table panel end to end in headless Chromium: two users on one table with row locks
(who holds a row, edit → save → live value, a broken lock and a stale save), and CSV import
(bad lines reported, rows shown, sorting, export). The grid's own behaviours (filters,
virtual scrolling, history, keyboard, layout) are in test_grid.py."""
from __future__ import annotations

import re

from playwright.async_api import expect

from tests.client import unique_email

COLUMNS = [("user", "text", False), ("pnl", "number", False), ("active", "bool", False),
           ("API_key", "text", True)]


async def expect_message(page, testid: str, code: str, text: str | re.Pattern) -> None:
    """A message box shows a problem in words, its code kept on data-code (not in the text)."""
    box = page.tid(testid)
    await expect(box).to_have_attribute("data-code", code)
    await expect(box).to_contain_text(text)
    await expect(box).not_to_contain_text(f"{code}:")


async def test_row_lock_is_seen_by_the_other_user_and_saves_arrive_live(open_console):
    alice, bob = await open_console("alice"), await open_console("bob")
    bob_email = unique_email("bob")
    await alice.sign_up(unique_email("alice"), username="alice")
    await bob.sign_up(bob_email, username="bob")

    # Alice (owner) makes a project, a table and a row, and adds Bob as an editor.
    await alice.create_project("Ledger")
    await alice.open_project("Ledger")
    await alice.add_member(bob_email, "editor")
    await alice.create_table("brokers", COLUMNS)
    await alice.add_row({"user": "ana", "pnl": "12.5", "active": True,
                         "API_key": "sk-1234567890abcd"})
    row_a = alice.table_row("ana")
    await expect(alice.cell(row_a, "API_key")).to_have_text("sk-1234567890abcd")

    # Bob opens the project: the table is listed, its row shown, the secret masked for him.
    await bob.open_project("Ledger")
    await bob.open_table("brokers")
    row_b = bob.table_row("ana")
    await expect(bob.cell(row_b, "pnl")).to_have_text("12.5")
    await expect(bob.cell(row_b, "API_key")).to_have_text("••••abcd")

    # Alice starts editing a cell: she holds the lock; Bob sees who holds it and cannot
    # edit or delete the row.
    await alice.cell(row_a, "pnl").dblclick()
    editor_a = alice.cell(row_a, "pnl").get_by_test_id("row-input")
    await expect(row_a.get_by_test_id("row-lock")).to_contain_text("you")
    await expect(row_b).to_have_attribute("data-locked-by", "alice")
    await expect(row_b.get_by_test_id("row-lock")).to_contain_text("alice")
    await row_b.get_by_test_id("row-menu").click()
    await expect(bob.tid("row-edit")).to_have_attribute("aria-disabled", "true")
    await expect(bob.tid("row-edit")).to_contain_text("alice is editing")
    await expect(bob.tid("row-delete")).to_have_attribute("aria-disabled", "true")
    await bob.page.keyboard.press("Escape")
    # Writing around the lock from Bob's socket is refused with the holder's name.
    row_id = await row_b.get_attribute("data-row-id")
    table_id = await bob.tid("table-view").get_attribute("data-table-id")
    refused = await bob.page.evaluate(
        "([t, r]) => window.collab.call('row:lock', {tableId: t, rowId: r})"
        ".then(() => null, (e) => `${e.code}: ${e.message}`)", [table_id, row_id])
    assert refused == "locked: row is locked by alice"
    await bob.keep_screenshot("tables-locked-by-other")
    await alice.keep_screenshot("tables-editing")

    # Alice changes the value and saves: Bob sees the new value live and the row unlocked.
    await editor_a.fill("99")
    await editor_a.press("Enter")
    await expect(alice.tid("table-message")).to_have_text("Saved.")
    await expect(alice.cell(row_a, "pnl")).to_have_text("99")
    await expect(bob.cell(row_b, "pnl")).to_have_text("99")
    await expect(row_b).to_have_attribute("data-version", "2")
    await expect(row_b).to_have_attribute("data-locked-by", "")
    await expect(row_b.get_by_test_id("row-lock")).to_have_text("")

    # Now Bob can edit it, and Alice sees him holding it; his save reaches her.
    await bob.cell(row_b, "API_key").dblclick()
    # A masked secret is not prefilled (saving must not write the mask back).
    await expect(bob.cell(row_b, "API_key").get_by_test_id("row-input")).to_have_value("")
    await expect(row_a.get_by_test_id("row-lock")).to_contain_text("bob")
    await bob.page.keyboard.press("Tab")  # the last cell: Tab closes it, the lock goes back
    await expect(row_a.get_by_test_id("row-lock")).to_have_text("")
    await bob.cell(row_b, "active").dblclick()
    await bob.cell(row_b, "active").get_by_test_id("row-input").select_option("false")
    await bob.cell(row_b, "active").get_by_test_id("row-input").press("Enter")
    await expect(alice.cell(row_a, "active")).to_have_text("No")
    await expect(row_a).to_have_attribute("data-locked-by", "")
    await expect(alice.cell(row_a, "API_key")).to_have_text("sk-1234567890abcd")  # untouched

    # Bob edits again; Alice (owner) breaks his lock. Bob is told at once, his save is
    # refused as stale (conflict) with a reload offered, and the owner override starts his
    # cooldown (rate_limited) on that row.
    await bob.cell(row_b, "pnl").dblclick()
    editor_b = bob.cell(row_b, "pnl").get_by_test_id("row-input")
    await expect(row_a.get_by_test_id("row-lock")).to_contain_text("bob")
    await row_a.get_by_test_id("row-menu").click()
    await alice.tid("row-break-lock").click()
    await expect_message(bob, "table-message", "unlocked", "was broken by a project owner")
    await expect(row_b.get_by_test_id("row-lock")).to_contain_text("lock lost")
    await expect(bob.tid("table-reload")).to_be_visible()
    await editor_b.fill("7")
    await editor_b.press("Enter")
    await expect_message(bob, "table-message", "conflict", "Your lock on this row is gone")
    await bob.tid("table-reload").click()
    await expect(editor_b).to_have_count(0)
    await expect(bob.tid("table-message")).to_have_text("Reloaded: the rows are as they are now.")
    await expect(bob.cell(row_b, "pnl")).to_have_text("99")  # the refused write never landed
    await bob.cell(row_b, "pnl").dblclick()
    await expect_message(bob, "table-message", "rate_limited", "You can edit this row again in")
    await expect(row_b).to_have_attribute("data-locked-by", "")
    await expect(bob.cell(row_b, "pnl").get_by_test_id("row-input")).to_have_count(0)
    await bob.screenshot("/tmp/tables.png")
    await alice.keep_screenshot("tables-owner")
    assert alice.errors == [] and bob.errors == []


CSV = ("name,amount,joined\n"
       "Zoë,7,2024-03-04\n"
       '"Smith, Ana",12.5,2024-01-02\n'
       "broken line\n"
       "Łukasz,3,2023-12-31\n")


async def test_csv_import_reports_bad_lines_then_shows_sorts_and_exports(open_console, tmp_path):
    page = await open_console("carol")
    await page.sign_up(unique_email("carol"), username="carol")
    await page.create_project("Imports")
    await page.open_project("Imports")
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(CSV, encoding="utf-8")

    await page.tid("table-import-toggle").click()
    await page.tid("table-import-file").set_input_files(str(csv_file))
    await page.tid("table-import").click()
    await expect_message(page, "table-import-error", "bad_request", "wrong number of fields")
    await expect(page.tid("import-bad-line")).to_have_count(1)
    await expect(page.tid("import-bad-line")).to_have_text("line 4: 1 fields, expected 3")
    await expect(page.tid("table-empty")).to_be_visible()  # nothing half-imported

    await page.tid("table-import-skip").check()
    await page.tid("table-import").click()
    await expect(page.tid("table-import-error")).to_contain_text(
        "Imported 3 rows into “people”; skipped 1 bad row")
    await expect(page.tid("table-title")).to_have_text("people")
    await expect(page.tid("table-count")).to_have_text("3 rows")
    names = page.page.locator('[data-testid="cell"][data-column="name"]')
    await expect(names).to_have_text(["Zoë", "Smith, Ana", "Łukasz"])
    await expect(page.page.locator('th[data-column="amount"]')).to_contain_text("number")

    sort = page.page.locator('[data-testid="column-sort"][data-column="amount"]')
    await sort.click()
    await expect(names).to_have_text(["Łukasz", "Zoë", "Smith, Ana"])
    await expect(page.page.locator('th[data-column="amount"]')) \
        .to_have_attribute("aria-sort", "ascending")
    await sort.click()
    await expect(names).to_have_text(["Smith, Ana", "Zoë", "Łukasz"])
    await page.keep_screenshot("tables-import")

    async with page.page.expect_download() as info:
        await page.tid("table-export").click()
    download = await info.value
    assert download.suggested_filename == "people.csv"
    exported = (tmp_path / "export.csv")
    await download.save_as(exported)
    text = exported.read_text(encoding="utf-8")
    assert re.match(r"^\ufeff?name,amount,joined\r?\n", text)
    assert '"Smith, Ana",12.5,2024-01-02' in text and "Łukasz,3,2023-12-31" in text

    # A bigger table: all its rows are counted, a window of them is in the page, and the
    # last one is a scroll away.
    big = tmp_path / "numbers.csv"
    big.write_text("n\n" + "".join(f"{i}\n" for i in range(1, 121)), encoding="utf-8")
    await expect(page.tid("table-import-section")).to_have_attribute("open", "")  # still open
    await page.tid("table-import-file").set_input_files(str(big))
    await page.tid("table-import").click()
    await expect(page.tid("table-title")).to_have_text("numbers")
    await expect(page.tid("table-count")).to_have_text("120 rows")
    tables = page.page.locator('[data-panel="tables"]')
    await expect(tables.get_by_text("Load more")).to_have_count(0)
    scroller = page.tid("grid-scroll")
    await scroller.scroll_into_view_if_needed()
    await scroller.evaluate("(el) => { el.scrollTop = el.scrollHeight; }")
    last = page.table_row(re.compile(r"^120$"))
    await expect(last).to_be_in_viewport()
    assert await page.table_row().count() < 120
    await expect(page.table_item("people")).to_be_visible()
