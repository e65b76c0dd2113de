"""Settings are written once, in service/settings.py; the chart and the README follow from it.

`python -m service.settings_doc` regenerates the chart's `config`/`secrets` values, their schema,
the ConfigMap and Secret maps and the README's table. These tests fail when any of them drift,
and check the results against `Settings` on their own (not only through the generator).
"""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from typing import Any

import annotated_types
import pytest
import yaml
from pydantic import Field, SecretStr

from service import settings_doc
from service.settings import Settings, load_settings
from service.settings_doc import CHART_DEFAULTS, CHART_OWNED, SettingDoc, camel_case
from tests.deploy.conftest import CHART, ROOT, render_chart

DOCS = settings_doc.describe_settings()
CONFIG = [doc for doc in DOCS if doc.placement == "config"]
SECRETS = [doc for doc in DOCS if doc.placement == "secrets"]


def values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return loaded


def schema_of(section: str) -> dict[str, Any]:
    schema = json.loads((CHART / "values.schema.json").read_text())
    found: dict[str, Any] = schema["properties"][section]["properties"]
    return found


def test_committed_files_equal_a_fresh_generation() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, (current, fresh) in settings_doc.generate().items()
        if current != fresh
    ]
    assert stale == [], f"run `{settings_doc.COMMAND}` and commit the result"


def test_every_setting_has_one_place_in_the_chart() -> None:
    assert set(CHART_OWNED) <= set(Settings.model_fields)
    assert set(settings_doc.SECRET_STRINGS) <= set(Settings.model_fields)
    assert set(settings_doc.CHART_READS) <= {doc.name for doc in CONFIG}
    for doc in DOCS:
        field = Settings.model_fields[doc.name]
        holds_secret = "SecretStr" in str(field.annotation)
        if holds_secret:
            assert doc.placement == "secrets", doc.variable
    assert values()["config"].keys() == {doc.key for doc in CONFIG}
    assert values()["secrets"].keys() == {doc.key for doc in SECRETS} | {"extra"}
    assert schema_of("config").keys() == {doc.key for doc in CONFIG}
    assert schema_of("secrets").keys() == {doc.key for doc in SECRETS} | {"extra"}


def test_chart_values_are_null_or_the_services_default() -> None:
    config = values()["config"]
    for doc in CONFIG:
        value = config[doc.key]
        if doc.name in CHART_DEFAULTS:
            assert value == CHART_DEFAULTS[doc.name]
        elif value is not None:
            assert value == doc.default, doc.variable
    assert all(value == "" for key, value in values()["secrets"].items() if key != "extra")


def _bounds(doc: SettingDoc) -> dict[str, Any]:
    """The range pydantic enforces, read from the field's own metadata."""
    out: dict[str, Any] = {}
    for item in Settings.model_fields[doc.name].metadata:
        if isinstance(item, annotated_types.Ge):
            out["minimum"] = item.ge
        elif isinstance(item, annotated_types.Gt):
            out["exclusiveMinimum"] = item.gt
        elif isinstance(item, annotated_types.Le):
            out["maximum"] = item.le
        elif isinstance(item, annotated_types.Lt):
            out["exclusiveMaximum"] = item.lt
    return out


def _choices(doc: SettingDoc) -> set[Any] | None:
    annotation = Settings.model_fields[doc.name].annotation
    literals = [a for a in (annotation, *typing.get_args(annotation)) if typing.get_origin(a)]
    for candidate in literals:
        if typing.get_origin(candidate) is typing.Literal:
            return set(typing.get_args(candidate))
    return None


@pytest.mark.parametrize("doc", [*CONFIG, *SECRETS], ids=lambda doc: doc.variable)
def test_schema_ranges_and_choices_are_the_services(doc: SettingDoc) -> None:
    schema = schema_of(doc.placement)[doc.key]
    range_keys = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
    assert {k: schema[k] for k in range_keys if k in schema} == _bounds(doc)
    choices = _choices(doc)
    if choices is not None:
        assert set(schema["enum"]) - {None} == choices


def test_readme_table_lists_every_setting_with_its_default() -> None:
    text = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| ([^|]+) \|", text, flags=re.MULTILINE)
    assert [variable for variable, _ in rows] == [doc.variable for doc in DOCS]
    for (variable, default), doc in zip(rows, DOCS, strict=True):
        shown = default.strip().strip("`")
        if doc.default is None:
            assert shown == "\N{EN DASH}", variable
        elif isinstance(doc.default, bool):
            assert shown == str(doc.default).lower(), variable
        elif isinstance(doc.default, int | float):
            assert float(shown) == doc.default, variable
        else:
            assert shown == str(doc.default), variable


def _example(doc: SettingDoc) -> Any:
    """A valid value other than null for the setting, from its chart schema."""
    schema = schema_of(doc.placement)[doc.key]
    if doc.default not in (None, ""):
        return doc.default
    if "enum" in schema:
        return next(choice for choice in schema["enum"] if choice is not None)
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if "boolean" in kinds:
        return True
    if "integer" in kinds:
        return max(schema.get("minimum", 1), 1)
    if "number" in kinds:
        return 1.5
    if "pattern" in schema:
        candidates = [
            "https://models.example.test/v1",
            "postgresql://u:p@db.example.test/chat",
            "redis://:p@cache.example.test:6379/0",
        ]
        return next(c for c in candidates if re.search(schema["pattern"], c))
    return "example"


def test_every_config_value_reaches_the_configmap_and_every_secret_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rendered = render_chart(
        {
            "config": {doc.key: _example(doc) for doc in CONFIG} | {"workers": 2},
            "secrets": {doc.key: _example(doc) for doc in SECRETS},
            "metrics": {"port": 9090},
        }
    )
    assert set(rendered.config) == {doc.variable for doc in CONFIG} | {
        name.upper() for name in CHART_OWNED
    }
    assert set(rendered.secret) == {doc.variable for doc in SECRETS}
    # The service accepts what the chart rendered.
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in {**rendered.config, **rendered.secret}.items():
        monkeypatch.setenv(name, value)
    load_settings(_env_file=None)


def test_null_config_values_leave_the_service_default() -> None:
    rendered = render_chart()
    nulls = {doc.variable for doc in CONFIG if values()["config"][doc.key] is None}
    assert nulls
    assert nulls.isdisjoint(rendered.config)


class _WithNewSetting(Settings):
    attachment_max_bytes: int = Field(default=4_000_000, ge=1, le=100_000_000)
    """Largest attachment accepted."""
    tool_base_url: str | None = Field(default=None, json_schema_extra={"pattern": "^https://"})
    """Where the tool's API is."""


class _WithNewSecret(Settings):
    search_api_key: SecretStr | None = None
    """Key of the search tool."""


class _WithOtherRange(Settings):
    workers: int = Field(default=1, ge=1, le=32)
    """Hypercorn worker processes."""


def _drifted(settings_cls: type[Settings]) -> dict[str, str]:
    return {
        path.name: fresh
        for path, (current, fresh) in settings_doc.generate(settings_cls).items()
        if current != fresh
    }


def test_a_new_setting_without_regeneration_is_drift() -> None:
    drifted = _drifted(_WithNewSetting)
    assert set(drifted) == {
        "values.yaml",
        "values.schema.json",
        "configmap.yaml",
        "README.md",
    }
    assert "attachmentMaxBytes: null" in drifted["values.yaml"]
    assert '"ATTACHMENT_MAX_BYTES" $c.attachmentMaxBytes' in drifted["configmap.yaml"]
    assert "| `ATTACHMENT_MAX_BYTES` | `4000000` |" in drifted["README.md"]
    schema = json.loads(drifted["values.schema.json"])["properties"]["config"]["properties"]
    assert schema["attachmentMaxBytes"] == {
        "type": ["integer", "null"],
        "minimum": 1,
        "maximum": 100_000_000,
    }


def test_a_new_secret_goes_to_the_secret_only() -> None:
    drifted = _drifted(_WithNewSecret)
    assert set(drifted) == {"values.yaml", "values.schema.json", "secret.yaml", "README.md"}
    assert '"SEARCH_API_KEY" $s.searchApiKey' in drifted["secret.yaml"]


def test_a_changed_range_is_drift() -> None:
    drifted = _drifted(_WithOtherRange)
    assert set(drifted) == {"values.schema.json"}


def test_a_setting_without_a_docstring_is_refused() -> None:
    class Undocumented(Settings):
        mystery: int = 3

    with pytest.raises(ValueError, match=r"Settings\.mystery has no docstring"):
        settings_doc.describe_settings(Undocumented)


def test_check_mode_reports_drift_and_writes_nothing(tmp_path: Path) -> None:
    for target in settings_doc.targets():
        copy = tmp_path / target.path.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(target.path.read_text().replace("gpt-4.1-mini", "gpt-0"))
    before = {p: p.read_text() for p in tmp_path.rglob("*") if p.is_file()}
    assert settings_doc.main(["--check", "--root", str(tmp_path)]) == 1
    assert {p: p.read_text() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert settings_doc.main(["--root", str(tmp_path)]) == 0
    assert settings_doc.main(["--check", "--root", str(tmp_path)]) == 0


def test_camel_case() -> None:
    assert camel_case("database_startup_retry_max_seconds") == "databaseStartupRetryMaxSeconds"
