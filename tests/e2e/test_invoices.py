"""`fetch_invoice_status` end to end: the model asks, our ERP client calls a loopback ERP with the
caller's tenant and the configured token, and the answer (or a refusal) reaches the model."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import ServerFactory, provider_env
from tests.e2e.tools_support import client_as, tool_outputs
from tests.support.mock_llm import MockLLM, Reply
from tests.support.server import ServerProcess

ERP_TOKEN = "erp-token-5b7d9f1e3a5c7e9b"
INVOICES = {("acme", "INV-7"): {"invoice_id": "INV-7", "status": "paid", "amount": 120.5}}


class ERP:
    """Answers `GET /invoices/<id>?tenant_id=<t>` from `INVOICES`, recording each request."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        erp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                tenant = parse_qs(url.query).get("tenant_id", [""])[0]
                invoice_id = url.path.removeprefix("/invoices/")
                erp.seen.append(
                    {"tenant": tenant, "invoice": invoice_id, "auth": self.headers["Authorization"]}
                )
                found = INVOICES.get((tenant, invoice_id))
                body = json.dumps(found or {"error": "not found"}).encode()
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def erp() -> Iterator[ERP]:
    service = ERP()
    yield service
    service.http.shutdown()


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory, mock_llm: MockLLM, erp: ERP) -> ServerProcess:
    return server_factory(
        {
            **provider_env("openai", mock_llm),
            "TITLE_GENERATION": "false",
            "ERP_BASE_URL": erp.url,
            "ERP_API_TOKEN": ERP_TOKEN,
        },
        start=False,
    ).start(timeout=120)


async def test_an_invoice_is_looked_up_for_the_callers_tenant(
    server: ServerProcess, mock_llm: MockLLM, erp: ERP
) -> None:
    mock_llm.enqueue(Reply(tool_call=("fetch_invoice_status", {"invoice_id": "INV-7"})), Reply())
    async with client_as(server, "ann", "acme", "employee") as ann:
        turn = await ann.create_thread("is INV-7 paid?")
    assert turn.errors == []
    progress = [event["text"] for event in turn.of_type("progress_update")]
    assert any("invoicing system" in text for text in progress), turn.events
    [output] = tool_outputs(mock_llm)
    assert "'status': 'paid'" in output and "120.5" in output
    assert erp.seen[-1] == {"tenant": "acme", "invoice": "INV-7", "auth": f"Bearer {ERP_TOKEN}"}
    assert ERP_TOKEN not in server.log


async def test_another_tenant_asking_for_the_same_invoice_is_told_it_does_not_exist(
    server: ServerProcess, mock_llm: MockLLM, erp: ERP
) -> None:
    mock_llm.enqueue(Reply(tool_call=("fetch_invoice_status", {"invoice_id": "INV-7"})), Reply())
    async with client_as(server, "bob", "globex", "admin") as bob:
        turn = await bob.create_thread("is INV-7 paid?")
    assert turn.errors == []
    [output] = tool_outputs(mock_llm)
    assert "invoice not found" in output and "paid" not in output
    assert erp.seen[-1]["tenant"] == "globex"
