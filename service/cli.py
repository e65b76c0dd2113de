"""`chatkit-backend serve | migrate | check-config | feedback`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from service import __version__
from service.settings import ConfigurationError, Settings, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatkit-backend", description=__doc__)
    parser.add_argument("--version", action="version", version=f"chatkit-backend {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server (Hypercorn)")
    serve.add_argument("--host", help="overrides HOST")
    serve.add_argument("--port", type=int, help="overrides PORT")
    serve.add_argument("--workers", type=int, help="overrides WORKERS")

    commands.add_parser("migrate", help="create or upgrade the database schema")
    commands.add_parser("check-config", help="print the effective configuration, secrets masked")

    feedback = commands.add_parser("feedback", help="print recorded feedback as JSON lines")
    feedback.add_argument("--thread", help="only this thread")
    feedback.add_argument("--tenant", help="only this tenant")
    feedback.add_argument("--days", type=float, default=None, help="only the last N days")
    feedback.add_argument("--limit", type=int, default=1000)
    return parser


def configure_basic_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {
        key: value
        for key in ("host", "port", "workers")
        if (value := getattr(args, key, None)) is not None
    }
    try:
        settings = load_settings(**overrides)
    except ConfigurationError as exc:
        print(f"chatkit-backend: {exc}", file=sys.stderr)
        return 2
    configure_basic_logging(settings)

    if args.command == "serve":
        from service.serving import serve

        return serve(settings)
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command == "check-config":
        return _check_config(settings)
    if args.command == "feedback":
        return asyncio.run(_feedback(settings, args))
    raise AssertionError(args.command)


async def _migrate(settings: Settings) -> int:
    from service.chatkit.store import create_store

    store = create_store(settings)
    status = await store.open(migrate=True)
    await store.close()
    applied = ", ".join(str(v) for v in status.applied) or "none"
    print(f"schema at version {status.current} (latest {status.latest}); applied: {applied}")
    return 0


def _check_config(settings: Settings) -> int:
    from service.agents.factory import create_model

    print(json.dumps(settings.masked(), indent=2, sort_keys=True))
    model = create_model(settings)
    if model.unavailable_reason:
        print(f"warning: {model.unavailable_reason}", file=sys.stderr)
    return 0


async def _feedback(settings: Settings, args: argparse.Namespace) -> int:
    from service.chatkit.store import create_store

    store = create_store(settings)
    await store.open(migrate=settings.database_auto_migrate)
    try:
        since = datetime.now(UTC) - timedelta(days=args.days) if args.days else None
        records = await store.load_feedback(
            thread_id=args.thread, tenant_id=args.tenant, since=since, limit=args.limit
        )
    finally:
        await store.close()
    for record in records:
        print(
            json.dumps(
                {
                    "thread_id": record.thread_id,
                    "item_id": record.item_id,
                    "kind": record.kind,
                    "tenant_id": record.tenant_id,
                    "user_id": record.user_id,
                    "created_at": record.created_at.isoformat(),
                }
            )
        )
    return 0
