"""The statistical power to find a planted problem: could any analyst see it in this much data?

A planted effect raises an outcome's rate inside a segment of traces from the base rate `p0` to `p1`.
Power is the chance that Fisher's exact test, one-sided, of the segment (`n1` traces) against the rest
(`n2` traces) rejects at `alpha` with at least 5 outcome traces in the segment, computed exactly over
both binomial counts. (The engine tests one-sided where only a higher rate can be reported; latency and
judges' verdicts it tests two-sided on most features, where a lower rate can be a strength, so for
those the power here is somewhat overstated.) The normal approximation used before overstated it
far more where it matters, for small segments: 9 rated traces at 89% against 24% elsewhere came out
0.89, where the exact test rejects at 1e-3 in 0.73 of draws.

Two levels. A problem's recorded power, which decides whether recall counts it, is at ALPHA = 1e-4:
Benjamini-Hochberg at q = 0.05 asks that of the strongest of 500 tests, and a search over every slice
of every outcome runs 400 to 1,500 of them on a random draw, so a lone problem must reach about that.
At 1e-3 (the tenth strongest of 500) the label promised more than any such search can keep: problems
labelled 0.8 to 0.95 were found in 8 of 11 cases; at 1e-4, in 11 of 12 (README, "Measuring").
Effects are still placed around the edge at EDGE_ALPHA = 1e-3 (`random_agents._effect`), so half the
problems lie below what counts and are reported apart. Below 5 expected outcome traces in the
segment the power is 0: a search that needs 5 never looks.

The generator plugs in the rates as a draw came out (the outcome's share in the segment and elsewhere),
so a problem that happened to fire rarely is not counted as one an analyst should have found.
"""

from __future__ import annotations

ALPHA = 1e-4  # a problem's recorded power
EDGE_ALPHA = 1e-3  # where effects are placed around the edge of detectability
MIN_EXPECTED = 5.0
NEGLIGIBLE = 1e-12  # segment counts less likely than this are left out of the sum


def exact_test_power(n1: float, p1: float, n2: float, p0: float, alpha: float = ALPHA) -> float:
    import numpy as np
    from scipy import stats

    n1, n2 = round(n1), round(n2)
    if n1 <= 0 or n2 <= 0 or p1 <= p0 or n1 * p1 < MIN_EXPECTED:
        return 0.0
    inside = np.arange(n1 + 1)
    chance = stats.binom.pmf(inside, n1, p1)
    likely = (chance > NEGLIGIBLE) & (inside >= MIN_EXPECTED)
    k, chance = inside[likely], chance[likely]
    # More outcome traces elsewhere only raise the p-value: per count inside, bisect for the most
    # elsewhere that still rejects
    rejecting, not_rejecting = np.full(len(k), -1), np.full(len(k), n2 + 1)
    while (open_ := not_rejecting - rejecting > 1).any():
        middle = (rejecting + not_rejecting) // 2
        rejects = stats.hypergeom.sf(k - 1, n1 + n2, k + middle, n1) <= alpha
        rejecting = np.where(open_ & rejects, middle, rejecting)
        not_rejecting = np.where(open_ & ~rejects, middle, not_rejecting)
    return float((chance * stats.binom.cdf(rejecting, n2, p0)).sum())


def raised(p0: float, effect: float) -> float:
    """The outcome rate where an effect firing with probability `effect` adds to a base rate `p0`."""
    return p0 + (1 - p0) * effect
