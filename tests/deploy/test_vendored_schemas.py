"""The schema copies in tests/deploy/schemas/ match the team's reference copies."""

from __future__ import annotations

from tests.deploy.conftest import SCHEMAS, SHARED_SCHEMAS


def test_vendored_schemas_match_the_shared_copies() -> None:
    copies = list(SCHEMAS.rglob("*.json"))
    assert len(copies) == 8
    if not SHARED_SCHEMAS.is_dir():
        return  # a checkout without the team folder beside it: nothing to compare against
    assert copies
    for copy in copies:
        reference = SHARED_SCHEMAS / copy.relative_to(SCHEMAS)
        assert reference.read_bytes() == copy.read_bytes(), f"{copy} differs from {reference}"
