"""Property-based: arbitrary methods, headers, tokens, query strings and bodies at every route of
a server in `jwt` mode. Never a 5xx, never a hang, never a traceback or an ERROR in the log, and
nothing but the probes, metrics and the development page answers without valid credentials."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.auth.identity_provider import HS_SECRET, claims, forge, sign_hs256
from tests.conftest import ServerFactory, provider_env
from tests.support.mock_llm import MockLLM
from tests.support.server import ServerProcess

ISSUER = "https://issuer.test"
OPEN_ROUTES = {"/healthz", "/readyz", "/metrics", "/"}
ROUTES = [
    ("POST", "/chatkit/api"),
    ("POST", "/chatkit/api/upload"),
    ("PUT", "/chatkit/api/upload/att_0123"),
    ("POST", "/chatkit/api/upload/att_0123"),
    ("GET", "/chatkit/api/attachments/att_0123/content"),
    ("OPTIONS", "/chatkit/api"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/"),
    ("DELETE", "/chatkit/api"),
    ("GET", "/nope/../../etc/passwd"),
]
# Printable ASCII without surrounding spaces: what HTTP/1.1 lets a client send at all.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300).map(
    str.strip
)
tokens = st.one_of(
    header_text,
    st.builds(lambda t: f"Bearer {t}".strip(), header_text),
    st.builds(lambda t: f"Bearer {t}", st.just(sign_hs256(claims(ISSUER), "wrong-secret" * 3))),
    st.builds(
        lambda t: f"Bearer {t}",
        st.just(forge({"alg": "none", "typ": "JWT"}, claims(ISSUER))),
    ),
    st.builds(lambda t: f"Bearer {t}", st.just(sign_hs256(claims(ISSUER, exp=1)))),
    st.just("Bearer " + "a." * 5000),
)
bodies = st.one_of(
    st.binary(max_size=2000),
    st.just(json.dumps({"type": "threads.list", "params": {}}).encode()),
    st.just(b"--x\r\nContent-Disposition: form-data; name=file; filename=a.txt\r\n\r\nhi\r\n--x--"),
)


@pytest.fixture(scope="module")
def server(
    server_factory: ServerFactory, mock_llm: MockLLM, tmp_path_factory: pytest.TempPathFactory
) -> ServerProcess:
    uploads: Path = tmp_path_factory.mktemp("uploads")
    return server_factory(
        {
            **provider_env("openai", mock_llm),
            "AUTH_MODE": "jwt",
            "AUTH_JWT_SECRET": HS_SECRET,
            "AUTH_ISSUER": ISSUER,
            "ATTACHMENTS_URL": f"file://{uploads}",
            "CORS_ALLOWED_ORIGINS": "https://app.example.com",
        },
        start=False,
    ).start(timeout=120)


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(ROUTES),
    authorization=st.one_of(st.none(), tokens),
    content_type=st.one_of(
        st.none(), header_text, st.just("multipart/form-data; boundary=x"), st.just("text/plain")
    ),
    origin=st.one_of(st.none(), st.just("https://app.example.com"), header_text),
    query=st.one_of(st.none(), header_text),
    body=bodies,
)
def test_no_request_makes_a_server_error_or_gets_in_without_credentials(
    http: httpx.Client,
    route: tuple[str, str],
    authorization: str | None,
    content_type: str | None,
    origin: str | None,
    query: str | None,
    body: bytes,
) -> None:
    method, path = route
    headers = {
        name: value
        for name, value in (
            ("Authorization", authorization),
            ("Content-Type", content_type),
            ("Origin", origin),
            ("X-User-Id", "someone-else"),
        )
        if value is not None
    }
    params = {"token": query} if query is not None else None
    response = http.request(method, path, headers=headers, params=params, content=body)
    assert response.status_code < 500, (method, path, response.text[:300])
    if path not in OPEN_ROUTES and method != "OPTIONS":
        assert response.status_code != 200, (method, path, headers)


def test_and_nothing_was_logged_as_an_error(server: ServerProcess) -> None:
    for line in server.output:
        record = json.loads(line)
        assert record["level"] not in ("ERROR", "CRITICAL"), line[:500]
        assert "exc_info" not in record, line[:500]
