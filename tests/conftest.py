from __future__ import annotations

import asyncio
import os
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.support.client import ChatKitClient
from tests.support.mock_llm import MockLLM
from tests.support.postgres import drop_run_database
from tests.support.server import ServerProcess

TEST_OPENAI_KEY = "sk-test-0123456789abcdefSECRET"
TEST_GEMINI_KEY = "AIzaTestGeminiKey0123456789SECRET"


@pytest.fixture(scope="session")
def mock_llm() -> Iterator[MockLLM]:
    mock = MockLLM().start()
    yield mock
    mock.stop()


@pytest.fixture(autouse=True)
def _fresh_mock(request: pytest.FixtureRequest) -> None:
    if "mock_llm" in request.fixturenames:
        request.getfixturevalue("mock_llm").reset()


def provider_env(provider: str, mock: MockLLM) -> dict[str, str]:
    common = {
        "LLM_MAX_RETRIES": "0",
        "LLM_TIMEOUT_SECONDS": "5",
        "OPENAI_AGENTS_DISABLE_TRACING": "1",
    }
    if provider == "openai":
        return {
            **common,
            "LLM_PROVIDER": "openai",
            "OPENAI_API_KEY": TEST_OPENAI_KEY,
            "OPENAI_BASE_URL": mock.url,
            "OPENAI_DEFAULT_MODEL": "gpt-test",
        }
    if provider == "gemini":
        return {
            **common,
            "LLM_PROVIDER": "gemini",
            "GEMINI_API_KEY": TEST_GEMINI_KEY,
            "GEMINI_BASE_URL": mock.url,
            "GEMINI_DEFAULT_MODEL": "gemini-test",
        }
    if provider == "openai-compatible":
        return {
            **common,
            "LLM_PROVIDER": "openai-compatible",
            "OPENAI_BASE_URL": mock.url,
            "OPENAI_DEFAULT_MODEL": "local-test",
        }
    raise ValueError(provider)


ServerFactory = Callable[..., ServerProcess]


@pytest.fixture(scope="module")
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    started: list[ServerProcess] = []

    def make(
        env: dict[str, str] | None = None, *, workdir: Path | None = None, start: bool = True
    ) -> ServerProcess:
        workdir = workdir or tmp_path_factory.mktemp("server")
        server = ServerProcess(
            {"DATABASE_URL": f"sqlite:///{workdir}/chatkit.db", **(env or {})}, workdir=workdir
        )
        started.append(server)
        return server.start() if start else server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def openai_server(server_factory: ServerFactory, mock_llm: MockLLM) -> ServerProcess:
    return server_factory(provider_env("openai", mock_llm))


@pytest.fixture(scope="module")
def gemini_server(server_factory: ServerFactory, mock_llm: MockLLM) -> ServerProcess:
    return server_factory(provider_env("gemini", mock_llm))


@pytest.fixture
def user() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def client(openai_server: ServerProcess, user: str) -> AsyncIterator[ChatKitClient]:
    async with ChatKitClient(openai_server.url, user=user) as chatkit:
        yield chatkit


@pytest.fixture(scope="session", autouse=True)
def _postgres_run_database() -> Iterator[None]:
    """Drops the PostgreSQL database this run created for its tests (if it did) at the end."""
    yield
    try:
        asyncio.run(drop_run_database())
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        warnings.warn(f"could not drop this run's PostgreSQL test database: {exc}", stacklevel=1)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI=true a skipped test (a missing dependency, say) fails the run."""
    if not _in_ci():
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_line(f"CI=true: {len(skipped)} skipped test(s) count as failures", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
