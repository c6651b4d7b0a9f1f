"""The web console end to end in headless Chromium: accounts, projects, live pushes, presence.
(Routing, the drawer, formats and the layout and accessibility checks: test_console_shell.py.)"""
from __future__ import annotations

import pytest
from playwright.async_api import expect

from server.keys import services_of
from store.errors import TokenExpired
from tests.client import eventually, unique_email


async def test_two_users_share_a_project_live(open_console):
    alice, bob = await open_console("alice"), await open_console("bob")
    bob_email = unique_email("bob")
    await alice.sign_up(unique_email("alice"), username="alice")
    await bob.sign_up(bob_email, username="bob")
    await expect(bob.tid("project-empty")).to_be_visible()

    await alice.create_project("Apollo", "moon shot")
    await alice.open_project("Apollo")
    await expect(alice.tid("project-role")).to_have_text("owner")
    await alice.add_member(bob_email, "editor")

    # Bob's list gains the project without a reload (project:updated to his user room).
    item = bob.project_item("Apollo")
    await expect(item).to_have_attribute("data-role", "editor")
    await bob.open_project("Apollo", view="members")
    await expect(bob.tid("project-description")).to_have_text("moon shot")
    await expect(bob.tid("member-list")).to_be_visible()
    await expect(bob.tid("member-add")).to_be_hidden()  # owners manage members

    # Both in the room: each sees the other online.
    await expect(alice.member_row("bob")).to_have_attribute("data-online", "true")
    await expect(bob.member_row("alice")).to_have_attribute("data-online", "true")
    await expect(alice.presence_user("bob")).to_be_visible()

    # A rename reaches Bob's open project and his list.
    await alice.rename_project("Apollo 11")
    await expect(bob.tid("project-title")).to_have_text("Apollo 11")
    await expect(bob.tid("crumb-project")).to_have_text("Apollo 11")
    await expect(bob.project_item("Apollo 11")).to_have_count(1)  # his list, behind the view

    # A role change reaches Bob live.
    await alice.member_row("bob").get_by_test_id("member-role").select_option("viewer")
    await expect(bob.tid("project-role")).to_have_text("viewer")
    await expect(bob.project_item("Apollo 11")).to_have_attribute("data-role", "viewer")

    # Bob closes the project (leaves the room): Alice sees him go offline, then back.
    await bob.close_project()
    await expect(alice.member_row("bob")).to_have_attribute("data-online", "false")
    await expect(alice.presence_user("bob")).to_have_count(0)
    await expect(bob.project_item("Apollo 11")).to_be_visible()
    await bob.open_project("Apollo 11")
    await expect(alice.member_row("bob")).to_have_attribute("data-online", "true")
    await alice.keep_screenshot("console")
    await bob.keep_screenshot("console-bob")

    # Bob closes his browser: his socket drops, presence follows.
    await bob.close()
    await expect(alice.member_row("bob")).to_have_attribute("data-online", "false")
    await expect(alice.member_row("bob").get_by_test_id("member-status")).to_have_text("offline")


async def test_guest_sign_in_and_errors_are_shown(open_console):
    taken = unique_email("taken")
    first = await open_console("first")
    await first.sign_up(taken)

    page = await open_console("visitor")
    name = await page.guest()
    assert name.startswith("guest-")
    await page.keep_screenshot("console-guest")
    await expect(page.page.locator(".account-bar .badge.guest")).to_be_visible()
    await page.tid("auth-user").click()  # the account page: where a guest keeps the account
    await page.shows("account")
    await expect(page.tid("auth-upgrade")).to_be_visible()
    await page.create_project("Scratch")
    await page.sign_out()
    await page.shows("signin")
    await expect(page.tid("project-list")).to_be_hidden()

    await page.fill_credentials(taken, "correct horse battery", register=True)
    await page.tid("auth-register").click()
    await page.expect_error("auth-error", "conflict")
    # A sentence for the code, then the server's own words.
    await expect(page.tid("auth-error")).to_contain_text("That clashes with something")
    await page.keep_screenshot("console-error")

    await page.fill_credentials(taken, "wrong password!")
    await page.tid("auth-login").click()
    await page.expect_error("auth-error", "unauthorized", "wrong login or password")

    await page.fill_credentials(unique_email("short"), "short", register=True)
    await page.tid("auth-register").click()
    await page.expect_error("auth-error", "bad_request", "at least 8 characters")

    await page.sign_in(taken)  # and the box clears once it works
    await expect(page.tid("auth-error")).to_be_empty()


@pytest.mark.server_settings(access_token_minutes=0.025)  # 1.5 s access tokens
async def test_session_survives_token_expiry_and_reload(open_console, server):
    page = await open_console("carol")
    await page.sign_up(unique_email("carol"), username="carol")
    await page.create_project("Mercury")
    await page.open_project("Mercury", view="members")
    first = await page.stored_tokens()

    # The server pushes auth:expired; the console rotates its tokens on the same socket...
    await page.page.wait_for_function(
        """(first) => {
            const t = JSON.parse(localStorage.getItem('collab.tokens'));
            return t && t.refreshToken !== first;
        }""", arg=first["refreshToken"], timeout=6000)
    # ...and keeps working, still in the project's room.
    await page.rename_project("Mercury I")
    await expect(page.member_row("carol")).to_have_attribute("data-online", "true")
    await page.create_project("Venus")

    # A new tab after the stored access token expired: the handshake is refused with
    # token_expired, the console reconnects anonymously and refreshes.
    stored = (await page.stored_tokens())["accessToken"]
    await page.page.close()
    tokens = services_of(server.app).tokens

    def expired() -> bool:  # as the server's handshake will judge it
        try:
            tokens.verify_access(stored)
        except TokenExpired:
            return True
        return False

    await eventually(expired, timeout=5)
    await page.reopen()
    await page.signed_in("carol")
    await expect(page.project_item("Venus")).to_be_visible()
    assert await page.call("ping") is not None

    # A garbage access token: refused as unauthorized, the refresh token still signs in.
    await page.page.evaluate("""() => {
        const t = JSON.parse(localStorage.getItem('collab.tokens'));
        t.accessToken = 'not-a-jwt';
        localStorage.setItem('collab.tokens', JSON.stringify(t));
    }""")
    await page.page.reload()
    await page.signed_in("carol")
    assert (await page.stored_tokens())["accessToken"] != "not-a-jwt"


async def test_reconnect_rejoins_and_removal_closes_the_project(open_console):
    alice, bob = await open_console("alice"), await open_console("bob")
    bob_email = unique_email("bob")
    await alice.sign_up(unique_email("alice"), username="alice")
    await bob.sign_up(bob_email, username="bob")
    await alice.create_project("Skylab")
    await alice.open_project("Skylab")
    await alice.add_member(bob_email)
    await bob.open_project("Skylab")
    await expect(alice.member_row("bob")).to_have_attribute("data-online", "true")

    # Drop Bob's transport: the server sees a disconnect, the client reconnects with its
    # token (socket.auth), resumes the session and re-enters the project's room.
    await bob.page.evaluate("window.collab.socket.io.engine.close()")
    await expect(alice.member_row("bob")).to_have_attribute("data-online", "false")
    await expect(bob.tid("conn-status")).to_have_attribute("data-state", "online")
    await expect(alice.member_row("bob")).to_have_attribute("data-online", "true")
    await expect(bob.tid("project-title")).to_have_text("Skylab")
    await alice.rename_project("Skylab B")
    await expect(bob.tid("project-title")).to_have_text("Skylab B")

    # Removed by the owner: the project leaves Bob's list and his open view at once.
    await alice.member_row("bob").get_by_test_id("member-remove").click()
    await expect(bob.project_item("Skylab B")).to_have_count(0)
    await expect(bob.tid("project-detail")).to_be_hidden()
    await expect(bob.tid("project-error")).to_contain_text("no longer a member")
    await expect(alice.member_row("bob")).to_have_count(0)

    await alice.tid("project-delete").click()
    await alice.tid("project-delete-confirm").click()
    await expect(alice.project_item("Skylab B")).to_have_count(0)
    await expect(alice.tid("project-empty")).to_be_visible()
