"""The real server with AUTH_MODE=jwt,api-token and CORS_ALLOWED_ORIGINS: what a browser, a
service and an attacker each get from `/chatkit/api`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.auth.identity_provider import AUDIENCE, IdentityProvider, claims, forge, sign
from tests.conftest import ServerFactory, provider_env
from tests.support.client import ChatKitClient
from tests.support.mock_llm import MockLLM
from tests.support.server import ROOT, ServerProcess

FRONTEND = "https://app.example.com"
SERVICE_TOKEN = "ckt_service_token_5e0c7a9b1d3f5e7a9c1b3d5f7a9c1e3b"


@pytest.fixture(scope="module")
def provider() -> Iterator[IdentityProvider]:
    idp = IdentityProvider().start()
    yield idp
    idp.stop()


@pytest.fixture(scope="module")
def server(
    server_factory: ServerFactory,
    mock_llm: MockLLM,
    provider: IdentityProvider,
    tmp_path_factory: pytest.TempPathFactory,
) -> ServerProcess:
    tokens = tmp_path_factory.mktemp("auth") / "tokens.jsonl"
    digest = hashlib.sha256(SERVICE_TOKEN.encode()).hexdigest()
    tokens.write_text(json.dumps({"sha256": digest, "user": "svc", "tenant": "acme"}) + "\n")
    return server_factory(
        {
            **provider_env("openai", mock_llm),
            "ENVIRONMENT": "production",
            "AUTH_MODE": "jwt,api-token",
            "AUTH_JWKS_URL": provider.jwks_url,
            "AUTH_ISSUER": provider.issuer,
            "AUTH_AUDIENCE": AUDIENCE,
            "AUTH_API_TOKENS_FILE": str(tokens),
            "CORS_ALLOWED_ORIGINS": f"{FRONTEND}, http://localhost:5173",
            "LOG_LEVEL": "DEBUG",
        },
        start=False,
    ).start(timeout=120)  # the machines running this suite are shared and often busy


def assert_401(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text[:300]
    assert response.headers["WWW-Authenticate"] == "Bearer"
    error = response.json()["error"]
    assert error["code"] == "unauthenticated"
    assert "\n" not in error["message"]
    return str(error["message"])


async def test_without_credentials_only_probes_and_metrics_answer(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await http.get(path)).status_code == 200, path
        response = await http.post("/chatkit/api", json={"type": "threads.list", "params": {}})
        assert "Authorization: Bearer" in assert_401(response)
        # X-User-Id means nothing outside AUTH_MODE=dev
        response = await http.post(
            "/chatkit/api",
            json={"type": "threads.list", "params": {}},
            headers={"X-User-Id": "alice"},
        )
        assert_401(response)
        assert (await http.get("/")).status_code == 404  # no playground in production


async def test_bad_tokens_get_401_with_a_reason(
    server: ServerProcess, provider: IdentityProvider
) -> None:
    now = int(time.time())
    bad = {
        "expired": provider.token(exp=now - 3600),
        "another audience": provider.token(aud="someone-else"),
        "garbage": "not.a.token",
        "unsigned": forge({"alg": "none", "kid": provider.rsa.kid}, claims(provider.issuer)),
        "algorithm confusion": forge(
            {"alg": "HS256", "kid": provider.rsa.kid},
            claims(provider.issuer),
            provider.rsa.public_pem,
        ),
        "unknown api token": "ckt_wrong_token_000000000000000000000000",
    }
    for what, token in bad.items():
        async with ChatKitClient(server.url, token=token) as client:
            message = assert_401(await client.call("threads.list"))
            assert token not in message, what


async def test_a_good_token_chats_and_sees_only_its_own_threads(
    server: ServerProcess, provider: IdentityProvider
) -> None:
    alice = provider.token(sub="alice-e2e")
    async with ChatKitClient(server.url, token=alice) as client:
        stream = await client.create_thread("Hello there")
        assert stream.status == 200
        assert stream.assistant_text() == "Hello from the mock model."
        listed = await client.list_threads()
        assert [t["id"] for t in listed["data"]] == [stream.thread_id]
    async with ChatKitClient(server.url, token=provider.token(provider.ec, sub="bob-e2e")) as bob:
        assert (await bob.list_threads())["data"] == []
        assert (await bob.call("threads.get_by_id", thread_id=stream.thread_id)).status_code == 404
    async with ChatKitClient(server.url, token=SERVICE_TOKEN) as service:
        assert (await service.list_threads())["data"] == []


async def test_cors_preflight_and_answers_for_allowed_origins_only(
    server: ServerProcess, provider: IdentityProvider
) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-request-id",
    }
    async with httpx.AsyncClient(base_url=server.url) as http:
        allowed = await http.options("/chatkit/api", headers={"Origin": FRONTEND, **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["Access-Control-Allow-Origin"] == FRONTEND
        allowed_headers = {
            h.strip() for h in allowed.headers["Access-Control-Allow-Headers"].lower().split(",")
        }
        assert {"authorization", "content-type", "x-request-id"} <= allowed_headers
        assert "*" not in allowed_headers
        assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
        assert "origin" in allowed.headers["Vary"].lower()
        assert "Access-Control-Allow-Credentials" not in allowed.headers

        other = await http.options(
            "/chatkit/api", headers={"Origin": "https://evil.example", **preflight}
        )
        assert "Access-Control-Allow-Origin" not in other.headers
        assert "Access-Control-Allow-Headers" not in other.headers
        assert "origin" in other.headers["Vary"].lower()

        body = {"type": "threads.list", "params": {}}
        token = {"Authorization": f"Bearer {provider.token()}"}
        json_answer = await http.post(
            "/chatkit/api", json=body, headers={**token, "Origin": FRONTEND}
        )
        assert json_answer.status_code == 200
        assert json_answer.headers["Access-Control-Allow-Origin"] == FRONTEND
        exposed = json_answer.headers["Access-Control-Expose-Headers"].lower()
        assert "x-request-id" in exposed
        refused = await http.post("/chatkit/api", json=body, headers={"Origin": FRONTEND})
        assert refused.status_code == 401
        assert refused.headers["Access-Control-Allow-Origin"] == FRONTEND  # readable by the app
        assert "www-authenticate" in refused.headers["Access-Control-Expose-Headers"].lower()
        foreign = await http.post(
            "/chatkit/api", json=body, headers={**token, "Origin": "https://evil.example"}
        )
        assert "Access-Control-Allow-Origin" not in foreign.headers

        stream_body = {
            "type": "threads.create",
            "params": {
                "input": {
                    "content": [{"type": "input_text", "text": "hi"}],
                    "attachments": [],
                    "inference_options": {},
                }
            },
        }
        sse = await http.post(
            "/chatkit/api", json=stream_body, headers={**token, "Origin": FRONTEND}, timeout=30
        )
        assert sse.headers["Content-Type"].startswith("text/event-stream")
        assert sse.headers["Access-Control-Allow-Origin"] == FRONTEND
        sse = await http.post(
            "/chatkit/api",
            json=stream_body,
            headers={**token, "Origin": "https://evil.example"},
            timeout=30,
        )
        assert "Access-Control-Allow-Origin" not in sse.headers


async def test_refusals_are_counted_and_tokens_never_logged(
    server: ServerProcess, provider: IdentityProvider
) -> None:
    expired = provider.token(exp=int(time.time()) - 3600, sub="carol-e2e")
    good = provider.token(sub="dave-e2e")
    forged = sign(provider.rotate(), claims(provider.issuer), kid="made-up-kid")
    async with ChatKitClient(server.url, token=expired) as client:
        assert_401(await client.call("threads.list"))
    async with ChatKitClient(server.url, token=forged) as client:
        assert_401(await client.call("threads.list"))
    async with ChatKitClient(server.url, token=good) as client:
        await client.list_threads()
    async with ChatKitClient(server.url, token=SERVICE_TOKEN) as client:
        await client.list_threads()
    async with httpx.AsyncClient(base_url=server.url) as http:
        metrics = (await http.get("/metrics")).text
    assert 'chatkit_auth_failures_total{reason="expired"}' in metrics
    assert 'chatkit_auth_failures_total{reason="unknown_key"}' in metrics
    assert 'chatkit_auth_failures_total{reason="missing"}' in metrics
    log = server.log
    assert "authentication refused (expired)" in log
    for secret in (expired, good, forged, SERVICE_TOKEN):
        assert secret not in log
        assert secret.split(".")[-1] not in log
    for line in server.output:
        record = json.loads(line)
        assert record["level"] not in ("ERROR", "CRITICAL"), line[:300]


def test_dev_mode_is_refused_in_production(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "DEV_"))},
        "PYTHONPATH": str(ROOT),
        "ENVIRONMENT": "production",
        "AUTH_MODE": "dev",
        "DATABASE_URL": f"sqlite:///{tmp_path}/chatkit.db",
        "PORT": "0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "service", "serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "chatkit-backend serve: start-up failed: AUTH_MODE: dev is refused when "
        "ENVIRONMENT=production (callers could name any user): use jwt or api-token"
    ]
