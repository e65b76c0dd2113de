"""The locale comes from `Accept-Language`: its highest-weighted valid tag."""

from __future__ import annotations

import pytest

from service.auth import preferred_locale


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        (None, None),
        ("", None),
        ("fr-FR,fr;q=0.9,en;q=0.8", "fr-FR"),
        ("en;q=0.5, de-CH", "de-CH"),
        ("*", None),
        ("es;q=0", None),
        ("da, en-gb;q=0.8, en;q=0.7", "da"),
        ("<script>, ja", "ja"),
    ],
)
def test_preferred_locale(header: str | None, locale: str | None) -> None:
    assert preferred_locale(header) == locale
