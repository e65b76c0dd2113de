"""Read-only: an invoice's status from the ERP, over HTTP.

The ERP is asked `GET {ERP_BASE_URL}/invoices/{invoice_id}?tenant_id=...` with the configured
bearer credentials. Timeouts, connection failures and 5xx answers are retried with
exponential backoff; what is left is a `ToolError` the model can relay in plain words.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from agents import FunctionTool, RunContextWrapper, function_tool

from service.agents.context import ToolContext
from service.agents.tools.access import ToolError, explain_tool_failure
from service.settings import Settings

logger = logging.getLogger(__name__)

UNAVAILABLE = "the invoicing system is unavailable; try again later"
NOT_FOUND = "invoice not found"
SHOWN_FIELDS = ("invoice_id", "status", "amount", "currency", "due_date", "paid_at")


@dataclass(frozen=True, slots=True)
class ERPSettings:
    base_url: str
    token: str | None = None
    """Sent as `Authorization: Bearer ...`; never logged."""
    timeout: float = 10.0
    attempts: int = 3
    backoff: float = 0.5
    """Seconds before the second attempt; doubled before each later one."""


class InvoiceClient:
    def __init__(
        self,
        settings: ERPSettings,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        headers = {"Authorization": f"Bearer {settings.token}"} if settings.token else {}
        self._http = httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=settings.timeout,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def invoice_status(self, tenant_id: str, invoice_id: str) -> dict[str, Any]:
        path = "invoices/" + quote(invoice_id, safe="")
        delay = self.settings.backoff
        for attempt in range(1, self.settings.attempts + 1):
            try:
                response = await self._http.get(path, params={"tenant_id": tenant_id})
            except httpx.TransportError as exc:  # timeouts, refused or dropped connections
                failure = type(exc).__name__
            else:
                if response.status_code == 404:
                    raise ToolError(NOT_FOUND)
                if response.status_code < 500:
                    return _invoice(response)
                failure = f"HTTP {response.status_code}"
            logger.warning(
                "ERP request failed (attempt %d of %d): %s",
                attempt,
                self.settings.attempts,
                failure,
            )
            if attempt < self.settings.attempts:
                await self._sleep(delay)
                delay *= 2
        raise ToolError(UNAVAILABLE)


def _invoice(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        logger.warning("ERP refused an invoice request: HTTP %d", response.status_code)
        raise ToolError(UNAVAILABLE)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "status" not in body:
        logger.warning("ERP answered an invoice request with an unexpected body")
        raise ToolError(UNAVAILABLE)
    return {name: body[name] for name in SHOWN_FIELDS if name in body}


def invoice_client(settings: Settings) -> InvoiceClient | None:
    """The ERP client `ERP_*` describe; None when no ERP is configured."""
    if settings.erp_base_url is None:
        return None
    token = settings.erp_api_token.get_secret_value() if settings.erp_api_token else None
    return InvoiceClient(
        ERPSettings(
            settings.erp_base_url,
            token=token,
            timeout=settings.erp_timeout_seconds,
            attempts=settings.erp_max_attempts,
        )
    )


def invoice_status_tool(client: InvoiceClient) -> FunctionTool:
    """`fetch_invoice_status` bound to an ERP client; offered only when an ERP is configured."""

    @function_tool(failure_error_function=explain_tool_failure)
    async def fetch_invoice_status(
        ctx: RunContextWrapper[ToolContext], invoice_id: str
    ) -> dict[str, Any]:
        """Look up an invoice's payment status in the company's invoicing system.

        Args:
            invoice_id: The invoice number, e.g. "INV-2024-0042".
        """
        invoice_id = invoice_id.strip()
        if not invoice_id or len(invoice_id) > 100:
            raise ToolError("give the invoice number, at most 100 characters")
        who = ctx.context
        await who.report_progress("Checking the invoicing system…")
        return await client.invoice_status(who.tenant_id, invoice_id)

    return fetch_invoice_status
