"""``python -m server [serve | create-admin EMAIL | events | asyncapi]``."""
from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import secrets
import sys

from services.config import ConfigError, Settings

LISTEN_BACKLOG = 4096


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run one instance (the default)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    admin = sub.add_parser("create-admin", help="create the first admin, or promote a user")
    admin.add_argument("email")
    admin.add_argument("--password-stdin", action="store_true",
                       help="read the password from standard input")
    sub.add_parser("events", help="print the event catalogue as Markdown")
    sub.add_parser("asyncapi", help="print the AsyncAPI 3.0 document (as GET /asyncapi.json "
                                    "serves it with this configuration)")
    args = parser.parse_args(argv)

    if args.command == "events":
        import handlers
        from server.catalogue import render

        sys.stdout.write(render(handlers.all_events()))
        return 0
    try:
        overrides = {k: v for k, v in (("host", getattr(args, "host", None)),
                                       ("port", getattr(args, "port", None))) if v}
        settings = Settings.from_env(**overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "asyncapi":
        import handlers
        from server.asyncapi import document_json

        sys.stdout.write(document_json(tuple(handlers.all_events()), settings))
        return 0
    if args.command == "create-admin":
        return asyncio.run(_create_admin(settings, args.email, args.password_stdin))
    return _serve(settings)


def _serve(settings: Settings) -> int:
    from aiohttp import web

    from server import gc_pacing
    from server.app import CLOCK, create_app
    from server.drain import drain_on_sigterm
    from server.logs import setup_logging

    setup_logging(settings.log_level, settings.instance_id)
    app = create_app(settings)
    drain_on_sigterm(app)
    gc_pacing.pace(app, app[CLOCK])
    where = "MongoDB" if settings.mongo_url else f"SQLite under {settings.data_dir.resolve()}"
    mode = (f"Redis at {settings.redis_url}" if settings.redis_url
            else "in-process (single instance)")
    print(f"collab server {settings.instance_id}: http://{settings.host}:{settings.port}/  "
          f"store: {where}; Socket.IO manager: {mode}", flush=True)
    # backlog: aiohttp's default (128) overflows when thousands of clients reconnect at
    # once (a deploy, a dead instance): the kernel drops their SYNs and they retry after
    # 1 s, 3 s, … — everyone, /health included, sees seconds. The kernel caps it at somaxconn.
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None,
                shutdown_timeout=5,  # after the drain: sockets have moved off by then
                backlog=LISTEN_BACKLOG)
    return 0


async def _create_admin(settings: Settings, email: str, from_stdin: bool) -> int:
    from handlers.auth import EMAIL
    from services.security import PasswordHasher, check_password_policy
    from store.errors import EventError
    from store.factory import open_store

    if not EMAIL.match(email):
        print(f"error: {email!r} is not a valid email address", file=sys.stderr)
        return 2
    store = await open_store(data_dir=settings.data_dir, mongo_url=settings.mongo_url,
                             mongo_db=settings.mongo_db)
    try:
        existing = await store.users.get_user_by_email(email)
        if existing:
            await store.users.update_user(existing.id, role="admin")
            print(f"{email} is now an admin")
            return 0
        generated = False
        if from_stdin:
            password = sys.stdin.readline().rstrip("\n")
        elif os.environ.get("ADMIN_PASSWORD"):
            password = os.environ["ADMIN_PASSWORD"]
        elif sys.stdin.isatty():
            password = getpass.getpass("Password for the admin: ")
        else:
            password, generated = secrets.token_urlsafe(18), True
        try:
            check_password_policy(password)
        except EventError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        digest = await PasswordHasher(settings.bcrypt_rounds).hash(password)
        await store.users.create_user(email=email, username=email.split("@")[0][:24] + "-admin",
                                      password_hash=digest, role="admin")
        print(f"created admin {email}" + (f" with password: {password}" if generated else ""))
        return 0
    finally:
        await store.close()
