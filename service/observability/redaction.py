"""Hides secrets in text bound for logs: the configured secret values and key-like strings.

Configured values are matched in any letter case and also without a vendor prefix (`sk-`,
`sk-proj-`, `gwkey-`: gateways echo keys without them), as they would appear inside a JSON
string too. URL passwords of the configured URLs count as secrets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from pydantic import SecretStr

from service.settings import Settings

_KEY_LIKE_PATTERNS = (
    r"sk-[A-Za-z0-9_\-]{8,}",
    r"AIza[0-9A-Za-z_\-]{10,}",
    r"(?i:bearer)\s+[A-Za-z0-9._~+/\-]{8,}=*",
)
_VENDOR_PREFIX = re.compile(r"^(?:[A-Za-z]{1,10}[-_]){1,2}")
MIN_SECRET_CHARS = 6
"""Shorter values are not matched: they would hide ordinary words."""
REDACTED = "[redacted]"


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        literals: set[str] = set()
        for secret in secrets:
            for variant in (secret, _VENDOR_PREFIX.sub("", secret)):
                if len(variant) >= MIN_SECRET_CHARS:
                    literals.add(variant)
                    literals.add(json.dumps(variant)[1:-1])  # as it appears in a JSON string
        configured = [re.escape(s) for s in sorted(literals, key=len, reverse=True)]
        case_blind = [f"(?i:{alternative})" for alternative in configured]
        self._pattern = re.compile("|".join([*case_blind, *_KEY_LIKE_PATTERNS]))

    @classmethod
    def for_settings(cls, settings: Settings) -> Redactor:
        return cls(settings_secrets(settings))

    def __call__(self, text: str) -> str:
        return self._pattern.sub(REDACTED, text)

    def hides_part_of(self, text: str) -> bool:
        return self._pattern.search(text) is not None


def settings_secrets(settings: Settings) -> list[str]:
    """Every secret setting's value and every configured URL's password."""
    values: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            values.append(value.get_secret_value())
        elif name.endswith("_url") and isinstance(value, str):
            password = urlsplit(value).password
            if password:
                values.append(password)
    return [value for value in values if value]
