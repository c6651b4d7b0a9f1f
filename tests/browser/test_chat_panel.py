"""The chat panel in headless Chromium: attach a CSV, ask the offline analyst, watch the
reply stream in (several deltas, then complete), and stop a second reply midway."""
from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.client import unique_email

CSV = "city,temp\nOslo,3.5\nRome,\nLima,18\n"


@pytest.mark.server_settings(chat_offline_delay_ms=60)
async def test_a_reply_streams_in_and_can_be_stopped(open_console, tmp_path):
    alice = await open_console("alice")
    await alice.sign_up(unique_email("alice"), username="alice")
    await alice.create_project("Weather")
    await alice.open_project("Weather", view="chat")
    await expect(alice.tid("chat-panel")).to_be_visible()
    await alice.tid("chat-new").click()
    await expect(alice.tid("chat-view")).to_be_visible()

    data = tmp_path / "weather.csv"
    data.write_text(CSV)
    await alice.tid("chat-attach").set_input_files(str(data))
    chip = alice.tid("chat-attachment")
    await expect(chip).to_have_attribute("data-name", "weather.csv")
    await expect(chip).to_have_attribute("data-kind", "file")
    await alice.tid("chat-input").fill("Which columns have missing values?")
    await alice.tid("chat-send").click()

    reply = alice.page.locator('[data-testid="chat-message"][data-role="assistant"]').first
    await expect(reply).to_have_attribute("data-status", "generating")
    await expect(alice.tid("chat-stop")).to_be_visible()
    # Text arrives piece by piece while it generates.
    await expect(reply.get_by_test_id("chat-text")).to_contain_text("Offline analyst")
    await expect(reply).to_have_attribute("data-status", "generating")
    await expect(reply).to_have_attribute("data-status", "complete", timeout=20_000)
    assert int(await reply.get_attribute("data-deltas")) > 5
    # Rendered as markdown: `temp` is code, the file name bold, the reply's context a chip.
    text = reply.get_by_test_id("chat-text")
    await expect(text).to_contain_text("temp: 1 missing of 3 rows (33.3%)")
    await expect(text.locator("code", has_text="temp").first).to_be_visible()
    await expect(text.locator("strong", has_text="weather.csv").first).to_be_visible()
    await expect(reply.get_by_test_id("chat-chip")).to_have_attribute("data-kind", "file")
    await expect(reply.get_by_test_id("chat-chip")).to_contain_text("weather.csv")
    await expect(reply.get_by_test_id("chat-meta")).to_contain_text("offline · offline-analyst")
    await expect(alice.tid("chat-stop")).to_be_hidden()
    # The conversation took its title from the first exchange.
    await expect(alice.tid("chat-title")).to_have_text("Which columns have missing values?")
    await expect(alice.tid("chat-item")).to_contain_text("Which columns have missing values?")
    await alice.keep_screenshot("chat-streamed")

    await alice.tid("chat-input").fill("Tell me about this project")
    await alice.tid("chat-send").click()
    second = alice.page.locator('[data-testid="chat-message"][data-role="assistant"]').nth(1)
    await expect(second.get_by_test_id("chat-text")).to_contain_text("Offline analyst")
    await alice.tid("chat-stop").click()
    await expect(second).to_have_attribute("data-status", "cancelled")
    await expect(second.get_by_test_id("chat-meta")).to_contain_text("stopped")
    kept = await second.get_by_test_id("chat-text").text_content()
    assert kept.startswith("Offline analyst") and len(kept) < 200
    await expect(second.get_by_test_id("chat-text").locator("strong").first) \
        .to_have_text("Offline analyst")
