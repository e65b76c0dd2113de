"""What the rendered objects promise: probes on real routes, settings that reach the service,
pods that roll on change, hardened pods, a drain-sized grace period, gated extras."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings, load_settings
from tests.deploy.conftest import (
    CHART,
    FULLNAME,
    NAMESPACE,
    ROOT,
    Rendered,
    pod_specs,
    render_chart,
)

POSTGRES = {"secrets": {"databaseUrl": "postgresql://u:p@db:5432/chat"}}


def app_routes(tmp_path: Path) -> set[str]:
    from service.app import create_app

    settings = load_settings(_env_file=None, database_url=f"sqlite:///{tmp_path}/probe.db")
    return {rule.rule for rule in create_app(settings).url_map.iter_rules()}


def container_ports(container: dict[str, Any]) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container.get("ports", [])}


def test_probes_point_at_real_routes_and_ports(
    rendered_sets: dict[str, Rendered], tmp_path: Path
) -> None:
    rendered = rendered_sets["defaults"]
    server = rendered.server
    routes = app_routes(tmp_path)
    ports = container_ports(server)
    probes = {
        kind: server[kind]["httpGet"]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    # Liveness never touches dependencies; startup and readiness check the store and drain.
    assert {kind: get["path"] for kind, get in probes.items()} == {
        "startupProbe": "/readyz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    for get in probes.values():
        assert get["path"] in routes
        assert ports[get["port"]] == int(rendered.config["PORT"])
    assert rendered.config["HOST"] == "0.0.0.0"
    # The Service sends HTTP to that port.
    service = rendered.one("Service")
    http = next(p for p in service["spec"]["ports"] if p["name"] == "http")
    assert ports[http["targetPort"]] == int(rendered.config["PORT"])
    # The helm test pod checks readiness through the Service.
    test_pod = rendered.one("Pod")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    url = test_pod["spec"]["containers"][0]["command"][-1]
    assert url == f"http://{FULLNAME}.{NAMESPACE}.svc:{http['port']}/readyz"


def test_probe_routes_check_fails_for_a_route_the_service_lacks(tmp_path: Path) -> None:
    routes = app_routes(tmp_path)
    assert "/healthz" in routes
    assert "/livez" not in routes


def test_metrics_are_scraped_from_the_port_the_service_serves_them_on(
    rendered_sets: dict[str, Rendered],
) -> None:
    for name, expected_port_name in (("minimal", "metrics"), ("gke-gateway", "http")):
        rendered = rendered_sets[name]
        endpoint = rendered.one("ServiceMonitor")["spec"]["endpoints"][0]
        assert endpoint["path"] == "/metrics"
        assert endpoint["port"] == expected_port_name
        service_port = next(
            p for p in rendered.one("Service")["spec"]["ports"] if p["name"] == endpoint["port"]
        )
        container_port = container_ports(rendered.server)[service_port["targetPort"]]
        if expected_port_name == "metrics":
            assert rendered.config["METRICS_PORT"] == str(container_port)
        else:
            assert "METRICS_PORT" not in rendered.config
            assert rendered.config["PORT"] == str(container_port)


def test_configmap_and_secret_drive_the_provider_and_keys() -> None:
    rendered = render_chart(
        {
            "config": {"llmProvider": "gemini", "geminiDefaultModel": "gemini-2.5-pro"},
            "secrets": {
                "openaiApiKey": "sk-test-openai",
                "geminiApiKey": "AIza-test-gemini",
                "databaseUrl": "postgresql://chat:pw@db:5432/chat",
            },
        }
    )
    assert rendered.config["LLM_PROVIDER"] == "gemini"
    assert rendered.config["GEMINI_DEFAULT_MODEL"] == "gemini-2.5-pro"
    assert rendered.config["OPENAI_DEFAULT_MODEL"] == "gpt-4.1-mini"
    assert rendered.secret == {
        "OPENAI_API_KEY": "sk-test-openai",
        "GEMINI_API_KEY": "AIza-test-gemini",
        "DATABASE_URL": "postgresql://chat:pw@db:5432/chat",
    }
    # No secret in the ConfigMap.
    assert not {"OPENAI_API_KEY", "GEMINI_API_KEY", "DATABASE_URL"} & set(rendered.config)
    for container in [rendered.server, *rendered.pod_spec["initContainers"]]:
        assert container["envFrom"][:2] == [
            {"configMapRef": {"name": FULLNAME}},
            {"secretRef": {"name": FULLNAME}},
        ]


def test_existing_secret_replaces_the_charts_secret() -> None:
    rendered = render_chart({"existingSecret": "chatkit-keys"})
    assert not rendered.has("Secret")
    assert {"secretRef": {"name": "chatkit-keys"}} in rendered.server["envFrom"]
    assert rendered.pod_annotations["checksum/secret"]


@pytest.mark.parametrize(
    "value_set", ["defaults", "minimal", "production", "gke-gateway", "sqlite-persistence"]
)
def test_rendered_settings_are_ones_the_service_reads_and_accepts(
    rendered_sets: dict[str, Rendered], value_set: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = rendered_sets[value_set]
    env = dict(rendered.config)
    if rendered.has("Secret"):
        env.update(rendered.secret)
    known = {name.upper() for name in Settings.model_fields}
    unknown = set(env) - known
    assert unknown == set(), "the chart sets variables the service does not read"
    for name in known:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(_env_file=None)
    assert settings.llm_provider == env["LLM_PROVIDER"]
    assert settings.port == int(env["PORT"])
    assert settings.environment == env["ENVIRONMENT"]


def test_large_and_fractional_numbers_render_as_the_service_parses_them(
    rendered_sets: dict[str, Rendered],
) -> None:
    config = rendered_sets["gke-gateway"].config
    assert config["MAX_REQUEST_BYTES"] == "33554432"
    assert config["LLM_TIMEOUT_SECONDS"] == "90.5"
    assert config["TITLE_GENERATION"] == "false"
    # Unset tuning values are left to the service's defaults.
    assert "HISTORY_MAX_ITEMS" not in config
    assert "OPENAI_BASE_URL" not in rendered_sets["defaults"].config


def test_pods_roll_when_config_or_secret_changes() -> None:
    base = render_chart().pod_annotations
    config_changed = render_chart({"config": {"logLevel": "DEBUG"}}).pod_annotations
    secret_changed = render_chart({"secrets": {"openaiApiKey": "sk-new"}}).pod_annotations
    assert config_changed["checksum/config"] != base["checksum/config"]
    assert config_changed["checksum/secret"] == base["checksum/secret"]
    assert secret_changed["checksum/secret"] != base["checksum/secret"]
    assert secret_changed["checksum/config"] == base["checksum/config"]
    # Rendering twice gives the same checksums: no rollout without a change.
    assert render_chart().pod_annotations == base
    # With existingSecret, renaming the Secret rolls the pods.
    one = render_chart({"existingSecret": "keys-v1"}).pod_annotations["checksum/secret"]
    two = render_chart({"existingSecret": "keys-v2"}).pod_annotations["checksum/secret"]
    assert one != two


def dockerfile_uid() -> int:
    match = re.search(r"^ARG APP_UID=(\d+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert match
    return int(match.group(1))


@pytest.mark.parametrize(
    "value_set", ["defaults", "minimal", "production", "gke-gateway", "sqlite-persistence"]
)
def test_pod_security_context_is_hardened(
    rendered_sets: dict[str, Rendered], value_set: str
) -> None:
    uid = dockerfile_uid()
    specs = dict(pod_specs(rendered_sets[value_set]))
    assert specs
    for name, spec in specs.items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] == uid, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["enableServiceLinks"] is False, name
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            context = container["securityContext"]
            where = f"{name}/{container['name']}"
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["privileged"] is False, where
            assert context["runAsNonRoot"] is True, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert "limits" in container["resources"], where


def test_read_only_root_keeps_writable_paths_on_volumes(
    rendered_sets: dict[str, Rendered],
) -> None:
    for name in ("defaults", "gke-gateway"):
        rendered = rendered_sets[name]
        volumes = {v["name"]: v for v in rendered.pod_spec["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in rendered.server["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]
        # SQLite's default ./data/chatkit.db, relative to the image's WORKDIR /app.
        assert "/app/data" in mounts
        multiproc = rendered.config.get("PROMETHEUS_MULTIPROC_DIR")
        if int(rendered.config["WORKERS"]) > 1:
            assert multiproc in mounts
            assert "emptyDir" in volumes[mounts[multiproc]]
        else:
            assert multiproc is None
    persistent = rendered_sets["sqlite-persistence"]
    volumes = {v["name"]: v for v in persistent.pod_spec["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == FULLNAME
    assert persistent.deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert persistent.has("PersistentVolumeClaim")
    workdir = re.findall(r"^WORKDIR (\S+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert workdir[-1] == "/app"


def test_grace_period_covers_the_prestop_pause_and_the_drain(
    rendered_sets: dict[str, Rendered],
) -> None:
    rendered = rendered_sets["defaults"]
    drain = int(rendered.config["SHUTDOWN_DRAIN_SECONDS"])
    sleep = rendered.server["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    # docs/metrics.md: at least SHUTDOWN_DRAIN_SECONDS + 10, plus any preStop sleep.
    assert rendered.pod_spec["terminationGracePeriodSeconds"] == int(sleep[1]) + drain + 10
    assert drain == 25
    custom = rendered_sets["sqlite-persistence"]
    assert "lifecycle" not in custom.server
    assert custom.config["SHUTDOWN_DRAIN_SECONDS"] == "40"
    assert custom.pod_spec["terminationGracePeriodSeconds"] == 50


def test_migrations_run_before_the_new_version_serves(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["defaults"]
    (init,) = rendered.pod_spec["initContainers"]
    assert init["args"] == ["migrate"]
    assert init["image"] == rendered.server["image"]
    assert {m["mountPath"] for m in init["volumeMounts"]} >= {"/tmp", "/app/data"}
    # The server then refuses an old schema instead of migrating it.
    assert rendered.config["DATABASE_AUTO_MIGRATE"] == "false"
    without = rendered_sets["sqlite-persistence"]
    assert "initContainers" not in without.pod_spec
    assert without.config["DATABASE_AUTO_MIGRATE"] == "true"


def test_topology_spread_selects_the_server_pods(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["defaults"]
    constraints = rendered.pod_spec["topologySpreadConstraints"]
    pod_labels = rendered.deployment["spec"]["template"]["metadata"]["labels"]
    assert [c["topologyKey"] for c in constraints] == [
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    ]
    for constraint in constraints:
        assert constraint["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    assert "topologySpreadConstraints" not in rendered_sets["sqlite-persistence"].pod_spec


def test_pdb_only_when_more_than_one_pod_runs() -> None:
    assert not render_chart().has("PodDisruptionBudget")
    assert render_chart({**POSTGRES, "replicaCount": 2}).has("PodDisruptionBudget")
    autoscaled = render_chart({**POSTGRES, "autoscaling": {"enabled": True, "minReplicas": 2}})
    assert autoscaled.has("PodDisruptionBudget")
    assert "replicas" not in autoscaled.deployment["spec"]
    hpa = autoscaled.one("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == FULLNAME
    single = render_chart({**POSTGRES, "autoscaling": {"enabled": True, "minReplicas": 1}})
    assert not single.has("PodDisruptionBudget")
    pdb = render_chart({**POSTGRES, "replicaCount": 3}).one("PodDisruptionBudget")
    pods = render_chart({**POSTGRES, "replicaCount": 3}).deployment
    assert (
        pdb["spec"]["selector"]["matchLabels"].items()
        <= pods["spec"]["template"]["metadata"]["labels"].items()
    )


def test_ingress_carries_what_sse_needs(rendered_sets: dict[str, Rendered]) -> None:
    annotations = rendered_sets["production"].one("Ingress")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    gce = rendered_sets["gke-gateway"].one("Ingress")
    assert not any(k.startswith("nginx.") for k in gce["metadata"].get("annotations", {}))


def test_gke_load_balancers_keep_streams_open(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["gke-gateway"]
    backend = rendered.one("BackendConfig")
    assert backend["spec"]["timeoutSec"] >= 3600
    assert backend["spec"]["healthCheck"]["requestPath"] == "/readyz"
    service = rendered.one("Service")
    assert json.loads(service["metadata"]["annotations"]["cloud.google.com/backend-config"]) == {
        "default": backend["metadata"]["name"]
    }
    policy = rendered.one("GCPBackendPolicy")
    assert policy["spec"]["default"]["timeoutSec"] == 7200
    assert policy["spec"]["targetRef"] == {"group": "", "kind": "Service", "name": FULLNAME}
    health = rendered.one("HealthCheckPolicy")["spec"]
    # GKE's Gateway would check `/` (a 404 here); the chart points it at readiness.
    assert health["targetRef"] == policy["spec"]["targetRef"]
    assert health["default"]["config"] == {
        "type": "HTTP",
        "httpHealthCheck": {"portSpecification": "USE_SERVING_PORT", "requestPath": "/readyz"},
    }
    assert set(health["default"]) == {
        "checkIntervalSec",
        "timeoutSec",
        "healthyThreshold",
        "unhealthyThreshold",
        "config",
    }
    route = rendered.one("HTTPRoute")
    backend_ref = route["spec"]["rules"][0]["backendRefs"][0]
    assert backend_ref == {"name": FULLNAME, "port": service["spec"]["ports"][0]["port"]}


def test_network_policy_admits_clients_ingress_and_monitoring(
    rendered_sets: dict[str, Rendered],
) -> None:
    rendered = rendered_sets["production"]
    policy = rendered.one("NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= (
        rendered.deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    http_rule, metrics_rule = policy["ingress"]
    assert http_rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    client_label = {f"{FULLNAME}-client": "true"}
    assert {"podSelector": {"matchLabels": client_label}} in http_rule["from"]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    } in http_rule["from"]
    assert metrics_rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    # The helm test pod is a client the policy admits.
    assert rendered.one("Pod")["metadata"]["labels"].items() >= client_label.items()


def test_service_account_carries_workload_identity(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["production"]
    account = rendered.one("ServiceAccount")
    assert account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].endswith(
        ".iam.gserviceaccount.com"
    )
    assert account["automountServiceAccountToken"] is False
    assert rendered.pod_spec["serviceAccountName"] == account["metadata"]["name"]


def test_monitoring_objects_are_gated_on_values(rendered_sets: dict[str, Rendered]) -> None:
    defaults = rendered_sets["defaults"]
    assert not defaults.has("ServiceMonitor")
    assert not defaults.has("PrometheusRule")
    assert [cm["metadata"]["name"] for cm in defaults.of_kind("ConfigMap")] == [FULLNAME]
    minimal = rendered_sets["minimal"]
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert minimal.one(kind)["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    dashboard = minimal.one("ConfigMap", f"{FULLNAME}-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "dashboards" / "chatkit-backend.json").read_text())
    assert json.loads(dashboard["data"]["chatkit-backend.json"]) == shipped


def test_prune_cronjob_runs_the_prune_command(rendered_sets: dict[str, Rendered]) -> None:
    production = rendered_sets["production"]
    job = production.one("CronJob")
    spec = job["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    (container,) = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    # olderThan "" in the production example: the CLI falls back to RETENTION_DAYS.
    assert container["args"] == ["prune"]
    assert production.config["RETENTION_DAYS"] == "90"
    explicit = render_chart({**POSTGRES, "prune": {"enabled": True}}).one("CronJob")
    (container,) = explicit["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["prune", "--older-than", "30d"]


def test_notes_tell_how_to_reach_and_connect(rendered_sets: dict[str, Rendered]) -> None:
    notes = rendered_sets["defaults"].notes
    assert f"port-forward svc/{FULLNAME} 8000:80" in notes
    assert "/chatkit/api" in notes
    assert "setOptions" in notes
    assert "no API key is set" in notes
    assert "SQLite" in notes
    production = rendered_sets["production"].notes
    assert "https://chatkit.example.com/chatkit/api" in production
    assert "no API key is set" not in production
