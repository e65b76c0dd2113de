"""Test helpers for signed GCS URLs: a generated service-account key, and an independent check
of a V4 signature (fake-gcs-server accepts any signature, so the tests verify it themselves)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SERVICE_ACCOUNT = "chatkit-test@test-project.iam.gserviceaccount.com"
GCS_HOST = "storage.googleapis.com"
"""fake-gcs-server serves signed (XML-API style) paths only for requests to this host name."""


@dataclass
class ServiceAccountKey:
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> ServiceAccountKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def info(self) -> dict[str, str]:
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": "test-project",
            "private_key_id": "test-key",
            "private_key": pem,
            "client_email": SERVICE_ACCOUNT,
            "client_id": "1",
            "token_uri": "https://oauth2.googleapis.com/token",
        }

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.info()))
        return path

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def string_to_sign(url: str, method: str, headers: dict[str, str]) -> bytes:
    """The V4 string to sign, rebuilt from the URL and the headers a browser would send
    (https://cloud.google.com/storage/docs/authentication/signatures)."""
    parts = urlsplit(url)
    query = parts.query.split("&X-Goog-Signature=")[0]  # already canonical: sorted, encoded
    params = {k: v[0] for k, v in parse_qs(query).items()}
    sent = {name.lower(): value.strip() for name, value in headers.items()}
    sent["host"] = parts.netloc
    signed_names = params["X-Goog-SignedHeaders"].split(";")
    assert sorted(sent) == signed_names, (sorted(sent), signed_names)
    canonical_headers = "".join(f"{name}:{sent[name]}\n" for name in signed_names)
    canonical_request = "\n".join(
        [method, parts.path, query, canonical_headers, ";".join(signed_names), "UNSIGNED-PAYLOAD"]
    )
    scope = unquote(params["X-Goog-Credential"]).split("/", 1)[1]
    return "\n".join(
        [
            "GOOG4-RSA-SHA256",
            params["X-Goog-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    ).encode()


def verify_v4(url: str, method: str, headers: dict[str, str], key: ServiceAccountKey) -> None:
    """Raise unless `url` carries a valid V4 signature of `key` for `method` and exactly
    `headers` (plus host)."""
    signature = bytes.fromhex(parse_qs(urlsplit(url).query)["X-Goog-Signature"][0])
    key.private_key.public_key().verify(
        signature, string_to_sign(url, method, headers), padding.PKCS1v15(), hashes.SHA256()
    )


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
