"""A task-count probe for bench/resilience.py, loaded into the service from outside.

bench/resilience.py puts this directory on the service's PYTHONPATH, so Python imports this
file at start-up (`sitecustomize`), and sets BENCH_TASK_PROBE to a path. A daemon thread then
writes, every BENCH_TASK_PROBE_INTERVAL seconds (default 0.5), `<path>.<pid>` (JSON): the
process's live asyncio tasks (every event loop's, counted from asyncio's own registry of
tasks, as `asyncio.all_tasks` does), the 12 most common coroutines among them, and its thread
count. When the file `<path>.gc` exists, the thread first runs a full garbage collection
(`gc.collect()`) and deletes that file, so the count then holds only tasks something still
refers to (`"collected": true` in the sample); tasks in reference cycles wait for the collector
otherwise. Nothing of the service is changed or imported; without BENCH_TASK_PROBE this file does
nothing. It reads asyncio's private `_all_tasks` (Python 3.11's registry; a WeakSet that
`asyncio.all_tasks` itself copies with retries), so it belongs to the bench only.
"""

from __future__ import annotations

import os

_PATH = os.getenv("BENCH_TASK_PROBE")


def _live_tasks() -> list:
    from asyncio import tasks

    registry = getattr(tasks, "_all_tasks", None)
    if registry is None:
        return []
    for _ in range(1000):  # the loop's thread may add a task while this one copies the set
        try:
            found = list(registry)
            break
        except RuntimeError:
            continue
    else:
        return []
    return [t for t in found if not t.done()]


def _name(task) -> str:
    coro = task.get_coro()
    return getattr(coro, "__qualname__", None) or type(coro).__name__


def _count() -> tuple[int, dict[str, int]]:
    """How many live tasks, by coroutine. Plain data only: no reference to a task may outlive
    this call (the probe must never be what keeps a task alive)."""
    import collections

    live = _live_tasks()
    common = collections.Counter(_name(t) for t in live).most_common(12)
    return len(live), dict(common)


def _run(path: str, interval: float) -> None:
    import gc
    import json
    import threading
    import time

    target = f"{path}.{os.getpid()}"
    while True:
        try:
            collected = os.path.exists(path + ".gc")
            if collected:
                gc.collect()
                os.remove(path + ".gc")
            tasks, by_coroutine = _count()
            sample = {
                "t": time.time(),
                "pid": os.getpid(),
                "tasks": tasks,
                "threads": threading.active_count(),
                "by_coroutine": by_coroutine,
                "collected": collected,
            }
            with open(target + ".tmp", "w") as f:
                json.dump(sample, f)
            os.replace(target + ".tmp", target)
        except Exception:  # a probe never takes the process down
            pass
        time.sleep(interval)


if _PATH:
    import threading

    threading.Thread(
        target=_run,
        args=(_PATH, float(os.getenv("BENCH_TASK_PROBE_INTERVAL") or 0.5)),
        name="bench-task-probe",
        daemon=True,
    ).start()
