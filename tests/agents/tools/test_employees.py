"""get_employee_record: the caller's tenant only, private fields for managers, admins and the
employee themself."""

from __future__ import annotations

import pytest

from service.agents.tools.employees import get_employee_record
from service.chatkit.store.sqlite import SQLiteStore
from tests.agents.tools.helpers import Shown, call, caller


async def test_an_employee_sees_a_colleague_without_private_fields(store: SQLiteStore) -> None:
    who = caller(store, Shown(), role="employee")
    answer = await call(get_employee_record, who, employee_id="e1")
    [ada] = answer["employees"]
    assert ada["name"] == "Ada Lovelace" and ada["department"] == "Engineering"
    assert ada["salary_band"] == ada["personal_phone"] == "(withheld)"
    assert "L5" not in str(answer) and "+44" not in str(answer)


@pytest.mark.parametrize("role", ["manager", "admin"])
async def test_managers_and_admins_see_private_fields(store: SQLiteStore, role: str) -> None:
    answer = await call(get_employee_record, caller(store, Shown(), role=role), employee_id="e1")
    assert answer["employees"][0]["salary_band"] == "L5"
    assert answer["employees"][0]["personal_phone"] == "+44 20 0000 0000"


@pytest.mark.parametrize("user", ["e1", "Ada@Acme.example"])
async def test_employees_see_their_own_private_fields(store: SQLiteStore, user: str) -> None:
    who = caller(store, Shown(), user=user, role="employee")
    answer = await call(get_employee_record, who, name_or_email="ada lovelace")
    assert answer["employees"][0]["salary_band"] == "L5"


async def test_found_by_email_ignoring_case(store: SQLiteStore) -> None:
    who = caller(store, Shown(), role="employee")
    answer = await call(get_employee_record, who, name_or_email="ADA@acme.example")
    assert [e["employee_id"] for e in answer["employees"]] == ["e1"]


@pytest.mark.parametrize(
    "arguments", [{"employee_id": "g7"}, {"name_or_email": "grace@globex.example"}]
)
async def test_another_tenants_employee_is_unknown_even_to_an_admin(
    store: SQLiteStore, arguments: dict[str, str]
) -> None:
    who = caller(store, Shown(), tenant="acme", role="admin")
    answer = await call(get_employee_record, who, **arguments)
    assert answer == "The tool did not complete: no such employee in your organisation's directory"
    assert "Grace" not in answer and "G9" not in answer


async def test_a_lookup_needs_an_id_or_a_name(store: SQLiteStore) -> None:
    answer = await call(get_employee_record, caller(store, Shown(), role="employee"))
    assert "give an employee_id or a name_or_email" in answer
