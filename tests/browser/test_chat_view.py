"""The Chat view in Chromium, as a chat app: replies rendered as sanitised markdown (an attack
in a file the analyst quotes runs nothing), code blocks, Enter sends and Shift+Enter breaks the
line, the log follows new text until the reader scrolls up (and again at the bottom), rename
and delete (live for the other members), the open conversation in the URL, context chips."""
from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.client import unique_email

# Quoted by the offline analyst ("It begins: “…”", the first 400 characters): every way
# this could run script, load something, or set a style the CSP would refuse.
ATTACK = (
    "<img src=x onerror=\"window.__xss='img'\"> <script>window.__xss='script'</script> "
    "<a href=\"javascript:window.__xss='a'\" onclick=\"window.__xss='click'\">a</a> "
    "[md](javascript:window.__xss='md') <iframe srcdoc=\"<script>parent.__xss=1</script>\">"
    "</iframe> <b style=\"color:red\">styled</b> <form action=\"/x\"><button>go</button></form>"
    " <svg onload=\"window.__xss='svg'\"></svg>"
)


async def _new_conversation(page) -> str:
    await page.tid("chat-new").click()
    await expect(page.tid("chat-view")).to_be_visible()
    item = page.page.locator("[data-testid=chat-item].active")
    await expect(item).to_have_count(1)
    return await item.get_attribute("data-conversation-id")


async def _reply(page, nth: int = 0):
    return page.page.locator('[data-testid="chat-message"][data-role="assistant"]').nth(nth)


async def test_markdown_is_rendered_and_nothing_in_it_runs(open_console, tmp_path):
    alice = await open_console("alice")
    await alice.sign_up(unique_email("alice"), username="alice")
    await alice.create_project("Safe")
    await alice.open_project("Safe", view="chat")
    await expect(alice.tid("chat-pick")).to_be_visible()
    await _new_conversation(alice)

    evil = tmp_path / "notes.txt"
    evil.write_text(ATTACK + " " + "x" * 300, encoding="utf-8")
    await alice.tid("chat-context").click()
    await alice.tid("chat-attach").set_input_files(str(evil))
    chip = alice.tid("chat-attachment")
    await expect(chip).to_have_attribute("data-name", "notes.txt")
    await alice.tid("chat-input").fill("Summarise <b>this</b> file")
    await alice.tid("chat-input").press("Enter")

    question = alice.page.locator('[data-testid="chat-message"][data-role="user"]').first
    await expect(question.get_by_test_id("chat-text")).to_have_text("Summarise <b>this</b> file")
    await expect(question.locator("b")).to_have_count(0)  # the user's text is text
    await expect(question.get_by_test_id("chat-chip")).to_contain_text("notes.txt")
    await expect(alice.tid("chat-attachment")).to_have_count(0)  # sent with it: cleared

    reply = await _reply(alice)
    await expect(reply).to_have_attribute("data-status", "complete", timeout=20_000)
    text = reply.get_by_test_id("chat-text")
    await expect(text.locator("strong", has_text="notes.txt")).to_have_count(1)  # markdown
    await expect(text).to_contain_text("It begins")
    await expect(text).to_contain_text("styled")
    await expect(reply.get_by_test_id("chat-chip")).to_contain_text("notes.txt")

    log = alice.tid("chat-messages")
    for selector in ("img", "script", "iframe", "svg", "form", "button", "[style]",
                     "[onerror]", "[onclick]", "[onload]", "a[href^='javascript']"):
        assert await text.locator(selector).count() == 0, selector
    assert await alice.page.evaluate("window.__xss") is None
    # Links that stay open in a new tab and say nothing about the console.
    assert await log.locator("a[href]:not([rel~=noopener])").count() == 0
    assert alice.errors == []  # no CSP violation either: nothing was even tried

    await alice.check_layout("chat")
    await alice.check_accessibility("chat")


async def test_markdown_code_blocks_and_the_sanitiser_in_the_page(open_console):
    page = await open_console("md")
    got = await page.page.evaluate("""async () => {
        const { ChatLog } = await import('/static/chat-log.js');
        const log = new ChatLog({ names: () => 'data.csv' });
        document.body.append(log.el);
        const text = [
          '# Title', '', 'Some **bold**, `code` and a [link](https://example.com).', '',
          '```python', 'print("hi")', '```', '',
          '| a | b |', '|---|---|', '| 1 | 2 |', '',
          '<img src=x onerror="window.__xss=1"><a href="javascript:window.__xss=2">x</a>',
          '<p style="color:red" onmouseover="window.__xss=3">p</p>', '',
          '[bad](javascript:window.__xss=4) and [worse](JaVaScRiPt:window.__xss=5)',
        ].join('\\n');
        const entry = log.upsert({ id: 'm1', role: 'assistant', content: text,
          status: 'complete', attachments: [], metadata: {} });
        const body = entry.body;
        const out = {
          h1: body.querySelector('h1')?.textContent,
          strong: body.querySelector('strong')?.textContent,
          code: body.querySelector('p code')?.textContent,
          link: [body.querySelector('a[href^="https"]')?.target,
                 body.querySelector('a[href^="https"]')?.rel],
          block: body.querySelector('.code-block pre code')?.textContent,
          lang: body.querySelector('.code-head span')?.textContent,
          copy: body.querySelector('.code-head button')?.textContent,
          cells: [...body.querySelectorAll('td')].map((td) => td.textContent),
          bad: body.querySelectorAll('img, [onerror], [onmouseover], [style], '
            + 'a[href^="javascript" i]').length,
          asText: body.textContent.includes('<img src=x onerror='),
          badLinks: [...body.querySelectorAll('a')].filter((a) => /bad|worse/.test(a.textContent))
            .map((a) => a.getAttribute('href')),
          xss: window.__xss,
        };
        log.el.remove();
        return out;
    }""")
    assert got == {"h1": "Title", "strong": "bold", "code": "code",
                   "link": ["_blank", "noopener noreferrer nofollow"],
                   "block": 'print("hi")\n', "lang": "python", "copy": "Copy",
                   "cells": ["1", "2"], "bad": 0, "xss": None,
                   "asText": True,  # HTML in markdown reads as text, as in a chat app
                   "badLinks": [None, None]}  # javascript: links lose their target


async def test_enter_sends_and_shift_enter_breaks_the_line(open_console):
    alice = await open_console("alice")
    await alice.sign_up(unique_email("alice"), username="alice")
    await alice.create_project("Keys")
    await alice.open_project("Keys", view="chat")
    await _new_conversation(alice)
    box = alice.tid("chat-input")
    await box.click()
    await alice.page.keyboard.type("line one")
    await alice.page.keyboard.press("Shift+Enter")
    await alice.page.keyboard.type("line two")
    await expect(box).to_have_value("line one\nline two")
    await expect(alice.tid("chat-message")).to_have_count(0)  # nothing sent yet

    await alice.page.keyboard.press("Enter")
    question = alice.page.locator('[data-testid="chat-message"][data-role="user"]')
    await expect(question.get_by_test_id("chat-text")).to_have_text("line one\nline two")
    await expect(box).to_have_value("")
    await expect(await _reply(alice)).to_have_attribute("data-status", "complete",
                                                        timeout=20_000)
    # Enter on an empty box sends nothing (and says why).
    await alice.page.keyboard.press("Enter")
    await alice.expect_error("chat-error", "bad_request", "write a message first")
    await expect(alice.tid("chat-message")).to_have_count(2)


@pytest.mark.server_settings(chat_offline_delay_ms=40)
async def test_the_log_stops_following_when_the_reader_scrolls_up(open_console, tmp_path):
    alice = await open_console("alice")
    await alice.page.set_viewport_size({"width": 1000, "height": 700})
    await alice.sign_up(unique_email("alice"), username="alice")
    await alice.create_project("Scroll")
    await alice.open_project("Scroll", view="chat")
    await _new_conversation(alice)
    wide = tmp_path / "wide.csv"  # 60 columns: "list the columns" makes a long reply
    wide.write_text(",".join(f"column_{i}" for i in range(60)) + "\n"
                    + ",".join(str(i) for i in range(60)) + "\n")
    await alice.tid("chat-context").click()
    await alice.tid("chat-attach").set_input_files(str(wide))
    await expect(alice.tid("chat-attachment")).to_have_count(1)
    await alice.tid("chat-input").fill("Which columns are there?")
    await alice.tid("chat-input").press("Enter")

    log = alice.tid("chat-messages")
    reply = await _reply(alice)
    geometry = "el => [el.scrollTop, el.scrollHeight, el.clientHeight]"
    # Following: the log overflows and stays at its bottom while text arrives.
    await alice.page.wait_for_function(
        """() => { const el = document.querySelector('[data-testid=chat-messages]');
                   return el.scrollHeight > el.clientHeight + 200; }""")
    await expect(reply).to_have_attribute("data-status", "generating")
    top, height, client = await log.evaluate(geometry)
    assert height - top - client <= 32 and await log.get_attribute("data-following") == "true"

    # The reader scrolls up: the log stays where they are while more text arrives.
    await log.hover()
    await alice.page.mouse.wheel(0, -5000)
    await expect(log).to_have_attribute("data-following", "false")
    await expect(alice.tid("chat-jump")).to_be_visible()
    held = (await log.evaluate(geometry))[0]
    deltas = int(await reply.get_attribute("data-deltas"))
    await alice.page.wait_for_function(
        """(n) => Number(document.querySelector('[data-testid=chat-message][data-role=assistant]')
                   .dataset.deltas) >= n""", arg=deltas + 5)
    top, height, _ = await log.evaluate(geometry)
    assert top == held and height > held  # more text, same place

    # Back at the bottom (by hand), it follows again.
    await alice.page.mouse.wheel(0, 100_000)
    await expect(log).to_have_attribute("data-following", "true")
    await expect(alice.tid("chat-jump")).to_be_hidden()
    deltas = int(await reply.get_attribute("data-deltas"))
    await alice.page.wait_for_function(
        """(n) => Number(document.querySelector('[data-testid=chat-message][data-role=assistant]')
                   .dataset.deltas) >= n""", arg=deltas + 3)
    top, height, client = await log.evaluate(geometry)
    assert height - top - client <= 32

    # And "Jump to latest" does the same from anywhere up.
    await log.evaluate("el => { el.scrollTop = 0; }")
    await expect(log).to_have_attribute("data-following", "false")
    await alice.tid("chat-jump").click()
    await expect(log).to_have_attribute("data-following", "true")
    await expect(reply).to_have_attribute("data-status", "complete", timeout=30_000)
    top, height, client = await log.evaluate(geometry)
    assert height - top - client <= 32


async def test_rename_delete_and_the_conversation_in_the_url(open_console):
    alice, bob = await open_console("alice"), await open_console("bob")
    bob_email = unique_email("bob")
    await alice.sign_up(unique_email("alice"), username="alice")
    await bob.sign_up(bob_email, username="bob")
    await alice.create_project("Talks")
    await alice.open_project("Talks")
    await alice.add_member(bob_email, "viewer")
    await alice.view("chat")
    first = await _new_conversation(alice)
    second = await _new_conversation(alice)
    assert first != second
    pid = await alice.tid("project-detail").get_attribute("data-project-id")
    await expect(alice.page).to_have_url(f"{alice.base_url}/#/p/{pid}/chat/{second}")

    await bob.open_project("Talks", view="chat")
    await expect(bob.tid("chat-item")).to_have_count(2)
    await expect(bob.tid("chat-new")).to_be_hidden()  # a viewer reads

    # Rename with the keyboard: Enter on Rename, type, Enter saves; Escape cancels.
    await alice.tid("chat-rename").focus()
    await alice.page.keyboard.press("Enter")
    await expect(alice.tid("chat-rename-input")).to_be_focused()
    await alice.page.keyboard.type("Budget talk")
    await alice.page.keyboard.press("Enter")
    await expect(alice.tid("chat-title")).to_have_text("Budget talk")
    bob_item = bob.page.locator(f"[data-testid=chat-item][data-conversation-id='{second}']")
    await expect(bob_item).to_contain_text("Budget talk")  # live for the others
    await alice.tid("chat-rename").click()
    await alice.tid("chat-rename-input").fill("Not this")
    await alice.tid("chat-rename-input").press("Escape")
    await expect(alice.tid("chat-title")).to_have_text("Budget talk")
    await expect(alice.tid("chat-rename")).to_be_focused()

    # The conversation is in the URL: back opens the previous one, reload keeps it.
    await alice.page.go_back()
    await expect(alice.page).to_have_url(f"{alice.base_url}/#/p/{pid}/chat/{first}")
    await expect(alice.page.locator("[data-testid=chat-item].active")) \
        .to_have_attribute("data-conversation-id", first)
    await alice.page.go_forward()
    await expect(alice.tid("chat-title")).to_have_text("Budget talk")
    await alice.page.reload()
    await alice.ready()
    await expect(alice.tid("chat-title")).to_have_text("Budget talk")
    # Another view and back: the same conversation is open.
    await alice.view("files")
    await alice.view("chat")
    await expect(alice.tid("chat-title")).to_have_text("Budget talk")
    await expect(alice.page).to_have_url(f"{alice.base_url}/#/p/{pid}/chat/{second}")

    # Delete, after a confirmation: gone here and for Bob; the URL no longer names it.
    await alice.tid("chat-delete").click()
    await expect(alice.tid("chat-delete-confirm")).to_be_focused()
    await alice.page.keyboard.press("Enter")
    await expect(alice.tid("chat-item")).to_have_count(1)
    await expect(alice.tid("chat-pick")).to_be_visible()
    await expect(alice.page).to_have_url(f"{alice.base_url}/#/p/{pid}/chat")
    await expect(bob.tid("chat-item")).to_have_count(1)
    await expect(bob_item).to_have_count(0)
