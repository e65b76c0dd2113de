"""`chatkit-backend serve | migrate | check-config | feedback | prune | delete-user |
export-user | import-directory`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service import __version__
from service.settings import ConfigurationError, Settings, load_settings

if TYPE_CHECKING:
    from service.agents.tools.records import EmployeeRecord
    from service.chatkit.store import ChatStore
    from service.chatkit.store.retention import AttachmentsPruned


COMMANDS: dict[str, str] = {
    "serve": "Run the HTTP server (Hypercorn) until SIGTERM or Ctrl+C.",
    "migrate": "Create or upgrade the database schema.",
    "check-config": "Print the effective configuration with secrets masked.",
    "feedback": "Print recorded feedback as JSON lines, newest first.",
    "prune": "Delete threads inactive for longer than an age, with their items, feedback and "
    "attachment records.",
    "delete-user": "Delete everything stored for one user of one tenant: threads, items, "
    "attachments and feedback.",
    "export-user": "Print everything stored for one user of one tenant as JSON lines.",
    "import-directory": "Load an employee directory file (CSV with a header row, or JSON "
    "lines) into the database, replacing the records it names.",
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

    for name, details in (
        ("delete-user", "Batched and idempotent: run it again to finish an interrupted run."),
        (
            "export-user",
            "Threads oldest first, each followed by its items; then attachment "
            "records and feedback.",
        ),
    ):
        rights = command(name, details)
        rights.add_argument("--tenant", required=True, type=_identity, help="the tenant id")
        rights.add_argument("--user", required=True, type=_identity, help="the user id")
        if name == "delete-user":
            rights.add_argument(
                "--batch-size", type=_batch_size, default=500, help="rows per transaction (500)"
            )

    directory = command(
        "import-directory",
        "Fields: tenant_id, employee_id, name, email (required), department, title, "
        "manager_id, location, salary_band, personal_phone. All or nothing: a bad row stops "
        "the import with its line number.",
    )
    directory.add_argument("file", metavar="FILE", type=Path, help="the directory file")
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
    if args.command == "delete-user":
        return _store_command("delete-user", _delete_user(settings, args))
    if args.command == "export-user":
        return _store_command("export-user", _export_user(settings, args))
    if args.command == "import-directory":
        return _import_directory(settings, args.file)
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
        report = await store.prune(
            cutoff,
            batch_size=args.batch_size,
            on_attachments=_attachment_bytes_deleter(settings),
            orphans_older_than=datetime.now(UTC) - orphan_age(settings),
        )
    print(
        f"pruned {report.threads} thread(s) inactive since before {cutoff.isoformat()}: "
        f"{report.items} item(s), {report.feedback} feedback row(s), "
        f"{len(report.attachment_ids)} attachment record(s), in {report.batches} batch(es)"
    )
    return 0


def orphan_age(settings: Settings) -> timedelta:
    """Uploads never attached to a message are pruned after `ATTACHMENT_ORPHAN_HOURS`, but
    never while their upload link could still be used."""
    return max(
        timedelta(hours=settings.attachment_orphan_hours),
        timedelta(seconds=settings.attachments_link_seconds),
    )


def _identity(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _attachment_bytes_deleter(settings: Settings) -> AttachmentsPruned | None:
    """What deletes the bytes of deleted attachment records (None: uploads are off)."""
    from service.chatkit.attachments.pruning import bytes_deleter

    return bytes_deleter(settings)


async def _delete_user(settings: Settings, args: argparse.Namespace) -> int:
    async with _open_store(settings, migrate=settings.database_auto_migrate) as store:
        report = await store.delete_user(
            args.tenant,
            args.user,
            batch_size=args.batch_size,
            on_attachments=_attachment_bytes_deleter(settings),
        )
    print(
        f"deleted user {args.user!r} of tenant {args.tenant!r}: {report.threads} thread(s), "
        f"{report.items} item(s), {report.feedback} feedback row(s), "
        f"{len(report.attachment_ids)} attachment record(s), in {report.batches} batch(es)"
    )
    return 0


async def _export_user(settings: Settings, args: argparse.Namespace) -> int:
    records = 0
    async with _open_store(settings, migrate=settings.database_auto_migrate) as store:
        async for record in store.export_user(args.tenant, args.user):
            print(json.dumps(record))
            records += 1
    if records == 0:
        print("chatkit-backend export-user: nothing is stored for that user", file=sys.stderr)
    return 0


def _import_directory(settings: Settings, path: Path) -> int:
    from service.agents.tools.directory_file import DirectoryFileError, read_directory

    try:
        employees = read_directory(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        print(f"chatkit-backend import-directory: cannot read {path}: {exc}", file=sys.stderr)
        return 1
    except DirectoryFileError as exc:
        print(f"chatkit-backend import-directory: {path}: {exc}; nothing imported", file=sys.stderr)
        return 1
    return _store_command("import-directory", _save_directory(settings, path, employees))


async def _save_directory(settings: Settings, path: Path, employees: list[EmployeeRecord]) -> int:
    async with _open_store(settings, migrate=settings.database_auto_migrate) as store:
        count = await store.upsert_employees(employees)
    print(f"imported {count} employee record(s) from {path}")
    return 0
