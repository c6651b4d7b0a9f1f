"""The Admin panel in Chromium: hidden from non-admins; an admin searches users, deactivates
one (whose open console is signed out at once), changes a role, deletes a user after
confirming, and reads the metrics and the audit log."""
from __future__ import annotations

from playwright.async_api import expect

from server.keys import services_of
from tests.client import eventually, unique_email


async def test_admin_panel(open_console, server):
    store = services_of(server.app).store
    boss = await open_console("boss")
    boss_email = unique_email("boss")
    await boss.sign_up(boss_email, username=f"boss{unique_email()[4:12]}")
    await expect(boss.tid("nav-admin")).to_have_count(0)  # not admin
    await boss.page.goto(boss.base_url + "/#/admin")  # and the address alone shows nothing
    await boss.shows("home")
    await expect(boss.page.locator("section[data-panel=admin]")).to_be_hidden()
    await store.users.update_user((await boss.call("auth:me"))["id"], role="admin")
    await boss.reopen()
    await boss.signed_in()
    await boss.tid("nav-admin").click()
    await boss.shows("admin")
    await expect(boss.page.locator("section[data-panel=admin]")).to_be_visible()
    await expect(boss.tid("admin-metrics").locator("[data-metric=totalUsers]")).not_to_have_text("")

    prefix = f"pat{unique_email()[4:12]}"
    pat = await open_console("pat")
    await pat.sign_up(unique_email(prefix), username=prefix)
    pat_id = (await pat.call("auth:me"))["id"]

    await boss.tid("admin-user-search").fill(prefix)
    await boss.tid("admin-user-go").click()
    row = boss.tid("admin-users").locator(f"tr[data-user-id='{pat_id}']")
    await expect(row).to_be_visible()
    await expect(boss.tid("admin-users").locator("tr[data-user-id]")).to_have_count(1)

    # Deactivate: Pat's console loses the session at once.
    await row.get_by_test_id(f"admin-active-{pat_id}").uncheck()
    await expect(boss.tid("admin-users").locator(f"tr[data-user-id='{pat_id}']")) \
        .to_have_class("inactive")
    await expect(pat.tid("auth-form")).to_be_visible()
    await expect(pat.tid("notice")).to_contain_text("deactivated")
    row = boss.tid("admin-users").locator(f"tr[data-user-id='{pat_id}']")
    await row.get_by_test_id(f"admin-active-{pat_id}").check()
    await expect(row).not_to_have_class("inactive")

    # Role change.
    await row.get_by_test_id(f"admin-role-{pat_id}").select_option("admin")
    await eventually(lambda: _role_is(store, pat_id, "admin"))

    # The audit log shows what happened.
    await boss.tid("admin-audit-kind").fill("user_deactivated")
    await boss.tid("admin-audit-kind").press("Enter")
    await expect(boss.tid("admin-audit").locator("li[data-kind=user_deactivated]")).to_have_count(1)

    # Delete, with confirmation.
    row = boss.tid("admin-users").locator(f"tr[data-user-id='{pat_id}']")
    await row.get_by_test_id(f"admin-delete-{pat_id}").click()
    await boss.tid("admin-delete-go").click()
    await expect(boss.tid("admin-error")).to_contain_text("Deleted")
    await expect(boss.tid("admin-users").locator(f"tr[data-user-id='{pat_id}']")).to_have_count(0)
    assert await store.users.get_user(pat_id) is None
    await boss.keep_screenshot("admin-panel")


async def _role_is(store, user_id: str, role: str) -> bool:
    user = await store.users.get_user(user_id)
    return user is not None and user.role == role
