"""The event fuzzer: every event in the registry, called through a real server and one real
Socket.IO connection with payloads generated from its pydantic model (``tests/fuzz_values.py``).

Three passes, each on resources built fresh (per event, or per burst):

* the sweep: the event's valid sample with each field — nested fields too — set in turn to
  each value of its type's catalogue (valid, one past each bound, beyond 2⁵³ and int64,
  NaN and infinities, lone surrogates, empty and very long strings, times out of range,
  forged cursors, ids of resources that exist and do not, wrong types, deep nesting),
  then dropped, an unknown field added, and payloads that are not objects;
* hypothesis: ``FUZZ_EXAMPLES`` (default 5) payloads mixing those with random values of
  each type, whole payloads drawn field by field, several fields wrong at once;
* bursts: ``4 × FUZZ_EXAMPLES`` sets of two to five events sent at once on fresh resources.

The seed is fixed (``derandomize``) so a run is reproducible; raise the knob for long runs.

For every call: an ack comes (within ``ACK_TIMEOUT``), shaped ``{ok, data}`` or ``{ok,
error: {code, …}}`` with a SPEC §2 code that is not ``internal``; the connection stays,
with its session (``auth:me`` answers as the caller; ``ping`` on the socket the sign-in
events run on); and the caller's other state is unchanged: a project of theirs whose ids
are never drawn (its tables, rows, history, files, conversations, messages, imported chat)
and their account.
"""
from __future__ import annotations

import asyncio
import os
from collections import Counter, defaultdict

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers import all_events
from handlers.base import EventSpec
from tests.client import Client
from tests.fuzz_values import DEEP, WRONG, Pools, boundaries, nested, paths, payloads, set_path
from tests.world import Res, World, open_world, sample

in_module_loop = pytest.mark.asyncio(loop_scope="module")  # the world's loop

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
ACK_TIMEOUT = 30.0  # generous: a valid pcap:packet dissects, pcap:follow runs tshark
EVENTS = all_events()
CODES = {"bad_request", "unauthorized", "token_expired", "forbidden", "not_found", "conflict",
         "locked", "too_large", "rate_limited", "unavailable"}  # SPEC §2, less ``internal``
# Events that sign the socket in or out: they run on a socket of their own.
SESSION_EVENTS = {"auth:register", "auth:login", "auth:guest", "auth:refresh", "auth:logout",
                  "auth:upgrade", "auth:update"}  # auth:update changes its caller's account
# Resources the examples share across events: an event that would destroy one does not
# draw its id (the captures are ingested once per run).
SPARED = {"file:delete": {"capture"}}
OUTCOMES: dict[str, Counter] = defaultdict(Counter)


# -- the caller's other state --------------------------------------------------------------

async def state_of(w: World, res: Res, user_id: str) -> dict:
    """What the fuzzer must never change: a project whose ids it never draws, read through
    the store, and the caller's account."""
    store = w.store
    project = await store.projects.get_project(res.project)
    tables = await store.tables.list_tables(res.project)
    rows = {t.id: (await store.tables.list_rows(t.id, limit=1000)).items for t in tables}
    history = {t.id: (await store.tables.table_history(t.id, limit=1000)).items
               for t in tables}
    convs = (await store.chat.list_conversations(project_id=res.project, owner_id=user_id,
                                                 limit=200)).items
    messages = {c.id: (await store.chat.list_messages(c.id, limit=200)).items
                for c in convs}
    chats = (await store.chats.list_chats(res.project, limit=200)).items
    lines = {c.id: (await store.chats.list_lines(c.id, limit=500)).items for c in chats}
    return {"project": project, "tables": tables, "rows": rows, "history": history,
            "files": (await store.files.list_files(res.project, limit=200)).items,
            "conversations": convs, "messages": messages, "chats": chats, "lines": lines,
            "user": await store.users.get_user(user_id)}


# -- fixtures ------------------------------------------------------------------------------

class Fuzz:
    """The world, the caller (P's owner) and what must not change."""

    def __init__(self, world: World, kept: Res, before: dict, theirs: Res):
        self.world = world
        self.kept, self.before, self.theirs = kept, before, theirs
        self.owner = world.clients["owner"]
        self.owner_id = world.ids["owner"]
        self.session: Client | None = None

    async def socket_for(self, spec: EventSpec) -> Client:
        """The caller's socket; the events that sign in and out get a socket of their own
        (reopened only if it was closed — which the checks would have reported)."""
        if spec.name not in SESSION_EVENTS:
            return self.owner
        if self.session is None or not self.session.sio.connected:
            self.session = await self.world.client("fuzz-session")
            self.world.extra_clients.append(self.session)
        return self.session

    async def call(self, spec: EventSpec, payload) -> str:
        """One call that must be answered with a stable code; the answer's code ("ok")."""
        client = await self.socket_for(spec)
        try:
            ack = await asyncio.wait_for(client.call(spec.name, payload, ACK_TIMEOUT),
                                         ACK_TIMEOUT + 5)
        except TimeoutError:
            pytest.fail(f"{spec.name}: no ack within {ACK_TIMEOUT}s to {payload!r:.300}")
        assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), \
            f"{spec.name}: not an ack: {ack!r:.300}"
        code = "ok" if ack["ok"] else (ack.get("error") or {}).get("code")
        OUTCOMES[spec.name][code] += 1
        assert code == "ok" or code in CODES, \
            f"{spec.name} answered {ack['error']} to {payload!r:.300}"
        return code

    async def still_standing(self, spec: EventSpec, after: str = "", *,
                             state: bool = True) -> None:
        """The connection and the session stay; the kept state is as it was."""
        client = await self.socket_for(spec)
        assert client.sio.connected, f"{spec.name}: the connection dropped {after}"
        if client is self.owner:
            me = await client.ok("auth:me")
            assert me["id"] == self.owner_id, f"{spec.name}: the session changed {after}"
        else:
            assert (await client.ok("ping"))["pong"] is True
        if not state:
            return
        now = await state_of(self.world, self.kept, self.owner_id)
        assert now == self.before, f"{spec.name} changed state it was never pointed at {after}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fuzz(tmp_path_factory):
    async with open_world(tmp_path_factory.mktemp("fuzz")) as w:
        kept = await w.build("P")
        theirs = await w.build("Q")
        made = Fuzz(w, kept, await state_of(w, kept, w.ids["owner"]), theirs)
        yield made
        print(fuzz_report())
        if len(OUTCOMES) == len(EVENTS):  # the whole registry was fuzzed in this run
            reached = [e for e, seen in OUTCOMES.items() if seen["ok"]]
            # Most events must have answered ok at least once, or the generated payloads
            # never got past validation to the handlers.
            assert len(reached) >= 0.8 * len(EVENTS), fuzz_report()


def fuzz_report() -> str:
    lines = [f"event fuzzer: {sum(sum(c.values()) for c in OUTCOMES.values())} calls, "
             f"{EXAMPLES} hypothesis examples per event"]
    lines += [f"  {event}: " + " ".join(f"{code}={n}" for code, n in seen.most_common())
              for event, seen in OUTCOMES.items()]
    return "\n".join(lines)


class Case:
    """What one event's calls share: resources built for the event, its valid sample
    (made once: a sample may spend something, like a refresh token) and the pools."""

    def __init__(self, spec: EventSpec, res: Res, theirs: Res):
        self.res = res
        self.valid = sample(spec, res)
        self.pools = Pools(res, theirs, SPARED.get(spec.name, set()))


@pytest_asyncio.fixture(loop_scope="module")
async def case(fuzz: Fuzz, spec: EventSpec) -> Case:
    world = fuzz.world
    await world.ensure_captures()  # an earlier event may have cancelled an ingest
    if spec.name == "auth:refresh":  # its sample spends a refresh token: one of its own
        spender = await world.client("fuzz-refresh")
        world.extra_clients.append(spender)
        world.refresh_tokens.append(spender.tokens["refreshToken"])  # type: ignore[index]
    return Case(spec, await world.build("P"), fuzz.theirs)


# -- the sweep -------------------------------------------------------------------------------

def sweep(spec: EventSpec, case: Case):
    """(what, payload) for every catalogued value of every field, each field dropped, an
    unknown field, and payloads that are not objects."""
    for path, annotation, info, name, base in paths(spec.model, case.valid):
        where = ".".join(map(str, path))
        for value in boundaries(annotation, info, name, case.pools):
            yield where, set_path(base, path, value)
        if len(path) == 1:
            yield f"without {where}", {k: v for k, v in base.items() if k != path[0]}
    yield "an unknown field", {**case.valid, "surplus": nested(3)}
    for value in [*WRONG, *DEEP, [], "", 0]:
        yield "not an object", value


@in_module_loop
@pytest.mark.parametrize("spec", EVENTS, ids=lambda spec: spec.name)
async def test_every_field_at_its_boundaries(fuzz: Fuzz, case: Case, spec: EventSpec):
    last = ""
    for where, payload in sweep(spec, case):
        if where != last and last:
            await fuzz.still_standing(spec, f"(after {last})", state=False)
        last = where
        await fuzz.call(spec, payload)
    await fuzz.still_standing(spec, f"(after {last})")


# -- hypothesis ------------------------------------------------------------------------------

@in_module_loop
@pytest.mark.parametrize("spec", EVENTS, ids=lambda spec: spec.name)
@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(data=st.data())
async def test_generated_payloads(fuzz: Fuzz, case: Case, spec: EventSpec, data):
    payload = data.draw(payloads(spec, case.valid, case.pools), label="payload")
    await fuzz.call(spec, payload)
    await fuzz.still_standing(spec)


# -- bursts ----------------------------------------------------------------------------------

BURSTING = [spec for spec in EVENTS if spec.name not in SESSION_EVENTS]


@in_module_loop
@settings(max_examples=EXAMPLES * 4, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(data=st.data())
async def test_concurrent_bursts(fuzz: Fuzz, data):
    """Two to five events at once on the caller's socket, on the same fresh resources
    (python-socketio runs each event as its own task): deletes racing reads, writes and
    imports. Mostly valid samples, so the handlers' own work overlaps."""
    await fuzz.world.ensure_captures()
    res = await fuzz.world.build("P")
    calls = []
    for _ in range(data.draw(st.integers(2, 5), label="size")):
        spec = data.draw(st.sampled_from(BURSTING), label="event")
        valid = sample(spec, res)
        pools = Pools(res, fuzz.theirs, SPARED.get(spec.name, set()))
        payload = data.draw(st.just(valid) | payloads(spec, valid, pools), label="payload")
        calls.append((spec, payload))
    await asyncio.gather(*[fuzz.call(spec, payload) for spec, payload in calls])
    await fuzz.still_standing(calls[0][0], f"(after {[s.name for s, _ in calls]})")
