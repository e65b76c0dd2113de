"""A loopback identity provider for the auth tests: it signs tokens with its own RSA and EC keys
and publishes them as a JWKS (`/jwks`) and through OpenID discovery
(`/.well-known/openid-configuration`), counting every fetch. It runs in a thread on 127.0.0.1,
so the service's real HTTP client fetches from it."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "chatkit-backend"
HS_SECRET = "test-hs256-secret-0123456789abcdef-SECRET"


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: Any

    @property
    def public_jwk(self) -> dict[str, Any]:
        tool = RSAAlgorithm if self.algorithm.startswith(("RS", "PS")) else ECAlgorithm
        jwk: dict[str, Any] = json.loads(tool.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    @property
    def public_pem(self) -> bytes:
        key: bytes = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return key


_RSA_POOL_SIZE = 6
_rsa_taken = itertools.count()


@functools.cache
def _rsa_private(slot: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def rsa_key(kid: str | None = None) -> SigningKey:
    """A new RSA key. Generating one takes a while, so they come from a pool of six: any six
    consecutive calls give six different keys."""
    private = _rsa_private(next(_rsa_taken) % _RSA_POOL_SIZE)
    return SigningKey(kid or f"rsa-{uuid.uuid4().hex[:8]}", "RS256", private)


def ec_key(kid: str | None = None) -> SigningKey:
    return SigningKey(
        kid or f"ec-{uuid.uuid4().hex[:8]}", "ES256", ec.generate_private_key(ec.SECP256R1())
    )


def claims(issuer: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": "alice",
        "tenant": "acme",
        "role": "manager",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: SigningKey, payload: dict[str, Any], **header: Any) -> str:
    return jwt.encode(
        payload, key.private, algorithm=key.algorithm, headers={"kid": key.kid, **header}
    )


def sign_hs256(payload: dict[str, Any], secret: str = HS_SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], hmac_key: bytes | None = None) -> str:
    """A token PyJWT would refuse to make: `alg: none`, or HS256 keyed with any bytes (such as
    an RSA public key, the classic algorithm-confusion attack)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = b""
    if hmac_key is not None:
        signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


@dataclass
class IdentityProvider:
    keys: list[SigningKey] = field(default_factory=lambda: [rsa_key(), ec_key()])
    jwks_fetches: int = 0
    discovery_fetches: int = 0
    failing: bool = False
    """Answer every request with a 500 (the issuer is down)."""
    discovery_issuer: str | None = None
    """The `issuer` the discovery document claims (default: the real one)."""
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/jwks"

    @property
    def rsa(self) -> SigningKey:
        return next(k for k in self.keys if k.algorithm == "RS256")

    @property
    def ec(self) -> SigningKey:
        return next(k for k in self.keys if k.algorithm == "ES256")

    def token(self, key: SigningKey | None = None, **overrides: Any) -> str:
        return sign(key or self.rsa, claims(self.issuer, **overrides))

    def rotate(self) -> SigningKey:
        """Replace the RSA key by a new one (new `kid`), as an issuer rotating its keys."""
        new = rsa_key()
        with self._lock:
            self.keys = [new, *(k for k in self.keys if k.algorithm != "RS256")]
        return new

    def start(self) -> IdentityProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if provider.failing:
                    self._answer(500, {"error": "down"})
                elif self.path == "/jwks":
                    with provider._lock:
                        provider.jwks_fetches += 1
                        body = {"keys": [k.public_jwk for k in provider.keys]}
                    self._answer(200, body)
                elif self.path == "/.well-known/openid-configuration":
                    with provider._lock:
                        provider.discovery_fetches += 1
                    self._answer(
                        200,
                        {
                            "issuer": provider.discovery_issuer or provider.issuer,
                            "jwks_uri": provider.jwks_url,
                        },
                    )
                else:
                    self._answer(404, {"error": "not found"})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
