"""fetch_invoice_status against a mocked ERP (respx): answers, retries, plain-worded failures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from service.agents.context import ToolContext
from service.agents.tools import available_tools
from service.agents.tools.invoices import (
    ERPSettings,
    InvoiceClient,
    invoice_client,
    invoice_status_tool,
)
from service.settings import load_settings
from tests.agents.tools.helpers import call

ERP = "https://erp.example.test/api"
INVOICE_URL = f"{ERP}/invoices/INV-42"
SECRET = "erp-token-do-not-leak"
WHO = ToolContext(user_id="alice", tenant_id="acme", role="employee")


@pytest.fixture
async def client() -> AsyncIterator[InvoiceClient]:
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    instance = InvoiceClient(ERPSettings(ERP, token=SECRET, attempts=3, backoff=0.5), sleep=no_wait)
    instance.waits = waits  # type: ignore[attr-defined]
    yield instance
    await instance.aclose()


@respx.mock
async def test_an_invoice_status_is_fetched_for_the_callers_tenant(client: InvoiceClient) -> None:
    route = respx.get(INVOICE_URL, params={"tenant_id": "acme"}).respond(
        200, json={"invoice_id": "INV-42", "status": "paid", "amount": "120.00", "internal": "x"}
    )
    answer = await call(invoice_status_tool(client), WHO, invoice_id="INV-42")
    assert answer == {"invoice_id": "INV-42", "status": "paid", "amount": "120.00"}
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {SECRET}"


@respx.mock
async def test_5xx_and_timeouts_are_retried_with_backoff(client: InvoiceClient) -> None:
    route = respx.get(INVOICE_URL).mock(
        side_effect=[
            httpx.Response(503),
            httpx.ReadTimeout("slow"),
            httpx.Response(200, json={"status": "overdue"}),
        ]
    )
    answer = await call(invoice_status_tool(client), WHO, invoice_id="INV-42")
    assert answer == {"status": "overdue"}
    assert route.call_count == 3
    assert client.waits == [0.5, 1.0]  # type: ignore[attr-defined]


@respx.mock
async def test_an_erp_that_stays_down_is_reported_as_unavailable(
    client: InvoiceClient, caplog: pytest.LogCaptureFixture
) -> None:
    route = respx.get(INVOICE_URL).mock(side_effect=httpx.ConnectError("refused"))
    answer = await call(invoice_status_tool(client), WHO, invoice_id="INV-42")
    assert answer == (
        "The tool did not complete: the invoicing system is unavailable; try again later"
    )
    assert route.call_count == 3
    assert SECRET not in caplog.text and SECRET not in answer


@respx.mock
async def test_an_unknown_invoice_is_not_found_without_retrying(client: InvoiceClient) -> None:
    route = respx.get(INVOICE_URL).respond(404)
    answer = await call(invoice_status_tool(client), WHO, invoice_id="INV-42")
    assert answer == "The tool did not complete: invoice not found"
    assert route.call_count == 1


@respx.mock
async def test_an_invoice_number_cannot_leave_the_invoices_path(client: InvoiceClient) -> None:
    route = respx.get(f"{ERP}/invoices/..%2Fadmin").respond(404)
    answer = await call(invoice_status_tool(client), WHO, invoice_id="../admin")
    assert answer == "The tool did not complete: invoice not found"
    assert route.called


async def test_the_invoice_tool_is_offered_only_with_an_erp(client: InvoiceClient) -> None:
    assert "fetch_invoice_status" not in [tool.name for tool in available_tools(None)]
    assert "fetch_invoice_status" in [tool.name for tool in available_tools(client)]
    assert invoice_client(load_settings(erp_base_url="")) is None
    configured = invoice_client(load_settings(erp_base_url=ERP, erp_api_token=SECRET))
    assert configured is not None
    await configured.aclose()
