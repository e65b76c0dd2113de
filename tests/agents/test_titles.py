"""Thread titles: short, clean, and a first-words fallback."""

from __future__ import annotations

from service.agents.titles import clean_title, fallback_title


def test_titles_are_short_and_clean() -> None:
    assert clean_title('"Trip planning to Kyoto."\nmore') == "Trip planning to Kyoto"
    assert clean_title("**Budget** review") == "Budget review"
    assert clean_title("Title: Weekly sync") == "Weekly sync"
    assert len(clean_title("x" * 500)) == 80
    assert fallback_title("Can you help me plan a week-long trip to Kyoto in April please") == (
        "Can you help me plan a week-long trip…"
    )
    assert fallback_title("   ") == "New conversation"
