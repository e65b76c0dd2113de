"""The tools' settings: MCP servers, their secrets, the ERP, roles and the model allow-list."""

from __future__ import annotations

import json

import pytest

from service.agents.tools.mcp_servers import mcp_secrets
from service.settings import ConfigurationError, load_settings, parse_mcp_servers

CRM = {"name": "crm", "url": "https://crm.example/mcp", "tools": ["find_account"]}


def test_mcp_servers_are_read_with_their_defaults() -> None:
    settings = load_settings(mcp_servers=json.dumps([CRM]))
    [spec] = parse_mcp_servers(settings.mcp_servers)
    assert (spec.read_only, spec.roles, spec.auth_header) == (
        True,
        ("employee", "manager", "admin"),
        "Authorization",
    )


@pytest.mark.parametrize(
    ("servers", "problem"),
    [
        ([{**CRM, "url": "ftp://crm"}], "0.url"),
        ([{**CRM, "tools": []}], "0.tools"),
        ([{**CRM, "colour": "red"}], "0.colour"),
        ([CRM, CRM], "server names must be unique"),
    ],
)
def test_a_bad_mcp_server_list_is_one_line_naming_the_problem(
    servers: list[dict[str, object]], problem: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(mcp_servers=json.dumps(servers))
    message = str(raised.value)
    assert message.startswith("invalid configuration: MCP_SERVERS:") and problem in message
    assert "\n" not in message


def test_mcp_secrets_are_read_by_server_name() -> None:
    settings = load_settings(mcp_server_secrets='{"crm": "Bearer s3cret"}')
    assert mcp_secrets(settings) == {"crm": "Bearer s3cret"}


def test_unreadable_mcp_secrets_are_logged_without_their_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = load_settings(mcp_server_secrets='{"crm": "Bearer hunter2"')
    assert mcp_secrets(settings) == {}
    assert "MCP_SERVER_SECRETS is not a JSON object" in caplog.text
    assert "hunter2" not in caplog.text


def test_roles_and_models_are_comma_separated_lists() -> None:
    settings = load_settings(
        ticket_create_roles=" Employee, contractor ,",
        ticket_manage_roles="admin",
        model_allowlist="big, small, big",
    )
    assert settings.ticket_roles == (frozenset({"employee", "contractor"}), frozenset({"admin"}))
    assert settings.allowed_models == ("big", "small")


def test_the_erp_url_must_be_http() -> None:
    with pytest.raises(ConfigurationError, match="ERP_BASE_URL"):
        load_settings(erp_base_url="erp.internal/api")
