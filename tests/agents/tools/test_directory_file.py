"""Reading directory files, and `chatkit-backend import-directory`: all or nothing, idempotent,
bad rows named by line number."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from service.agents.tools.directory_file import DirectoryFileError, read_directory
from service.chatkit.store.sqlite import SQLiteStore
from service.cli import main

CSV = (
    "tenant_id,employee_id,name,email,department,salary_band\n"
    "acme,e1,Ada Lovelace,ada@acme.example,Engineering,L5\n"
    'acme,e2,"Hopper, Grace",grace@acme.example,,\n'
)
JSON_LINES = (
    '{"tenant_id": "acme", "employee_id": "e1", "name": "Ada", "email": "ada@acme.example"}\n'
    "\n"
    '{"tenant_id": "globex", "employee_id": "e1", "name": "Bo", "email": "bo@globex.example"}\n'
)


def test_csv_rows_become_records() -> None:
    ada, grace = read_directory(CSV)
    assert (ada.employee_id, ada.salary_band, ada.location) == ("e1", "L5", None)
    assert (grace.name, grace.department) == ("Hopper, Grace", None)


def test_json_lines_become_records() -> None:
    assert [e.tenant_id for e in read_directory(JSON_LINES)] == ["acme", "globex"]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (CSV + "acme,e3,,nobody@acme.example,,\n", 4, "name is empty"),
        (CSV + "acme,e3,X,x@acme.example,,,extra\n", 4, "more values than header columns"),
        ("tenant_id,employee_id,name\n", 1, "missing field 'email'"),
        ("tenant_id,employee_id,name,email,salary\n", 1, "unknown field 'salary'"),
        (JSON_LINES + "[1, 2]\n", 4, "not a JSON object"),
        (JSON_LINES + '{"tenant_id": "a"\n', 4, "not a JSON object"),
        (
            JSON_LINES + '{"tenant_id": "a", "employee_id": 7, "name": "N", "email": "e"}\n',
            4,
            "employee_id must be text",
        ),
    ],
)
def test_a_bad_row_is_named_by_its_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(DirectoryFileError) as raised:
        read_directory(text)
    assert raised.value.line == line
    assert raised.value.reason.startswith(reason)


def employees_in(database: Path, tenant: str, employee_id: str) -> str | None:
    async def look() -> str | None:
        store = SQLiteStore(str(database))
        await store.open()
        try:
            found = await store.find_employee(tenant, employee_id)
        finally:
            await store.close()
        return None if found is None else found.name

    return asyncio.run(look())


def test_the_command_imports_idempotently_and_refuses_a_bad_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "chatkit.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.chdir(tmp_path)
    good = tmp_path / "directory.csv"
    good.write_text(CSV)
    assert main(["import-directory", str(good)]) == 0
    assert main(["import-directory", str(good)]) == 0
    assert "imported 2 employee record(s)" in capsys.readouterr().out
    assert employees_in(database, "acme", "e2") == "Hopper, Grace"

    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"tenant_id": "acme", "employee_id": "e1", "name": "Renamed", "email": "a@x"}\n'
        '{"tenant_id": "acme", "employee_id": "e9", "name": "", "email": "b@x"}\n'
    )
    assert main(["import-directory", str(bad)]) == 1
    assert f"{bad}: line 2: name is empty; nothing imported" in capsys.readouterr().err
    assert employees_in(database, "acme", "e1") == "Ada Lovelace"
