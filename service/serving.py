"""Runs the app under Hypercorn, in this process or in several worker processes."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
from collections.abc import Callable
from typing import Any

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import wrap_app

from service.app import create_app
from service.settings import Settings

logger = logging.getLogger(__name__)

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.workers = settings.workers
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
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
    """One server process: the app, its event loop, and a clean exit on SIGTERM / SIGINT."""
    app = create_app(settings)
    config = hypercorn_config(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await worker_serve(
            wrap_app(app, config.wsgi_max_body_size, "asgi"),
            config,
            sockets=sockets,
            shutdown_trigger=stop.wait,
        )

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(main())


def serve(settings: Settings) -> int:
    if settings.workers == 1:
        run_worker(settings)
        return 0
    return _supervise(settings)


def _supervise(settings: Settings) -> int:
    """Share one listening socket between worker processes; forward signals; reap them."""
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
