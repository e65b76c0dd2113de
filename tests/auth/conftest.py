from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.auth.identity_provider import IdentityProvider


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider().start()
    yield provider
    provider.stop()
