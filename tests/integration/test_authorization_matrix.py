"""The authorization matrix, generated from the event registry (``handlers.all_events()``).

Every event is called, through a real server and real Socket.IO clients, as each of:

* ``anonymous`` — connected, not signed in;
* ``stranger`` — registered, member of nothing;
* ``guest`` — ``auth:guest``, member of nothing;
* ``admin`` — site admin (role ``admin`` in the store), not a member of P;
* ``viewer``, ``editor``, ``owner`` — members of project P with those roles;

against the resources of P (the callers' own project) and of Q (another user's project, no
caller a member). What each call must answer follows from who may call the event — pinned in
``POLICY`` and checked against the ``@event`` declarations, so that changing an event's role
is a deliberate, reviewed edit here — and from the resource kind its scope names:

* not callable by anyone, and anonymous → ``unauthorized``;
* a scope, and a caller who is not a member of the resource's project (every caller on Q;
  stranger, guest and admin on P) → ``not_found`` naming the resource kind ("table not
  found"); for ``InRoom`` → ``forbidden`` (join the project first);
* a member with a lower role than the scope's → ``forbidden`` (needs the … role);
* a member with enough role → past authorization: ``ok``, or an error that is none of
  unauthorized / forbidden / the scope's own not_found (and not bad_request or internal,
  which would mean the sample payload is wrong); except where a handler documents a rule of
  its own on top of the scope (``RULES``).

Every refused call must change nothing: the embedded SQLite file (every table, read with a
separate connection) and the blob directory are compared before and after it.

Each scoped event needs a valid payload in ``SAMPLES`` (so authorization is the only reason to
refuse); a new event without one fails ``test_every_event_has_a_valid_sample``. Resources
are rebuilt for every event and between allowed calls, so destructive calls (deletes, member
removal) never disturb later checks.

Also checked: another project's resource is refused exactly like an id that does not exist
(``ids reveal nothing``, handlers/scopes.py), and the handler rules' permitted side.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import pytest
import pytest_asyncio
from pydantic import ValidationError

from handlers import all_events
from handlers.base import EventSpec
from handlers.scopes import InRoom, Scope
from store.base import role_at_least
from store.ids import new_id
from tests.world import SAMPLES, Res, World, describe_change, open_world, sample

in_module_loop = pytest.mark.asyncio(loop_scope="module")  # the world's loop

EVENTS: list[EventSpec] = all_events()
SPECS: dict[str, EventSpec] = {spec.name: spec for spec in EVENTS}

# The callers, in the order their calls are made (refusals first, see ``_run_scoped``), and
# their role in P (the own project). Nobody but Q's owner is a member of Q.
CALLERS = ("anonymous", "stranger", "guest", "admin", "viewer", "editor", "owner")
ROLE_IN_P: dict[str, str | None] = {"anonymous": None, "stranger": None, "guest": None,
                                    "admin": None, "viewer": "viewer", "editor": "editor",
                                    "owner": "owner"}
TARGETS = ("P", "Q")


# The reviewed policy: who may call each event — "anyone", "signed in", or the project role a
# scoped event needs on its resource ("viewer" < "editor" < "owner"; project:broadcast's is the
# role project:join checks). Pinned here, apart from the ``@event`` declarations the matrix is
# generated from, so that a changed role, a dropped scope or a dropped ``auth`` fails the
# matrix until this table is changed on purpose (and the change is reviewed).
POLICY: dict[str, str] = {
    "auth:register": "anyone", "auth:login": "anyone", "auth:guest": "anyone",
    "auth:refresh": "anyone", "auth:logout": "signed in", "auth:me": "signed in",
    "auth:update": "signed in",
    "auth:upgrade": "signed in",
    "admin:users": "admin", "admin:user:update": "admin", "admin:user:delete": "admin",
    "admin:metrics": "admin", "admin:audit": "admin",
    "project:list": "signed in", "project:create": "signed in", "project:get": "viewer",
    "project:update": "owner", "project:delete": "owner", "project:join": "viewer",
    "project:leave": "signed in", "project:member:add": "owner",
    "project:member:remove": "viewer", "project:broadcast": "viewer",
    "file:list": "viewer", "file:delete": "editor",
    "table:create": "editor", "table:list": "viewer", "table:get": "viewer",
    "table:rename": "editor", "table:delete": "owner", "table:import": "editor",
    "table:history": "viewer", "table:restore": "editor",
    "table:rows": "viewer", "row:get": "viewer", "row:add": "editor", "row:update": "editor",
    "row:delete": "editor", "row:lock": "editor", "row:unlock": "editor",
    "row:heartbeat": "editor", "row:history": "viewer", "row:restore": "editor",
    "ticker:subscribe": "signed in", "ticker:unsubscribe": "signed in",
    "conversation:create": "editor", "conversation:list": "viewer",
    "conversation:get": "viewer", "conversation:rename": "editor",
    "conversation:delete": "editor", "conversation:join": "viewer",
    "conversation:leave": "signed in", "message:send": "editor", "message:cancel": "editor",
    "pcap:ingest": "editor", "pcap:cancel": "editor", "pcap:summary": "viewer",
    "pcap:protocols": "viewer", "pcap:conversations": "viewer", "pcap:endpoints": "viewer",
    "pcap:io": "viewer", "pcap:sizes": "viewer", "pcap:packets": "viewer",
    "pcap:packet": "viewer", "pcap:follow": "viewer",
    "chat:import": "editor", "chat:import:cancel": "editor", "chat:import:status": "viewer",
    "chat:list": "viewer",
    "chat:get": "viewer", "chat:messages": "viewer", "chat:rename": "editor",
    "chat:delete": "editor", "chat:search": "viewer",
    "ping": "anyone", "sync": "signed in",
}
PROJECT_ROLES = ("viewer", "editor", "owner")


def declared(spec: EventSpec) -> str:
    """The registry's answer to the question POLICY answers."""
    if not spec.auth:
        return "anyone"
    if spec.admin:
        return "admin"
    return spec.scope.role if spec.scope is not None else "signed in"


# Rules handlers add on top of their scope (each documented in the handler's docstring): a
# member whose role satisfies the scope is still refused, ``forbidden`` with this message.
RULES: dict[str, dict[str, str]] = {
    # the conversation was created by P's owner: an editor is neither creator nor owner
    "conversation:delete": {"editor": "only the conversation's creator or a project owner"},
    # the sample removes another member: only owners may
    "project:member:remove": {"viewer": "only owners remove other members",
                              "editor": "only owners remove other members"},
    # the sample breaks the lock with force: only owners may
    "row:unlock": {"editor": "only project owners can break"},
}


# -- what each call must answer ------------------------------------------------------------

@dataclass(frozen=True)
class Expect:
    code: str | None  # None: the call gets past authorization
    message: str = ""  # the refusal's message contains this
    exact: bool = False  # … or is exactly this
    why: str = ""

    @property
    def refused(self) -> bool:
        return self.code is not None


PASS = Expect(None, why="allowed")


def expect(spec: EventSpec, caller: str, target: str) -> Expect:
    """The answer the policy promises to ``caller`` acting on ``target``'s resources (the
    resource kind named by a refusal comes from the event's scope)."""
    access = POLICY[spec.name]
    if access == "anyone":
        return PASS
    if caller == "anonymous":
        return Expect("unauthorized", why="auth event, not signed in")
    if access == "admin":
        return PASS if caller == "admin" else Expect("forbidden", "admins only", why="admins")
    if access == "signed in":
        return PASS
    scope = spec.scope
    assert scope is not None, f"{spec.name}: the policy gives it a scope; it has none"
    role = ROLE_IN_P[caller] if target == "P" else None
    if isinstance(scope, InRoom):
        if role is None or not role_at_least(role, access):
            return Expect("forbidden", "join the project", why="not in the project's room")
        return PASS
    if role is None:
        return Expect("not_found", scope_not_found(scope), exact=True, why="not a member")
    if not role_at_least(role, access):
        return Expect("forbidden", f"needs the {access} role", why=f"{role} < {access}")
    rule = RULES.get(spec.name, {}).get(caller)
    if rule:
        return Expect("forbidden", rule, why="handler rule")
    return PASS


def scope_not_found(scope: Scope) -> str:
    return f"{scope.kind} not found"


def judge(spec: EventSpec, exp: Expect, ack: dict) -> str | None:
    """What is wrong with ``ack`` (None: nothing)."""
    if not isinstance(ack, dict) or "ok" not in ack:
        return f"not an ack: {ack!r}"
    err = ack.get("error") or {}
    code, message = err.get("code"), err.get("message", "")
    if exp.refused:
        if ack["ok"]:
            return f"expected {exp.code} ({exp.why}), got ok"
        if code != exp.code:
            return f"expected {exp.code} ({exp.why}), got {code}: {message}"
        if exp.exact and message != exp.message:
            return f"expected {exp.code} {exp.message!r} ({exp.why}), got {message!r}"
        if not exp.exact and exp.message not in message:
            return f"expected {exp.code} mentioning {exp.message!r} ({exp.why}), got {message!r}"
        return None
    if ack["ok"]:
        return None
    if code in ("unauthorized", "token_expired", "forbidden"):
        return f"allowed call refused: {code}: {message}"
    if spec.scope is not None and code == "not_found" and message == scope_not_found(spec.scope):
        return f"allowed call refused as invisible: {message}"
    if spec.scope is not None and code in ("bad_request", "internal"):
        return f"allowed call failed ({code}: {message}): fix its sample payload"
    return None


def matrix_report(w: World) -> str:
    """The answers seen, one line per event (shown with ``pytest -s``)."""
    by_event: dict[str, list[str]] = {}
    for event, caller, target, answer in w.outcomes:
        by_event.setdefault(event, []).append(f"{caller}@{target}={answer}")
    lines = [f"authorization matrix: {w.calls} calls, {w.refusals_checked} refusals checked "
             "against a store snapshot"]
    lines += [f"  {event}: {' '.join(cells)}" for event, cells in by_event.items()]
    return "\n".join(lines)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory):
    # No background writer may run while a refusal is being checked (see open_world).
    async with open_world(tmp_path_factory.mktemp("authz")) as w:
        yield w
        print(matrix_report(w))


# -- the matrix ----------------------------------------------------------------------------

async def _refusal(w: World, spec: EventSpec, caller: str, target: str, payload: dict,
                   exp: Expect, problems: list[str]) -> bool:
    """One call that must be refused and must leave the store as it was; whether it did."""
    label = f"{spec.name} as {caller} on {target}"
    before = w.snapshot()
    ack = await w.call(w.clients[caller], spec.name, payload, caller, target)
    after = w.snapshot()
    w.refusals_checked += 1
    wrong = judge(spec, exp, ack)
    if wrong:
        problems.append(f"{label}: {wrong}")
    if before != after:
        problems.append(f"{label}: refused call changed the store: "
                        f"{describe_change(before, after)}")
        await w.quiesce()
        return False
    return True


async def _run_unscoped(w: World, spec: EventSpec) -> list[str]:
    """Events without a scope: anonymous is refused unless anyone may call; a caller who may
    gets past authorization, on a socket of its own (sign-in, logout and upgrade change the
    socket's session)."""
    problems: list[str] = []
    scratch = Res(w)
    access = POLICY[spec.name]
    refused = ["anonymous"] if access != "anyone" else []
    if access == "admin":
        refused += [c for c in CALLERS if c not in ("anonymous", "admin")]
    for caller in refused:
        await _refusal(w, spec, caller, "-", sample(spec, scratch),
                       expect(spec, caller, "P"), problems)
    if access == "admin":
        who, client = "admin", w.clients["admin"]
    else:
        who = "anonymous" if access == "anyone" else "signed-in"
        client = await w.client(who, register=access != "anyone")
        w.extra_clients.append(client)
    ack = await w.call(client, spec.name, sample(spec, scratch), who, "-")
    wrong = judge(spec, PASS, ack)
    if wrong:
        problems.append(f"{spec.name} as {who}: {wrong}")
    if client is not w.clients.get(who):
        await client.close()
    await w.quiesce()
    return problems


async def _run_scoped(w: World, spec: EventSpec) -> list[str]:
    problems: list[str] = []
    res = {"P": await w.build("P"), "Q": await w.build("Q")}
    cases = [(caller, target, expect(spec, caller, target))
             for caller in CALLERS for target in TARGETS]
    refusals = [c for c in cases if c[2].refused]
    allowed = [c for c in cases if not c[2].refused]
    for caller, target, exp in refusals:
        if not await _refusal(w, spec, caller, target, sample(spec, res[target]), exp,
                              problems):
            res[target] = await w.build(target)  # so one wrong answer does not cascade
    for i, (caller, target, exp) in enumerate(allowed):
        assert target == "P"
        if i:  # the previous call may have deleted or changed what this one needs
            await w.quiesce()
            res[target] = await w.build(target)
        client = w.clients[caller]
        if isinstance(spec.scope, InRoom):
            await client.ok("project:join", {"id": res[target].project})
        ack = await w.call(client, spec.name, sample(spec, res[target]), caller, target)
        wrong = judge(spec, exp, ack)
        if wrong:
            problems.append(f"{spec.name} as {caller} on {target}: {wrong}")
    await w.quiesce()
    return problems


@in_module_loop
@pytest.mark.parametrize("spec", EVENTS, ids=lambda spec: spec.name)
async def test_event_answers_as_declared(world: World, spec: EventSpec):
    assert spec.name in POLICY, f"{spec.name} is not in POLICY: say who may call it"
    scoped = POLICY[spec.name] in PROJECT_ROLES
    assert scoped == (spec.scope is not None), (
        f"{spec.name}: POLICY says {POLICY[spec.name]!r}, the declaration {declared(spec)!r}")
    if scoped:
        problems = await _run_scoped(world, spec)
    else:
        problems = await _run_unscoped(world, spec)
    assert not problems, (f"{spec.name} (policy: {POLICY[spec.name]}; declared: "
                          f"{spec.access}):\n  " + "\n  ".join(problems))


@in_module_loop
@pytest.mark.parametrize("spec", [s for s in EVENTS if s.scope is not None],
                         ids=lambda spec: spec.name)
async def test_invisible_resource_answers_like_a_missing_one(world: World, spec: EventSpec):
    """"ids reveal nothing": another project's resource and an id that does not exist get the
    same refusal, so a caller cannot probe which ids exist."""
    assert spec.scope is not None
    res = await world.build("Q")
    invisible = sample(spec, res)
    missing = {**invisible, spec.scope.field: new_id()}
    client = world.clients["stranger"]
    a = await world.call(client, spec.name, invisible)
    b = await world.call(client, spec.name, missing)
    assert not a["ok"] and not b["ok"], (a, b)
    seen = (a["error"]["code"], a["error"]["message"], a["error"].get("details"))
    ghost = (b["error"]["code"], b["error"]["message"], b["error"].get("details"))
    assert seen == ghost, (f"{spec.name}: an existing resource of another project answers "
                           f"{seen}, a missing id answers {ghost}")


@in_module_loop
async def test_handler_rules_allow_what_their_docstrings_promise(world: World):
    """The other side of ``RULES``: the conversation's creator (an editor) may delete it, any
    member may leave a project, an owner may break a lock someone else holds."""
    w, c = world, world.clients
    res = await w.build("P")
    conv = await c["editor"].ok("conversation:create", {"projectId": res.project})
    assert await c["editor"].ok("conversation:delete", {"id": conv["id"]}) == {"id": conv["id"]}
    conv = await c["editor"].ok("conversation:create", {"projectId": res.project})
    await w.store.projects.set_member(res.project, w.ids["editor"], "viewer")
    err = await c["editor"].err("conversation:delete", {"id": conv["id"]})
    assert err["code"] == "forbidden"  # the creator, but no longer an editor
    await w.store.projects.set_member(res.project, w.ids["editor"], "editor")

    lock = await c["editor"].ok("row:lock", {"tableId": res.table, "rowId": res.row})
    assert lock["lockToken"]
    assert (await c["editor"].err("row:unlock", {"tableId": res.table, "rowId": res.row,
                                                 "force": True}))["code"] == "forbidden"
    assert await c["owner"].ok("row:unlock", {"tableId": res.table, "rowId": res.row,
                                              "force": True}) == {"released": True}

    await c["viewer"].ok("project:member:remove", {"id": res.project,
                                                   "userId": w.ids["viewer"]})
    err = await c["viewer"].err("project:get", {"id": res.project})
    assert (err["code"], err["message"]) == ("not_found", "project not found")
    await w.quiesce()


def test_declarations_match_the_policy():
    """Each event's declaration says what POLICY says (the catalogue's "who may call"
    column comes from the declarations): a change to either must be made to both."""
    assert set(POLICY) == set(SPECS), (
        f"events missing from POLICY: {sorted(set(SPECS) - set(POLICY))}; "
        f"POLICY entries of no event: {sorted(set(POLICY) - set(SPECS))}")
    differ = {name: (POLICY[name], declared(spec)) for name, spec in SPECS.items()
              if POLICY[name] != declared(spec)}
    assert not differ, f"(policy, declaration) differ: {differ}"


def test_every_event_has_a_validsample():
    """A new scoped event without a sample payload fails here, and so does a sample that
    its event's payload model refuses or one left behind by a removed event."""
    scoped = {s.name for s in EVENTS if s.scope is not None}
    assert not scoped - set(SAMPLES), f"events without a sample: {sorted(scoped - set(SAMPLES))}"
    stale = sorted(set(SAMPLES) - set(SPECS))
    assert not stale, f"samples of no event: {stale}"
    assert not set(RULES) - scoped, f"rules of no scoped event: {sorted(set(RULES) - scoped)}"

    class _Stub:  # what samples read of the world, without a server
        login_email = "someone@example.com"

        @staticmethod
        def take_refresh_token() -> str:
            return "r" * 43

    ids = {f: new_id() for f in ("project", "table", "row", "file", "capture", "conversation",
                                 "generating", "chat", "export", "member")}
    res = Res(cast(World, _Stub()), outsider_email="outsider@example.com", **ids)
    bad = []
    for spec in EVENTS:
        payload = sample(spec, res)
        try:
            spec.model.model_validate(payload)
        except ValidationError as exc:
            bad.append(f"{spec.name}: {exc.errors(include_url=False)}")
        if spec.scope is not None and payload.get(spec.scope.field) in (None, ""):
            if not isinstance(spec.scope, InRoom):
                bad.append(f"{spec.name}: sample does not set the scope field {spec.scope.field}")
    assert not bad, "\n".join(bad)
