"""Runs the app under Hypercorn, in this process or in several worker processes.

The listening sockets are bound first, before anything else is opened: a busy port or an
unusable HOST ends `serve` with one line and exit code 1 (an open store's worker thread would
otherwise keep the failed process alive). A failure while the app starts (an unusable database,
...) also ends it with one line and exit code 1; the supervisor does not restart workers that
fail at start-up.

Shutdown: the first SIGTERM (or SIGINT) starts a drain (see `service.lifecycle`): readiness off,
new streams refused, open streams given SHUTDOWN_DRAIN_SECONDS. Only then does Hypercorn stop
listening and close connections, so its own short `graceful_timeout` never cuts a stream. A
second signal interrupts the remaining streams at once.

`service.app` (and with it prometheus_client) is imported only inside the worker, after
`prepare_metrics_directory()` has exported the multiprocess directory.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.queues
import shutil
import signal
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import LifespanFailureError, wrap_app

from service.lifecycle import Lifecycle
from service.listening import ServeError, bind_sockets
from service.observability.logging import configure_logging
from service.observability.multiprocess import forget_worker, prepare_metrics_directory
from service.observability.redaction import Redactor
from service.settings import Settings

logger = logging.getLogger(__name__)

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

STARTUP_FAILED_EXIT_CODE = 3
"""A worker's exit code when the app could not start: the supervisor stops, not restarts."""

WORKER_STOP_SECONDS = 15.0
"""How long the supervisor waits for the other workers after one failed to start."""


UNKNOWN_FAILURE = "start-up failed: a worker exited (see the log above)"


class StartupError(ServeError):
    """The app could not start (its message names the cause)."""


def hypercorn_config(settings: Settings) -> Config:
    # Imported here: it loads prometheus_client, which must wait for the metrics directory.
    from service.observability.access_log import AccessLogger

    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    if settings.metrics_port is not None:
        config.bind.append(f"{settings.host}:{settings.metrics_port}")
    config.workers = settings.workers
    config.logger_class = AccessLogger
    config.accesslog = logging.getLogger("hypercorn.access")
    config.errorlog = logging.getLogger("hypercorn.error")
    # Streams have ended by the time Hypercorn shuts down (we drain first); this only bounds
    # JSON requests still being answered.
    config.graceful_timeout = 5.0
    config.keep_alive_timeout = 75.0  # longer than typical load-balancer idle timeouts
    config.include_server_header = False
    return config


def _loop_factory() -> LoopFactory | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: LoopFactory = uvloop.new_event_loop
    return factory


def startup_failure(settings: Settings, error: BaseException) -> StartupError:
    """One line naming the cause, secrets hidden (database errors can quote the URL)."""
    cause = str(error) or type(error).__name__
    if not type(error).__module__.startswith("service."):
        cause = f"{type(error).__name__}: {cause}"
    redact = Redactor.for_settings(settings)
    return StartupError(redact(f"start-up failed: {' '.join(cause.split())}"))


def run_worker(settings: Settings, sockets: Sockets, *, supervised: bool = False) -> None:
    """One server process: the app, its event loop, and a drain on SIGTERM / SIGINT.

    Raises `StartupError` when the app cannot start; whatever it opened is closed again."""
    configure_logging(settings)  # spawned workers start with logging unconfigured
    from quart.signals import got_serving_exception

    try:
        from service.app import create_app

        lifecycle = Lifecycle()
        app = create_app(settings, lifecycle=lifecycle)
    except Exception as exc:
        logger.debug("the app could not be built", exc_info=exc)
        raise startup_failure(settings, exc) from None
    config = hypercorn_config(settings)
    startup = StartupWatch(app.logger)
    got_serving_exception.connect(startup.failed, app, weak=False)

    async def main() -> None:
        signalled = asyncio.Event()

        def on_signal(signum: int) -> None:
            if signalled.is_set():
                logger.warning("signal %s again: interrupting open streams now", signum)
                lifecycle.interrupt_streams()
                return
            logger.info("signal %s: draining", signum)
            lifecycle.begin_drain()
            signalled.set()

        async def drained() -> None:
            await signalled.wait()
            await lifecycle.drain(settings.shutdown_drain_seconds)

        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_quiet_sdk_leftovers)
        # Under the supervisor a Ctrl+C reaches workers as its SIGTERM only.
        for sig in (signal.SIGTERM,) if supervised else (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            await worker_serve(
                wrap_app(app, config.wsgi_max_body_size, "asgi"),
                config,
                sockets=sockets,
                shutdown_trigger=drained,
            )
        except LifespanFailureError as exc:
            # Hypercorn skips the shutdown half of the lifespan after a failed start: run it,
            # so that what did open (the store and its worker thread) closes again.
            try:
                await app.shutdown()
            except Exception as cleanup_error:
                logger.debug("cleanup after a failed start-up", exc_info=cleanup_error)
            raise startup_failure(settings, startup.error or exc) from None

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(main())


class StartupWatch:
    """Keeps the exception that stopped the app's start-up, and keeps Quart from logging its
    traceback: `serve` reports it as one line."""

    def __init__(self, app_logger: logging.Logger) -> None:
        self.error: BaseException | None = None
        app_logger.addFilter(self._not_the_startup_error)

    async def failed(self, _sender: object, *, exception: BaseException, **_: Any) -> None:
        self.error = exception

    def _not_the_startup_error(self, record: logging.LogRecord) -> bool:
        return self.error is None or record.exc_info is None or record.exc_info[1] is not self.error


def _quiet_sdk_leftovers(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """When a stream is cancelled, chatkit's `stream_agent_response` leaves two `__anext__` tasks
    behind: the run's event stream ends with StopAsyncIteration once the run stops, and the
    helper-event queue's waits until the task is collected ("Task was destroyed but it is
    pending!"). Both are expected after a stop, not errors worth an ERROR line on every press of
    the stop button. The SDK offers no public way to end or reach those tasks, so they are
    recognised by public traits only: an `__anext__` coroutine of the `chatkit.agents` module."""
    finished_stream = isinstance(context.get("exception"), StopAsyncIteration)
    task = context.get("task")
    abandoned_step = isinstance(task, asyncio.Task) and _is_chatkit_agents_step(task)
    if finished_stream or abandoned_step:
        logger.debug("ignored a task left behind by a cancelled run: %s", context.get("message"))
        return
    loop.default_exception_handler(context)


def _is_chatkit_agents_step(task: asyncio.Task[Any]) -> bool:
    import chatkit.agents

    code = getattr(task.get_coro(), "cr_code", None)
    return (
        isinstance(code, types.CodeType)
        and code.co_name == "__anext__"
        and Path(code.co_filename) == Path(chatkit.agents.__file__ or "")
    )


def serve(settings: Settings) -> int:
    """Raises `ServeError` when the server cannot listen or the app cannot start."""
    sockets = bind_sockets(settings)
    temporary = settings.prometheus_multiproc_dir is None and settings.workers > 1
    try:
        settings = prepare_metrics_directory(settings)
        if settings.workers == 1:
            run_worker(settings, sockets)
            return 0
        return _supervise(settings, sockets)
    finally:
        for sock in sockets.insecure_sockets:
            sock.close()
        if temporary and settings.prometheus_multiproc_dir is not None:
            shutil.rmtree(settings.prometheus_multiproc_dir, ignore_errors=True)


def _worker_process(
    settings: Settings, sockets: Sockets, failures: multiprocessing.queues.SimpleQueue[str]
) -> None:
    try:
        run_worker(settings, sockets, supervised=True)
    except StartupError as exc:
        failures.put(str(exc))
        sys.exit(STARTUP_FAILED_EXIT_CODE)


def _supervise(settings: Settings, sockets: Sockets) -> int:
    """Share the listening sockets between worker processes; forward signals; reap them."""
    context = multiprocessing.get_context("spawn")
    failures: multiprocessing.queues.SimpleQueue[str] = context.SimpleQueue()
    stopping = False
    processes: list[Any] = []

    def start_worker() -> Any:
        process = context.Process(
            target=_worker_process, args=(settings, sockets, failures), daemon=False
        )
        process.start()
        return process

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.is_alive():
                process.terminate() if signum == signal.SIGTERM else process.kill()

    # Workers inherit "ignore SIGINT" so that a Ctrl+C reaches them only through forward().
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    processes.extend(start_worker() for _ in range(settings.workers))
    signal.signal(signal.SIGINT, lambda *_: forward(signal.SIGTERM, None))
    signal.signal(signal.SIGTERM, forward)
    exit_code = 0
    try:
        while processes:
            multiprocessing.connection.wait([p.sentinel for p in processes], timeout=1.0)
            for process in [p for p in processes if not p.is_alive()]:
                processes.remove(process)
                process.join()
                if settings.prometheus_multiproc_dir is not None:
                    forget_worker(settings.prometheus_multiproc_dir, process.pid)
                if process.exitcode == STARTUP_FAILED_EXIT_CODE:
                    _stop_workers(processes)
                    raise StartupError(failures.get() if not failures.empty() else UNKNOWN_FAILURE)
                if stopping:
                    exit_code = exit_code or (process.exitcode or 0)
                    continue
                logger.error(
                    "worker %s exited with %s; starting another", process.pid, process.exitcode
                )
                processes.append(start_worker())
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return exit_code


def _stop_workers(processes: list[Any]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(WORKER_STOP_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()
    processes.clear()
