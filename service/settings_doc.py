"""Writes `Settings` into the Helm chart and the README, so a setting is written down once.

`python -m service.settings_doc` rewrites the generated blocks (between `BEGIN generated` and
`END generated` lines) of:

- charts/chatkit-backend/values.yaml: the `config:` and `secrets:` entries;
- charts/chatkit-backend/values.schema.json: `config` and `secrets`;
- charts/chatkit-backend/templates/configmap.yaml and secret.yaml: variable -> value;
- README.md: the configuration table.

`--check` changes nothing and exits 1 when a block differs from what `Settings` gives (CI and
tests/deploy/test_settings_source.py run it).

Each setting lands in one place of the chart: `secrets.*` (SecretStr fields and `SECRET_STRINGS`),
the chart's own values (`CHART_OWNED`), or else `config.*`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "python -m service.settings_doc"

# Settings the chart derives from its own values (templates/configmap.yaml sets them by hand).
CHART_OWNED: dict[str, str] = {
    "host": "always `0.0.0.0`",
    "port": "`containerPort`",
    "metrics_enabled": "`metrics.enabled`",
    "metrics_port": "`metrics.port`",
    "prometheus_multiproc_dir": "set when `config.workers` > 1",
    "shutdown_drain_seconds": "`shutdown.drainSeconds`",
    "database_auto_migrate": "`false` while `migrations.initContainer` migrates",
}
# Plain strings that can carry a password, so they go to the Secret like SecretStr fields.
SECRET_STRINGS = frozenset({"database_url"})
# `config.*` values the chart's templates read, so values.yaml spells them out; every other
# `config.*` value is null there, which leaves the variable unset (the service's default).
CHART_READS = frozenset(
    {
        "environment",
        "llm_provider",
        "workers",
        "openai_default_model",
        "gemini_default_model",
        "auth_mode",
    }
)
# Where the chart's default deliberately differs from the service's.
# `dev` is refused in production, so the chart starts from `jwt`.
CHART_DEFAULTS: dict[str, Any] = {"environment": "production", "auth_mode": "jwt"}

SECRETS_EXTRA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "propertyNames": {"pattern": "^[A-Z][A-Z0-9_]*$"},
    "additionalProperties": {"type": "string"},
}
_YAML_WIDTH = 120
UNSET_MARK = "\N{EN DASH}"
"""The README's default column for a setting that is unset by default."""

Placement = Literal["config", "secrets", "chart"]


@dataclass(frozen=True, slots=True)
class SettingDoc:
    """One setting as the chart and the README present it."""

    name: str
    variable: str
    placement: Placement
    key: str
    """The key under `config:` or `secrets:` (camelCase of the name)."""
    default: Any
    """The service's default (None: unset)."""
    description: str
    schema: dict[str, Any]
    """JSON schema of the setting's value, from pydantic."""

    @property
    def chart_value(self) -> str:
        if self.placement == "chart":
            return CHART_OWNED[self.name]
        where = f"`{self.placement}.{self.key}`"
        if self.name in CHART_DEFAULTS:
            where += f" (chart default: `{show_value(CHART_DEFAULTS[self.name])}`)"
        return where


def camel_case(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def describe_settings(settings_cls: type[Settings] = Settings) -> list[SettingDoc]:
    properties = settings_cls.model_json_schema()["properties"]
    docs = []
    for name, field in settings_cls.model_fields.items():
        if not field.description:
            raise ValueError(f"Settings.{name} has no docstring: say what it does")
        docs.append(
            SettingDoc(
                name=name,
                variable=name.upper(),
                placement=_placement(name, field),
                key=camel_case(name),
                default=field.default,
                description=" ".join(field.description.split()),
                schema=properties[name],
            )
        )
    return docs


def _placement(name: str, field: FieldInfo) -> Placement:
    if name in CHART_OWNED:
        return "chart"
    if name in SECRET_STRINGS or _holds_secret(field.annotation):
        return "secrets"
    return "config"


def _holds_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


# --- values ---------------------------------------------------------------------------------


def chart_default(doc: SettingDoc) -> Any:
    """The value values.yaml gives the setting (None: left to the service)."""
    if doc.placement == "secrets":
        return ""
    if doc.name in CHART_DEFAULTS:
        return CHART_DEFAULTS[doc.name]
    return doc.default if doc.name in CHART_READS else None


def show_value(value: Any) -> str:
    """A value as the service reads it from the environment."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool | int | float):
        return show_value(value)
    if isinstance(value, str):
        plain = re.fullmatch(r"[A-Za-z][A-Za-z0-9._-]*", value)
        special = value.lower() in {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}
        return value if plain and not special else json.dumps(value)
    return json.dumps(value)


def values_block(docs: Sequence[SettingDoc], placement: Placement) -> list[str]:
    lines = []
    for doc in docs:
        if doc.placement != placement:
            continue
        value = chart_default(doc)
        note = ""
        if placement == "config" and value is None:
            note = (
                " (null: unset)" if doc.default is None else f" (null: {show_value(doc.default)})"
            )
        elif doc.name in CHART_DEFAULTS:
            note = f" (the service alone: {show_value(doc.default)})"
        lines += textwrap.wrap(
            doc.description, _YAML_WIDTH, initial_indent="  ## ", subsequent_indent="  ## "
        )
        lines.append(f"  ## @param {placement}.{doc.key} `{doc.variable}`{note}")
        lines.append(f"  {doc.key}: {_yaml_scalar(value)}")
    return lines


# --- values.schema.json ---------------------------------------------------------------------

_SCHEMA_NOISE = {"title", "default", "description", "format", "writeOnly"}
_SCHEMA_KEY_ORDER = {
    key: i
    for i, key in enumerate(
        ("type", "enum", "minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "pattern")
    )
}


def chart_schema(doc: SettingDoc) -> dict[str, Any]:
    """The JSON schema of the chart value: pydantic's, where null and "" mean "unset"."""
    top = {k: v for k, v in doc.schema.items() if k not in _SCHEMA_NOISE and k != "anyOf"}
    branches = doc.schema.get("anyOf", [{}])
    typed = [b for b in branches if b.get("type") != "null"]
    if len(typed) != 1:
        raise ValueError(f"{doc.variable}: only one type besides null can go into the chart")
    out = {k: v for k, v in typed[0].items() if k not in _SCHEMA_NOISE} | top
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "pattern" in out:
        out["pattern"] = f"^$|{out['pattern']}"
    nullable = doc.placement == "config" and chart_default(doc) is None
    if nullable:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return dict(sorted(out.items(), key=lambda item: _SCHEMA_KEY_ORDER.get(item[0], 99)))


def schema_sections(docs: Sequence[SettingDoc]) -> dict[str, dict[str, Any]]:
    config = [d for d in docs if d.placement == "config"]
    secrets = [d for d in docs if d.placement == "secrets"]
    return {
        "config": {
            "type": "object",
            "properties": {d.key: chart_schema(d) for d in config},
            "additionalProperties": False,
            "required": [d.key for d in config if chart_default(d) is not None],
        },
        "secrets": {
            "type": "object",
            "properties": {
                **{d.key: chart_schema(d) for d in secrets},
                "extra": SECRETS_EXTRA_SCHEMA,
            },
            "additionalProperties": False,
        },
    }


def regenerate_schema(text: str, docs: Sequence[SettingDoc]) -> str:
    schema = json.loads(text)
    schema["properties"].update(schema_sections(docs))
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


# --- templates ------------------------------------------------------------------------------


def template_dict(
    docs: Sequence[SettingDoc], placement: Placement, var: str, src: str
) -> list[str]:
    entries = [f'  "{d.variable}" {src}.{d.key}' for d in docs if d.placement == placement]
    return [f"{{{{- {var} := dict", *entries, "}}"]


# --- README ---------------------------------------------------------------------------------


def readme_table(docs: Sequence[SettingDoc]) -> list[str]:
    lines = ["| variable | default | meaning | in the chart |", "|---|---|---|---|"]
    for doc in docs:
        default = UNSET_MARK if doc.default is None else f"`{show_value(doc.default)}`"
        meaning = doc.description.replace("|", "\\|")
        lines.append(f"| `{doc.variable}` | {default} | {meaning} | {doc.chart_value} |")
    return lines


# --- blocks between markers -----------------------------------------------------------------


def replace_block(text: str, block: str, lines: Sequence[str]) -> str:
    """Puts `lines` between the `BEGIN generated <block>` and `END generated <block>` lines."""
    old = text.split("\n")
    begins = [i for i, line in enumerate(old) if f"BEGIN generated {block}" in line]
    ends = [i for i, line in enumerate(old) if f"END generated {block}" in line]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise ValueError(f"expected one BEGIN/END generated {block} pair")
    return "\n".join([*old[: begins[0] + 1], *lines, *old[ends[0] :]])


@dataclass(frozen=True, slots=True)
class Target:
    path: Path
    regenerate: Callable[[str, Sequence[SettingDoc]], str]


def _blocks(
    *blocks: tuple[str, Callable[[Sequence[SettingDoc]], list[str]]],
) -> Callable[[str, Sequence[SettingDoc]], str]:
    def regenerate(text: str, docs: Sequence[SettingDoc]) -> str:
        for block, make in blocks:
            text = replace_block(text, block, make(docs))
        return text

    return regenerate


def targets(root: Path = ROOT) -> list[Target]:
    chart = root / "charts" / "chatkit-backend"
    return [
        Target(
            chart / "values.yaml",
            _blocks(
                ("config", lambda d: values_block(d, "config")),
                ("secrets", lambda d: values_block(d, "secrets")),
            ),
        ),
        Target(chart / "values.schema.json", regenerate_schema),
        Target(
            chart / "templates" / "configmap.yaml",
            _blocks(("config", lambda d: template_dict(d, "config", "$settings", "$c"))),
        ),
        Target(
            chart / "templates" / "secret.yaml",
            _blocks(("secrets", lambda d: template_dict(d, "secrets", "$data", "$s"))),
        ),
        Target(root / "README.md", _blocks(("settings-table", readme_table))),
    ]


def generate(
    settings_cls: type[Settings] = Settings, root: Path = ROOT
) -> dict[Path, tuple[str, str]]:
    """Each target file's (current, regenerated) text."""
    docs = describe_settings(settings_cls)
    out = {}
    for target in targets(root):
        current = target.path.read_text(encoding="utf-8")
        out[target.path] = (current, target.regenerate(current, docs))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="report drift, change nothing")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this)")
    args = parser.parse_args(argv)
    root: Path = args.root
    stale = []
    for path, (current, fresh) in generate(root=root).items():
        if current == fresh:
            continue
        stale.append(path.relative_to(root))
        if not args.check:
            path.write_text(fresh, encoding="utf-8")
    for path in stale:
        verb = "differs from service/settings.py" if args.check else "regenerated"
        print(f"{path}: {verb}", file=sys.stderr)
    if stale and args.check:
        print(f"run `{COMMAND}` and commit the result", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
