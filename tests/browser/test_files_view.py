"""The Files view in Chromium: upload, the list in human sizes and times (live for the other
members), download, and delete after a confirmation — with the keyboard — seen by everyone."""
from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import expect

from tests.client import unique_email


async def test_upload_list_download_and_delete(open_console, tmp_path):
    alice, bob = await open_console("alice"), await open_console("bob")
    bob_email = unique_email("bob")
    await alice.sign_up(unique_email("alice"), username="alice")
    await bob.sign_up(bob_email, username="bob")
    await alice.create_project("Archive")
    await alice.open_project("Archive")
    await alice.add_member(bob_email, "viewer")
    await alice.view("files")
    await expect(alice.tid("files-empty")).to_be_visible()
    await alice.check_layout("files-none")
    await bob.open_project("Archive", view="files")
    await expect(bob.tid("files-empty")).to_be_visible()
    await expect(bob.tid("files-upload")).to_be_hidden()  # viewers read

    notes = tmp_path / "meeting notes with a name long enough to be clipped on a phone.txt"
    notes.write_bytes(b"n" * 1536)
    small = tmp_path / "tiny.csv"
    small.write_bytes(b"a,b\n1,2\n")
    await alice.tid("files-upload").set_input_files([str(notes), str(small)])
    rows = alice.tid("file-row")
    await expect(rows).to_have_count(2)
    row = alice.page.locator(f"[data-testid=file-row][data-file-name='{notes.name}']")
    await expect(row.get_by_test_id("file-size")).to_have_text("1.5 KiB")
    await expect(row.get_by_test_id("file-size")).to_have_attribute("title", "1,536 bytes")
    when = row.get_by_test_id("file-time").locator("time")
    await expect(when).to_have_text("just now")
    await expect(when).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT.*Z$"))
    await expect(when).to_have_attribute("title", re.compile(r"\d{4}, \d"))  # the exact time
    await expect(row).to_contain_text("alice")  # who uploaded it
    await expect(alice.tid("files-count")).to_have_text("2 files, 1.5 KiB")

    # Bob sees them arrive (file:added), and may download but not delete.
    bob_rows = bob.tid("file-row")
    await expect(bob_rows).to_have_count(2)
    await expect(bob.tid("file-delete")).to_have_count(0)
    async with bob.page.expect_download() as download:
        await bob.page.locator("[data-testid=file-row][data-file-name='tiny.csv']") \
            .get_by_test_id("file-download").click()
    got = await download.value
    assert got.suggested_filename == "tiny.csv"
    assert Path(await got.path()).read_bytes() == b"a,b\n1,2\n"

    await alice.check_layout("files")
    await alice.check_accessibility("files")

    # Delete with the keyboard: Enter asks, Cancel keeps it, Enter on Delete deletes it.
    await row.get_by_test_id("file-delete").focus()
    await alice.page.keyboard.press("Enter")
    await expect(row.get_by_test_id("file-delete-confirm")).to_be_focused()
    await row.get_by_test_id("file-delete-cancel").click()
    await expect(row.get_by_test_id("file-delete")).to_be_focused()
    await alice.page.keyboard.press("Enter")
    await alice.page.keyboard.press("Enter")
    await expect(rows).to_have_count(1)
    await expect(alice.tid("files-error")).to_contain_text(f"Deleted “{notes.name}”.")
    await expect(bob_rows).to_have_count(1)  # file:deleted reached Bob
    await expect(bob.page.locator(f"[data-file-name='{notes.name}']")).to_have_count(0)

    await alice.page.locator("[data-testid=file-row]").get_by_test_id("file-delete").click()
    await alice.tid("file-delete-confirm").click()
    await expect(alice.tid("files-empty")).to_be_visible()
    await expect(bob.tid("files-empty")).to_be_visible()
