"""Where a PostgreSQL URL points, for log lines: hosts and ports, never user or password."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

DEFAULT_PORT = "5432"


def server_address(dsn: str) -> str:
    """`host:port` (comma-separated when the URL lists several hosts), then `/database`."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    hosts = parts.netloc.rpartition("@")[2] or ",".join(query.get("host", [])) or "localhost"
    port = query.get("port", [DEFAULT_PORT])[0]
    with_ports = [host if _has_port(host) else f"{host}:{port}" for host in hosts.split(",")]
    database = parts.path.lstrip("/")
    return ",".join(with_ports) + (f"/{database}" if database else "")


def _has_port(host: str) -> bool:
    # `[::1]:5432` has one; `[::1]` and `::1` do not.
    return host.rpartition("]")[2].count(":") == 1 if "]" in host else host.count(":") == 1
