"""The console survives its instance (issue 13): two instances behind Redis and nginx; the
instance holding a signed-in console is killed; while the console reconnects (through nginx,
to the other instance), another user changes the project; the console shows every change
without a page reload, caught up by ``sync`` (replayed pushes, not a reload of the room)."""
from __future__ import annotations

import json

from playwright.async_api import expect

from tests.browser.harness import ACTION_TIMEOUT_MS, CSP_WATCH, ConsolePage
from tests.client import Client, eventually, unique_email
from tests.cluster.conftest import FAST
from tests.cluster.harness import Cluster

# Record the console's calls and resyncs, and mark the page: a reload would lose the mark.
WATCH = """() => {
  window.__seen = {calls: [], resync: []};
  window.collab.bus.on('call', (c) => window.__seen.calls.push(c.event));
  window.collab.bus.on('resync', (r) => window.__seen.resync.push(r.room));
}"""


async def test_a_console_whose_instance_dies_shows_what_changed_meanwhile(browser):
    with Cluster(n=2, extra_env=FAST) as cluster:
        context = await browser.new_context(viewport={"width": 1280, "height": 860})
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        await context.add_init_script(CSP_WATCH)
        console = ConsolePage(context, await context.new_page(), cluster.url, "bob")
        alice = None
        try:
            alice = await Client(cluster.instances[0].url, "alice").connect()
            await alice.register(unique_email("alice"))
            bob = await Client(cluster.instances[0].url, "bob").connect()
            await bob.register(unique_email("bob"))
            await bob.close()
            project = await alice.ok("project:create", {"name": "Before the crash"})
            await alice.ok("project:member:add", {"id": project["id"], "role": "editor",
                                                  "email": bob.user["email"]})
            # The console signs in with Bob's stored tokens, as after an earlier visit.
            await context.add_init_script(
                f"localStorage.setItem('collab.tokens', {json.dumps(json.dumps(bob.tokens))})")
            await console.goto()
            await console.signed_in()
            await console.open_project("Before the crash")
            where = (await console.call("ping"))["instance"]
            victim = next(i for i, inst in enumerate(cluster.instances) if inst.name == where)
            await console.page.evaluate(WATCH)

            cluster.kill(victim)
            survivor = cluster.instances[1 - victim]
            if alice.sio.connected and victim == 0:
                await alice.close()
            if victim == 0:
                alice = await Client(survivor.url, "alice'").connect(alice.tokens["accessToken"])
            await alice.ok("project:update", {"id": project["id"], "name": "Renamed meanwhile"})
            carol = await Client(survivor.url, "carol").connect()
            await carol.register(unique_email("carol"))
            await carol.close()
            await alice.ok("project:member:add", {"id": project["id"], "role": "viewer",
                                                  "email": carol.user["email"]})
            await alice.ok("project:update", {"id": project["id"], "name": "After the crash"})

            await expect(console.tid("project-title")).to_have_text(
                "After the crash", timeout=30_000)
            # The member list lives in the Members view (not shown): its row is there.
            await expect(console.page.locator('[data-testid="member-row"]', has_text=carol.user[
                "email"])).to_be_attached()
            seen = await console.page.evaluate("window.__seen")
            assert seen is not None, "the page was reloaded"
            assert "sync" in seen["calls"] and seen["resync"] == []
            assert (await console.call("ping"))["instance"] == survivor.name
            assert console.errors == []
        except BaseException:
            print(cluster.logs(60))
            for line in console.log[-40:]:
                print(line)
            raise
        finally:
            if alice is not None:
                await alice.close()
            await context.close()


async def test_the_watch_script_sees_calls(open_console):
    """The marker the test above relies on: calls reach the bus, the page keeps __seen."""
    page = await open_console("watcher")
    await page.page.evaluate(WATCH)
    await page.call("ping")
    await eventually(lambda: page.page.evaluate("window.__seen.calls.includes('ping')"))
