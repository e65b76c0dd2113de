"""Reading an employee directory file: CSV with a header row, or JSON lines (one object per
line). The whole file is checked before anything is written; the first bad row is reported
with its line number."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from service.agents.tools.records import EMPLOYEE_FIELDS, EmployeeRecord

REQUIRED_FIELDS = ("tenant_id", "employee_id", "name", "email")
MAX_FIELD_LENGTH = 500


class DirectoryFileError(ValueError):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


def read_directory(text: str) -> list[EmployeeRecord]:
    rows = _json_lines(text) if text.lstrip().startswith("{") else _csv_rows(text)
    return [_record(line, row) for line, row in rows]


def _csv_rows(text: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames or []
        _check_columns(1, header)
        for row in reader:
            if None in row:
                raise DirectoryFileError(reader.line_num, "more values than header columns")
            yield reader.line_num, row
    except csv.Error as exc:
        raise DirectoryFileError(reader.line_num, f"not valid CSV ({exc})") from None


def _json_lines(text: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise DirectoryFileError(number, "not a JSON object") from None
        if not isinstance(row, dict):
            raise DirectoryFileError(number, "not a JSON object")
        _check_columns(number, list(row))
        yield number, row


def _check_columns(line: int, names: Sequence[str]) -> None:
    unknown = [name for name in names if name not in EMPLOYEE_FIELDS]
    if unknown:
        raise DirectoryFileError(
            line, f"unknown field {unknown[0]!r} (fields: {', '.join(EMPLOYEE_FIELDS)})"
        )
    missing = [name for name in REQUIRED_FIELDS if name not in names]
    if missing:
        raise DirectoryFileError(line, f"missing field {missing[0]!r}")


def _record(line: int, row: Mapping[str, Any]) -> EmployeeRecord:
    values: dict[str, str | None] = {}
    for name in EMPLOYEE_FIELDS:
        value = row.get(name)
        if value is not None and not isinstance(value, str):
            raise DirectoryFileError(line, f"{name} must be text")
        value = (value or "").strip()
        if len(value) > MAX_FIELD_LENGTH:
            raise DirectoryFileError(line, f"{name} is longer than {MAX_FIELD_LENGTH} characters")
        if not value and name in REQUIRED_FIELDS:
            raise DirectoryFileError(line, f"{name} is empty")
        values[name] = value or None
    return EmployeeRecord(
        tenant_id=values["tenant_id"] or "",
        employee_id=values["employee_id"] or "",
        name=values["name"] or "",
        email=values["email"] or "",
        department=values["department"],
        title=values["title"],
        manager_id=values["manager_id"],
        location=values["location"],
        salary_band=values["salary_band"],
        personal_phone=values["personal_phone"],
    )
