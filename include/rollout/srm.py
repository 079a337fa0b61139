"""Sample-ratio-mismatch check: were a round's requests split the way its weights said?

A chi-square goodness-of-fit test of the served counts per arm against ``total * weight``. A p-value
below the threshold means routing does not follow the weights (a stale endpoint config, a variant
failing requests, a router bug): the caller pages. The chi-square approximation needs expected
counts of at least 5, so a round with a smaller expected count in some arm is not tested
(``round size * min_weight >= 5`` keeps every round testable). Requests served by an arm whose
weight was 0 are a mismatch whatever the counts (p-value 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_EXPECTED = 5.0


@dataclass(frozen=True)
class SrmCheck:
    """The sample-ratio check of one round."""

    checked: bool
    mismatch: bool
    p_value: float | None
    statistic: float | None
    note: str


def srm_p_values(served: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chi-square statistic and p-value of each row of ``served`` ``(runs, arms)`` against ``weights``.

    Returns ``(statistic, p_value, testable)``; rows that are not testable (no requests, fewer than two
    arms with weight, an expected count below 5) get NaN.
    """
    from scipy.special import chdtrc  # the chi-square survival function; scipy.stats takes seconds to import

    served = served.astype(float)
    total = served.sum(axis=1, keepdims=True)
    expected = total * weights
    cells = weights > 0
    stray = np.any(~cells & (served > 0), axis=1)
    sized = (total[:, 0] > 0) & (cells.sum(axis=1) >= 2) & np.all(~cells | (expected >= MIN_EXPECTED), axis=1)
    safe_expected = np.where(cells & (expected > 0), expected, 1.0)
    statistic = np.where(cells, (served - expected) ** 2 / safe_expected, 0.0).sum(axis=1)
    p_value = chdtrc(np.maximum(cells.sum(axis=1) - 1, 1), statistic)
    testable = stray | sized
    statistic = np.where(stray, np.inf, np.where(sized, statistic, np.nan))
    p_value = np.where(stray, 0.0, np.where(sized, p_value, np.nan))
    return statistic, p_value, testable


def check_sample_ratio(served: dict[str, int], weights: dict[str, float], threshold: float) -> SrmCheck:
    """Check one round: ``served`` requests per arm against the ``weights`` set for that round."""
    arms = sorted(set(served) | set(weights))
    counts = np.array([[served.get(arm, 0) for arm in arms]])
    shares = np.array([[weights.get(arm, 0.0) for arm in arms]])
    statistic, p_value, testable = srm_p_values(counts, shares)
    if not testable[0]:
        total = int(counts.sum())
        note = "no requests served" if total == 0 else f"not tested: an expected count is below {MIN_EXPECTED:g} ({total} requests)"
        return SrmCheck(False, False, None, None, note)
    mismatch = bool(p_value[0] < threshold)
    split = ", ".join(f"{arm} {served.get(arm, 0)} served at weight {weights.get(arm, 0.0):.3f}" for arm in arms)
    verdict = "sample-ratio mismatch" if mismatch else "split matches the weights"
    return SrmCheck(True, mismatch, float(p_value[0]), float(statistic[0]), f"{verdict}: chi-square p={p_value[0]:.3g} ({split})")
