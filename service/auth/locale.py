"""The caller's preferred language, from `Accept-Language`."""

from __future__ import annotations

import re

_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")


def preferred_locale(accept_language: str | None) -> str | None:
    """The highest-weighted language tag of an `Accept-Language` header, if any."""
    candidates: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not _LANGUAGE_TAG.match(tag):
            continue
        weight = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                weight = float(params[2:])
            except ValueError:
                continue
        if weight > 0:
            # Earlier entries win ties: the header's order expresses preference too.
            candidates.append((weight, -position, tag))
    return max(candidates)[2] if candidates else None
