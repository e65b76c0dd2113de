"""checkov on the rendered manifests (render first, then `--framework kubernetes`: its helm
framework passes silently without a helm binary). Every finding left is justified below, for
the objects it may concern, and every justification must still be needed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import ROOT, load_values, render_chart

CHECKOV = ROOT / ".venv" / "tools" / "checkov" / "bin" / "checkov"
VALUE_SETS = ("defaults", "minimal", "production", "gke-gateway", "sqlite-persistence")

# check id -> (why it stays, the (value set, kind) pairs it may fail on; "*" for any).
JUSTIFIED: dict[str, tuple[str, set[tuple[str, str]]]] = {
    # CPU limits throttle the event loop mid-stream (CFS quotas), which shows as stalled SSE
    # streams and late heartbeats; the chart sets CPU requests and memory limits instead.
    "CKV_K8S_11": (
        "no CPU limits on purpose",
        {("*", "Deployment"), ("*", "CronJob"), ("*", "Pod")},
    ),
    # IfNotPresent with immutable tags or a digest; Always would make every restart depend on
    # the registry. Users can set image.pullPolicy.
    "CKV_K8S_15": (
        "IfNotPresent by default",
        {("*", "Deployment"), ("*", "CronJob"), ("*", "Pod")},
    ),
    # The service reads its settings from the environment (pydantic-settings), keys included;
    # mounting them as files would need a code change. The Secret is never in the ConfigMap.
    "CKV_K8S_35": (
        "settings come from environment variables",
        {("*", "Deployment"), ("*", "CronJob")},
    ),
    # A digest is a value (image.digest); the production example pins one, the defaults cannot
    # know it.
    "CKV_K8S_43": (
        "digest only where the values set one",
        {(s, k) for s in VALUE_SETS if s != "production" for k in ("Deployment", "CronJob", "Pod")},
    ),
    # The helm test Pod runs one HTTP check and exits: probes make no sense there, and it is a
    # client, not a server, so no NetworkPolicy selects it (the server's policy admits it).
    "CKV_K8S_8": ("helm test pod", {("*", "Pod")}),
    "CKV_K8S_9": ("helm test pod", {("*", "Pod")}),
    "CKV2_K8S_6": ("helm test pod", {("*", "Pod")}),
}


def allowed(check_id: str, value_set: str, kind: str) -> bool:
    if check_id not in JUSTIFIED:
        return False
    pairs = JUSTIFIED[check_id][1]
    return (value_set, kind) in pairs or ("*", kind) in pairs


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, str, str]]:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run scripts/system-deps (CI runs it)")
    directory = tmp_path_factory.mktemp("manifests")
    for value_set in VALUE_SETS:
        for index, doc in enumerate(render_chart(load_values(value_set)).objects):
            name = f"{value_set}__{index:02d}__{doc['kind']}.yaml"
            (directory / name).write_text(yaml.safe_dump(doc, sort_keys=False))
    result = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(directory),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--quiet",
            "--compact",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert reports, result.stdout[:2000]
    assert reports[0]["summary"]["resource_count"] > 40, result.stdout[:2000]
    assert reports[0]["summary"]["parsing_errors"] == 0
    out = []
    for report in reports:
        for check in report["results"]["failed_checks"]:
            value_set, _, kind = Path(check["file_path"]).stem.split("__")
            out.append((check["check_id"], value_set, kind, check["check_name"]))
    return out


def test_no_unjustified_checkov_findings(findings: list[tuple[str, str, str, str]]) -> None:
    unjustified = sorted({f for f in findings if not allowed(f[0], f[1], f[2])})
    assert unjustified == []


def test_every_justification_is_still_needed(findings: list[tuple[str, str, str, str]]) -> None:
    assert {f[0] for f in findings} == set(JUSTIFIED)
    # The production example pins the image by digest: no digest finding there.
    assert not [f for f in findings if f[0] == "CKV_K8S_43" and f[1] == "production"]
