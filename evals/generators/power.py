"""The statistical power to find a planted problem: could any analyst see it in this much data?

A planted effect raises an outcome's rate inside a segment of traces from the base rate `p0` to `p1`.
Power is the chance that a one-sided two-proportion z-test (normal approximation) of the segment
(`n1` traces) against the rest (`n2` traces) rejects at `alpha`. The default alpha, 1e-3, is about
what Benjamini-Hochberg at q = 0.05 asks of the strongest of a few hundred segment tests. Below 5
expected outcome traces in the segment the power is 0: a search that needs 5 never looks.

The generator plugs in the rates as a draw came out (the outcome's share in the segment and elsewhere),
so a problem that happened to fire rarely is not counted as one an analyst should have found.
"""

from __future__ import annotations

import math

ALPHA = 1e-3
MIN_EXPECTED = 5.0


def two_proportion_power(n1: float, p1: float, n2: float, p0: float, alpha: float = ALPHA) -> float:
    from scipy.stats import norm

    if n1 <= 0 or n2 <= 0 or p1 <= p0:
        return 0.0
    if n1 * p1 < MIN_EXPECTED:
        return 0.0
    pooled = (n1 * p1 + n2 * p0) / (n1 + n2)
    null_sd = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    alt_sd = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n2)
    z = float(norm.isf(alpha))
    if alt_sd == 0:
        return 1.0 if p1 - p0 > z * null_sd else 0.0
    return float(norm.cdf(((p1 - p0) - z * null_sd) / alt_sd))


def raised(p0: float, effect: float) -> float:
    """The outcome rate where an effect firing with probability `effect` adds to a base rate `p0`."""
    return p0 + (1 - p0) * effect
