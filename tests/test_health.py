"""Probes: /healthz touches nothing; /readyz names each failing dependency, and draining."""

from __future__ import annotations

import asyncio

from quart import Quart

from service.health import ReadinessCheck, health_blueprint
from service.lifecycle import Lifecycle


def app_with(checks: dict[str, ReadinessCheck], lifecycle: Lifecycle) -> Quart:
    app = Quart(__name__)
    app.register_blueprint(health_blueprint(checks, lifecycle, check_timeout=0.2))
    return app


async def fine() -> None:
    return None


async def broken() -> None:
    raise OSError("disk gone")


async def hanging() -> None:
    await asyncio.sleep(10)


async def test_ready_when_every_dependency_answers() -> None:
    client = app_with({"store": fine, "attachments": fine}, Lifecycle()).test_client()
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert await response.get_json() == {"status": "ready"}


async def test_not_ready_names_each_failing_dependency() -> None:
    app = app_with({"store": broken, "attachments": hanging, "cache": fine}, Lifecycle())
    response = await app.test_client().get("/readyz")
    assert response.status_code == 503
    assert await response.get_json() == {
        "status": "not ready",
        "causes": {"store": "OSError: disk gone", "attachments": "no answer within 0.2s"},
    }


async def test_draining_is_not_ready_without_asking_the_dependencies() -> None:
    asked: list[str] = []

    async def store() -> None:
        asked.append("store")

    lifecycle = Lifecycle()
    lifecycle.begin_drain()
    client = app_with({"store": store}, lifecycle).test_client()
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert await response.get_json() == {
        "status": "not ready",
        "causes": {"draining": "the server is shutting down"},
    }
    assert asked == []
    assert (await client.get("/healthz")).status_code == 200  # still alive
