"""A session ended on one instance ends on every instance (issue 16 G): the revocation
travels on the Redis bus; the other instance disconnects its sockets with auth:revoked and
refuses the token on connect and on REST."""
from __future__ import annotations

from tests.client import eventually, unique_email
from tests.files_helpers import upload


async def test_logout_on_one_instance_disconnects_the_session_on_the_other(cluster, connect):
    one, two = cluster.instances[0].url, cluster.instances[1].url
    email = unique_email()
    here = await connect(one, name="laptop@0")
    await here.register(email, "correct horse")
    project = await here.ok("project:create", {"name": "p"})
    there = await connect(two, token=here.tokens["accessToken"], name="tab@1")
    other = await connect(two, name="phone@1")
    await other.ok("auth:login", {"email": email, "password": "correct horse"})

    await here.ok("auth:logout", {"refreshToken": here.tokens["refreshToken"]})
    assert (await there.wait_for("auth:revoked")) == {"reason": "logout"}
    await eventually(lambda: not there.sio.connected)

    token = here.tokens["accessToken"]
    status, body = await upload(two, token, project["id"], b"x")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    late = await connect(two, name="late@1")
    refused = await late.err("auth:me")  # anonymous: and the old token cannot connect
    assert refused["code"] == "unauthorized"
    import socketio
    sio = socketio.AsyncClient(reconnection=False)
    errors: list = []
    sio.on("connect_error", lambda data: errors.append(data))
    try:
        await sio.connect(two, auth={"token": token}, transports=["websocket"])
    except socketio.exceptions.ConnectionError:
        pass
    assert errors and errors[0]["data"]["details"]["reason"] == "revoked"
    await sio.disconnect()
    # The other sign-in goes on, on both instances.
    assert other.sio.connected and (await other.ok("auth:me"))["email"] == email
