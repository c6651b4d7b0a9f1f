"""The capture panel in headless Chromium: upload a shared capture, watch the progress bar
reach 100 %, the packet list fill, and one packet's layer tree and bytes open (a reassembled
response with the reassembled bytes too)."""
from __future__ import annotations

from playwright.async_api import expect

from tests.client import unique_email
from tests.pcap_files import PCAPS


async def test_upload_progress_packet_list_and_dissection(open_console):
    alice = await open_console("alice")
    await alice.sign_up(unique_email("alice"), username="alice")
    await alice.create_project("Captures")
    await alice.open_project("Captures", view="captures")
    await expect(alice.tid("pcap-panel")).to_be_visible()
    await alice.tid("pcap-upload").set_input_files(str(PCAPS / "http-simple-get.pcap"))
    await expect(alice.tid("pcap-progress")).to_have_attribute("data-percent", "100",
                                                               timeout=30_000)
    await expect(alice.tid("pcap-progress")).to_have_attribute("data-phase", "done")
    rows = alice.tid("pcap-packet-row")
    await expect(rows).to_have_count(16)
    await expect(alice.tid("pcap-summary")).to_contain_text("16")
    await expect(alice.tid("pcap-protocols")).to_contain_text("http")
    await expect(alice.tid("pcap-conv-row")).to_have_count(1)
    await alice.tid("pcap-filter-protocol").fill("HTTP")
    await alice.tid("pcap-filter-apply").click()
    await expect(rows).to_have_count(2)
    await rows.first.click()
    await expect(alice.tid("pcap-layers").locator('[data-field="http"]')).to_be_visible()
    await expect(alice.tid("pcap-hex")).to_contain_text("0000  ")
    # The response (frame 11) is reassembled from four segments: its HTTP layer's bytes are
    # those segments, shown under the frame's own.
    await rows.nth(1).click()
    http = alice.tid("pcap-layers").locator('[data-field="http"]')
    await expect(http).to_have_attribute("title", "bytes 0–198 of Reassembled TCP (5237 bytes)")
    await expect(alice.tid("pcap-layers").locator('[data-field="tcp.segments"]')).to_be_visible()
    await expect(alice.tid("pcap-hex")).to_contain_text(
        "Reassembled TCP (5237 bytes)\n0000  48 54 54 50")  # HTTP
    await alice.keep_screenshot("pcap-panel")
