"""Runs the app under Hypercorn, in this process or in several worker processes.

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
import shutil
import signal
from collections.abc import Callable
from typing import Any

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import wrap_app

from service.lifecycle import Lifecycle
from service.observability.access_log import AccessLogger
from service.observability.logging import configure_logging
from service.observability.multiprocess import forget_worker, prepare_metrics_directory
from service.settings import Settings

logger = logging.getLogger(__name__)

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def hypercorn_config(settings: Settings) -> Config:
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


def run_worker(settings: Settings, sockets: Sockets | None = None) -> None:
    """One server process: the app, its event loop, and a drain on SIGTERM / SIGINT."""
    configure_logging(settings)  # spawned workers start with logging unconfigured
    from service.app import create_app

    lifecycle = Lifecycle()
    app = create_app(settings, lifecycle=lifecycle)
    config = hypercorn_config(settings)

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
        # Under the supervisor (shared sockets) a Ctrl+C reaches workers as its SIGTERM only.
        for sig in (signal.SIGTERM,) if sockets is not None else (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        await worker_serve(
            wrap_app(app, config.wsgi_max_body_size, "asgi"),
            config,
            sockets=sockets,
            shutdown_trigger=drained,
        )

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(main())


def _quiet_sdk_leftovers(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """When a stream is cancelled, chatkit's `_merge_generators` (chatkit/agents.py) leaves its two
    `__anext__` tasks behind: the run's event stream ends with StopAsyncIteration once the run
    stops, and the helper-event queue's waits forever until collected. Both are expected after a
    stop, not errors worth an ERROR line on every press of the stop button."""
    task = context.get("task")
    coro = getattr(task, "get_coro", lambda: None)()
    finished_stream = isinstance(context.get("exception"), StopAsyncIteration)
    abandoned_queue = getattr(coro, "__qualname__", "") == "_AsyncQueueIterator.__anext__"
    if finished_stream or abandoned_queue:
        logger.debug("ignored a task left behind by a cancelled run: %s", context.get("message"))
        return
    loop.default_exception_handler(context)


def serve(settings: Settings) -> int:
    temporary = settings.prometheus_multiproc_dir is None and settings.workers > 1
    settings = prepare_metrics_directory(settings)
    if settings.workers == 1:
        run_worker(settings)
        return 0
    try:
        return _supervise(settings)
    finally:
        if temporary and settings.prometheus_multiproc_dir is not None:
            shutil.rmtree(settings.prometheus_multiproc_dir, ignore_errors=True)


def _supervise(settings: Settings) -> int:
    """Share the listening sockets between worker processes; forward signals; reap them."""
    sockets = hypercorn_config(settings).create_sockets()
    context = multiprocessing.get_context("spawn")
    stopping = False
    processes: list[Any] = []

    def start_worker() -> Any:
        process = context.Process(target=run_worker, args=(settings, sockets), daemon=False)
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
                if stopping:
                    exit_code = exit_code or (process.exitcode or 0)
                    continue
                logger.error(
                    "worker %s exited with %s; starting another", process.pid, process.exitcode
                )
                processes.append(start_worker())
    finally:
        signal.signal(signal.SIGINT, previous)
        for sock in (*sockets.insecure_sockets, *sockets.secure_sockets):
            sock.close()
    return exit_code
