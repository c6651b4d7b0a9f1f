"""The imported-chats panel in headless Chromium: upload a WhatsApp export (Android format,
made here), import it in a chosen time zone with live progress, read it page by page and by
author, search "zoe" (diacritics-insensitive) with the hit highlighted and the rest shown as
text, open the hit in its chat, rename, export (download and a Bearer fetch) and delete; and a
file that is no chat fails with the server's reason."""
from __future__ import annotations

import json

import aiohttp
from playwright.async_api import expect

from tests.client import unique_email

FILLER = 2500  # more than one parser batch (2,000), so progress arrives before the end


def whatsapp_export() -> str:
    lines = [
        "12/03/2024, 09:15 - Messages and calls are end-to-end encrypted. No one outside of "
        "this chat, not even WhatsApp, can read or listen to them. Tap to learn more.",
        "12/03/2024, 09:16 - Ana: Good morning team",
        "12/03/2024, 09:17 - Zoë: Morning! Here is the plan:",
        "1. coffee",
        "2. code",
        "12/03/2024, 09:18 - Ben: <Media omitted>",
    ]
    for i in range(FILLER):  # 13/03 00:00 onwards, one a minute
        day, minute = 13 + i // 1440, i % 1440
        who = "Ana" if i % 2 == 0 else "Ben"
        lines.append(f"{day:02d}/03/2024, {minute // 60:02d}:{minute % 60:02d} - {who}: "
                     f"status update number {i + 1}")
    lines.append("20/03/2024, 18:00 - Ana: Thanks Zoë <b>really</b> & good night")
    return "\n".join(lines) + "\n"


MESSAGES = 3 + FILLER + 1  # kind "message" (the media one included)
LINES = MESSAGES + 1  # and the encryption notice (system)


async def test_import_browse_search_export_rename_delete(open_console, server, tmp_path):
    alice = await open_console("alice")
    await alice.sign_up(unique_email("alice"), username="alice")
    await alice.create_project("Histories")
    await alice.open_project("Histories", view="imports")
    await expect(alice.tid("imports-panel")).to_be_visible()
    await expect(alice.tid("imports-empty")).to_be_visible()

    export = tmp_path / "WhatsApp Chat with Team Alpha.txt"
    export.write_text(whatsapp_export(), encoding="utf-8")
    # Watch the progress pushes this tab receives (the bar only shows the latest). The
    # expression ends in 0: Playwright would call a function it evaluates to (the unsubscribe).
    await alice.page.evaluate(
        "window.seen = []; window.collab.on('chat:import:progress', (d) => seen.push(d)); 0")
    await alice.tid("imports-file").set_input_files(str(export))
    await alice.tid("imports-timezone").fill("Europe/Paris")
    await alice.tid("imports-start").click()

    bar = alice.tid("imports-progress")
    await expect(bar).to_have_attribute("data-phase", "done", timeout=30_000)
    await expect(bar).to_have_attribute("data-percent", "100")
    await expect(alice.tid("imports-progress-text")).to_have_text(f"done · {MESSAGES:,} messages")
    await expect(alice.tid("imports-import-error")).to_have_text(
        "Imported 1 chat: “Team Alpha”.")
    seen = await alice.page.evaluate("window.seen")
    assert seen and seen[-1]["percent"] == 100 and seen[-1]["messages"] >= MESSAGES, seen
    assert any(p["percent"] < 100 for p in seen), seen  # progress before the end
    assert all({"rate", "etaSeconds"} <= p.keys() for p in seen)

    # The chat is listed with its participants and counts, and opens by itself.
    item = alice.page.locator('[data-testid="imports-chat-item"][data-chat-name="Team Alpha"]')
    await expect(item).to_be_visible()
    await expect(item.get_by_test_id("imports-chat-counts")).to_contain_text(
        f"{MESSAGES:,} messages · 3 participants")
    await expect(item.get_by_test_id("imports-chat-participants")).to_have_text(
        "Ana (1,252), Ben (1,251), Zoë (1)")
    await item.get_by_test_id("imports-chat-open").click()
    await expect(alice.tid("imports-chat-title")).to_have_text("Team Alpha")
    await expect(alice.tid("imports-chat-meta")).to_contain_text("WhatsApp")

    # The first page: the notice, the multi-line message as written, the media placeholder.
    messages = alice.tid("imports-message")
    await expect(messages).to_have_count(50)
    await expect(messages.first).to_have_attribute("data-kind", "system")
    plan = messages.nth(2)
    await expect(plan).to_have_attribute("data-author", "Zoë")
    assert await plan.get_by_test_id("imports-message-text").text_content() == \
        "Morning! Here is the plan:\n1. coffee\n2. code"
    await expect(plan.locator("time")).to_have_attribute("datetime", "2024-03-12T08:17:00.000Z")
    await expect(messages.nth(3).get_by_test_id("imports-attachment")).to_have_count(1)
    await expect(alice.tid("imports-older")).to_be_hidden()  # the start of the chat
    await expect(alice.tid("imports-shown")).to_have_text(f"50 shown · #1–#50 of {LINES:,}")
    await alice.tid("imports-newer").click()
    await expect(messages).to_have_count(100)
    await expect(alice.tid("imports-shown")).to_have_text(f"100 shown · #1–#100 of {LINES:,}")
    await expect(messages.nth(99)).to_have_attribute("data-seq", "100")

    # One author's messages only.
    await alice.tid("imports-author").select_option("Zoë")
    await expect(messages).to_have_count(1)
    await expect(messages.first).to_have_attribute("data-author", "Zoë")
    await alice.tid("imports-author").select_option("")
    await expect(messages).to_have_count(50)

    # Search without the diacritic: the hit is marked, the HTML in the text stays text.
    await alice.tid("imports-search-query").fill("zoe")
    await alice.tid("imports-search").click()
    result = alice.tid("imports-result")
    await expect(result).to_have_count(1)
    snippet = result.get_by_test_id("imports-snippet")
    await expect(snippet.locator("mark")).to_have_text(["Zoë"])
    await expect(snippet).to_contain_text("<b>really</b> & good night")
    await expect(snippet.locator("b")).to_have_count(0)
    await expect(alice.tid("imports-results-count")).to_have_text('1 message for “zoe”')

    # Opening the hit shows its chat around it (it is the last message: older ones above).
    await result.get_by_test_id("imports-result-open").click()
    target = alice.page.locator('[data-testid="imports-message"][data-target="true"]')
    await expect(target).to_be_visible()
    await expect(target).to_have_attribute("data-seq", str(LINES))
    await expect(target.get_by_test_id("imports-message-text")).to_have_text(
        "Thanks Zoë <b>really</b> & good night")
    await expect(alice.tid("imports-newer")).to_be_hidden()
    before = await messages.count()
    assert 0 < before <= 50
    await alice.tid("imports-older").click()
    await expect(messages).to_have_count(before + 50)
    await expect(target).to_be_visible()
    await alice.keep_screenshot("imports-panel")
    await alice.screenshot(tmp_path / "imports-panel.png")

    # Rename.
    await alice.tid("imports-rename-toggle").click()
    await alice.tid("imports-rename-name").fill("Team Zoë")
    await alice.tid("imports-rename").click()
    await expect(alice.tid("imports-chat-title")).to_have_text("Team Zoë")
    renamed = alice.page.locator('[data-testid="imports-chat-item"][data-chat-name="Team Zoë"]')
    await expect(renamed).to_be_visible()

    # Export: a download from the button, and the JSON with the user's token.
    async with alice.page.expect_download() as info:
        await alice.page.locator('[data-testid="imports-export"][data-format="md"]').click()
    download = await info.value
    assert download.suggested_filename == "Team Zoë.md"
    saved = tmp_path / "export.md"
    await download.save_as(saved)
    assert "Thanks Zoë" in saved.read_text(encoding="utf-8")

    chat_id = await renamed.get_attribute("data-chat-id")
    token = (await alice.stored_tokens())["accessToken"]
    async with aiohttp.ClientSession() as http:
        url = f"{server.url}/api/chats/{chat_id}/export.json"
        async with http.get(url) as res:
            assert res.status == 401
        async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as res:
            assert res.status == 200, await res.text()
            body = json.loads(await res.text())
    assert body["chat"]["name"] == "Team Zoë"
    assert body["chat"]["messageCount"] == MESSAGES
    assert len(body["messages"]) == LINES
    first_plan = body["messages"][2]
    assert first_plan["author"] == "Zoë" and first_plan["text"].endswith("1. coffee\n2. code")
    assert first_plan["time"] == "2024-03-12T08:17:00.000Z"  # 09:17 in Paris (UTC+1)

    # Delete.
    await alice.tid("imports-delete").click()
    await alice.tid("imports-delete-confirm").click()
    await expect(alice.tid("imports-view")).to_be_hidden()
    await expect(alice.tid("imports-chat-item")).to_have_count(0)
    await expect(alice.tid("imports-empty")).to_be_visible()
    await expect(alice.tid("imports-result")).to_have_count(0)


async def test_a_file_that_is_no_chat_fails_with_its_reason(open_console, tmp_path):
    bob = await open_console("bob")
    await bob.sign_up(unique_email("bob"), username="bob")
    await bob.create_project("Notes")
    await bob.open_project("Notes", view="imports")
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\n- milk\n- bread\n", encoding="utf-8")
    await bob.tid("imports-file").set_input_files(str(notes))
    await bob.tid("imports-start").click()
    await expect(bob.tid("imports-progress")).to_have_attribute("data-phase", "failed",
                                                                timeout=30_000)
    box = bob.tid("imports-import-error")
    await expect(box).to_have_attribute("data-code", "bad_request")
    await expect(box).to_have_attribute("data-reason", "unknown_format")
    await expect(box).to_contain_text("That was not accepted.")  # a sentence, not the code
    await expect(box).to_contain_text("notes.txt is not a chat export")
    await expect(bob.tid("imports-failure-details")).to_contain_text(
        "seen: text whose first line is 'shopping list'")
    await expect(bob.tid("imports-chat-item")).to_have_count(0)
    await expect(bob.tid("imports-start")).to_be_enabled()  # may retry (e.g. forcing a platform)
