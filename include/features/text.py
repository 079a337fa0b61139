"""Sentiment labels from star ratings and the model text from a review's headline and body."""

from __future__ import annotations

import html
import re

LABEL_NAMES: tuple[str, ...] = ("negative", "neutral", "positive")
NEGATIVE, NEUTRAL, POSITIVE = 0, 1, 2

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
_SENTENCE_END = (".", "!", "?", ":", ";")


def star_to_label(star_rating: int) -> int:
    """1–2 stars → 0 (negative), 3 → 1 (neutral), 4–5 → 2 (positive).

    :raises ValueError: for a rating outside 1..5.
    """
    if star_rating not in (1, 2, 3, 4, 5):
        raise ValueError(f"star_rating must be 1..5, got {star_rating!r}")
    return NEGATIVE if star_rating <= 2 else NEUTRAL if star_rating == 3 else POSITIVE


def clean_text(value: str | None) -> str:
    """Unescape HTML entities (``&#34;`` → ``"``), turn ``<br />`` into spaces and collapse whitespace."""
    if not value:
        return ""
    return _SPACE.sub(" ", _BREAK.sub(" ", html.unescape(value))).strip()


def review_text(headline: str | None, body: str | None) -> str:
    """The model input: cleaned headline and body, the headline ended with a full stop if it has none.

    ``review_text("Great!", "Love it<br />really")`` → ``"Great! Love it really"``;
    ``review_text("Five Stars", "Works.")`` → ``"Five Stars. Works."``.
    """
    head, text = clean_text(headline), clean_text(body)
    if head and text and not head.endswith(_SENTENCE_END):
        head += "."
    return f"{head} {text}".strip()
