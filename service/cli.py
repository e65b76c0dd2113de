"""`chatkit-backend serve | migrate | check-config | feedback | prune`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from service import __version__
from service.settings import ConfigurationError, Settings, load_settings

if TYPE_CHECKING:
    from service.chatkit.store import ChatStore


COMMANDS: dict[str, str] = {
    "serve": "Run the HTTP server (Hypercorn) until SIGTERM or Ctrl+C.",
    "migrate": "Create or upgrade the database schema.",
    "check-config": "Print the effective configuration with secrets masked.",
    "feedback": "Print recorded feedback as JSON lines, newest first.",
    "prune": "Delete threads inactive for longer than an age, with their items, feedback and "
    "attachment records.",
}
"""Each command with the one sentence that `--help` shows for it."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatkit-backend",
        description="A ChatKit backend: the HTTP server and the commands that look after its "
        "database. Settings come from the environment (see check-config).",
    )
    parser.add_argument("--version", action="version", version=f"chatkit-backend {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, title="commands", metavar="COMMAND"
    )

    def command(name: str, details: str = "") -> argparse.ArgumentParser:
        summary = COMMANDS[name]
        return commands.add_parser(name, help=summary, description=f"{summary} {details}".strip())

    serve = command("serve")
    serve.add_argument("--host", help="overrides HOST")
    serve.add_argument("--port", type=int, help="overrides PORT")
    serve.add_argument("--workers", type=int, help="overrides WORKERS")

    command("migrate")
    command("check-config")

    feedback = command("feedback")
    feedback.add_argument("--thread", help="only this thread")
    feedback.add_argument("--tenant", help="only this tenant")
    feedback.add_argument("--days", type=float, default=None, help="only the last N days")
    feedback.add_argument("--limit", type=int, default=1000)

    prune = command("prune", "Safe while serving; run it again to finish an interrupted run.")
    prune.add_argument(
        "--older-than",
        type=_age,
        metavar="AGE",
        help="e.g. 30d, 12h or 90m; default: RETENTION_DAYS (required when that is unset)",
    )
    prune.add_argument(
        "--batch-size", type=_batch_size, default=500, help="threads per transaction (500)"
    )
    return parser


def configure_basic_logging(settings: Settings) -> None:
    from service.observability.logging import configure_logging

    configure_logging(settings)  # JSON lines on stdout (LOG_FORMAT), secrets redacted


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
        return _serve(settings)
    if args.command == "check-config":
        return _check_config(settings)
    if args.command == "migrate":
        return _store_command("migrate", _migrate(settings))
    if args.command == "feedback":
        return _store_command("feedback", _feedback(settings, args))
    if args.command == "prune":
        return _store_command("prune", _prune(settings, args))
    raise AssertionError(args.command)


def _serve(settings: Settings) -> int:
    from service.listening import ServeError
    from service.serving import serve

    try:
        return serve(settings)
    except ServeError as exc:
        print(f"chatkit-backend serve: {exc}", file=sys.stderr)
        return 1


def _store_command(name: str, command: Coroutine[Any, Any, int]) -> int:
    """Run a command that uses the database; its failures are one line and exit code 1."""
    from service.chatkit.store import StoreConfigurationError, StoreUnavailableError

    try:
        return asyncio.run(command)
    except (StoreUnavailableError, StoreConfigurationError) as exc:
        print(f"chatkit-backend {name}: {exc}", file=sys.stderr)
        return 1


@asynccontextmanager
async def _open_store(settings: Settings, *, migrate: bool) -> AsyncIterator[ChatStore]:
    from service.chatkit.store import create_store

    store = create_store(settings)
    await store.open(migrate=migrate)
    try:
        yield store
    finally:
        await store.close()


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
    since = datetime.now(UTC) - timedelta(days=args.days) if args.days else None
    async with _open_store(settings, migrate=settings.database_auto_migrate) as store:
        records = await store.load_feedback(
            thread_id=args.thread, tenant_id=args.tenant, since=since, limit=args.limit
        )
    if not records:
        print("chatkit-backend feedback: no feedback recorded matches", file=sys.stderr)
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


def _age(text: str) -> timedelta:
    from service.chatkit.store.retention import parse_age

    try:
        return parse_age(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _batch_size(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 10000")
    return int(text)


async def _prune(settings: Settings, args: argparse.Namespace) -> int:
    age: timedelta | None = args.older_than
    if age is None and settings.retention_days is not None:
        age = timedelta(days=settings.retention_days)
    if age is None:
        print(
            "chatkit-backend prune: give --older-than (e.g. 30d) or set RETENTION_DAYS",
            file=sys.stderr,
        )
        return 2
    cutoff = datetime.now(UTC) - age
    async with _open_store(settings, migrate=settings.database_auto_migrate) as store:
        # No attachment store keeps bytes yet; once one does, pass its deleter here.
        report = await store.prune(cutoff, batch_size=args.batch_size)
    print(
        f"pruned {report.threads} thread(s) inactive since before {cutoff.isoformat()}: "
        f"{report.items} item(s), {report.feedback} feedback row(s), "
        f"{len(report.attachment_ids)} attachment record(s), in {report.batches} batch(es)"
    )
    return 0
