"""Binding the listening sockets up front, with one clear line when an address cannot be used."""

from __future__ import annotations

import errno
import socket

from hypercorn.config import Config, Sockets

from service.settings import Settings


class ServeError(Exception):
    """Why the server cannot run, in one line for the person starting it."""


def listen_addresses(settings: Settings) -> list[tuple[str, str]]:
    """Each address to listen on, with the setting that chooses its port."""
    addresses = [(f"{settings.host}:{settings.port}", "PORT")]
    if settings.metrics_port is not None:
        addresses.append((f"{settings.host}:{settings.metrics_port}", "METRICS_PORT"))
    return addresses


def bind_sockets(settings: Settings) -> Sockets:
    """Bind every address of `settings` with Hypercorn's socket options."""
    bound: list[socket.socket] = []
    for address, port_setting in listen_addresses(settings):
        one = Config()
        one.bind = [address]
        one.workers = settings.workers  # several workers share a port through SO_REUSEPORT
        try:
            bound.extend(one.create_sockets().insecure_sockets)
        except OSError as exc:
            for sock in bound:
                sock.close()
            raise ServeError(cannot_listen(address, port_setting, exc)) from None
    return Sockets(secure_sockets=[], insecure_sockets=bound, quic_sockets=[])


def cannot_listen(address: str, port_setting: str, error: OSError) -> str:
    if isinstance(error, socket.gaierror):
        reason = "no such host — set HOST to a name or address of this machine"
    elif error.errno == errno.EADDRINUSE:
        reason = f"address already in use — set {port_setting} or stop the other process"
    elif error.errno == errno.EADDRNOTAVAIL:
        reason = "not an address of this machine — set HOST (0.0.0.0 listens on all)"
    elif error.errno == errno.EACCES:
        reason = f"permission denied — set {port_setting} to a port above 1023"
    else:
        reason = (error.strerror or str(error)).lower()
    return f"cannot listen on {address}: {reason}"
