"""The statistics behind a segment: an exact or chi-square test, Benjamini-Hochberg, a risk ratio.

Every function is vectorised over numpy arrays, so thousands of segments cost milliseconds. The
distributions come from scipy; nothing here is a hand-rolled approximation of one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
SMALL_EXPECTED = 5.0  # below this expected count in any cell, chi-square is unreliable: use Fisher's exact test
Z_95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975); scipy.stats costs a second to import, so it waits


@dataclass(frozen=True)
class Tables:
    """2x2 tables, one per segment: `k` of `n` segment traces have the outcome, `k_rest` of `n_rest` outside."""

    k: Floats
    n: Floats
    k_rest: Floats
    n_rest: Floats

    def subset(self, mask: NDArray[np.bool_]) -> Tables:
        return Tables(k=self.k[mask], n=self.n[mask], k_rest=self.k_rest[mask], n_rest=self.n_rest[mask])

    @property
    def higher(self) -> NDArray[np.bool_]:
        """Whether the segment's rate is above the rest's."""
        return np.asarray(self.k * self.n_rest > self.k_rest * self.n)

    @property
    def lower(self) -> NDArray[np.bool_]:
        return np.asarray(self.k * self.n_rest < self.k_rest * self.n)


Sides = NDArray[np.bool_] | bool


def p_values(t: Tables, both_sides: Sides) -> tuple[Floats, NDArray[np.str_]]:
    """Fisher's exact test where an expected cell count is small, Pearson's chi-square (with Yates'
    correction) elsewhere; returns the p-values and which test gave each. Two-sided where `both_sides`,
    elsewhere one-sided: that the segment's rate is higher."""
    total = t.n + t.n_rest
    outcome = t.k + t.k_rest
    expected = np.minimum.reduce(
        [t.n * outcome, t.n * (total - outcome), t.n_rest * outcome, t.n_rest * (total - outcome)]
    ) / np.maximum(total, 1)
    exact = expected < SMALL_EXPECTED
    both_sides = np.broadcast_to(both_sides, t.k.shape)
    p = np.empty_like(t.k)
    p[exact] = _fisher(t.subset(exact), both_sides[exact])
    p[~exact] = _chi_square(t.subset(~exact), both_sides[~exact])
    return np.clip(p, 0.0, 1.0), np.where(exact, "fisher", "chi2")


def _fisher(t: Tables, both_sides: NDArray[np.bool_]) -> Floats:
    """The upper tail of the hypergeometric distribution; two-sided, twice the smaller tail (capped at 1)."""
    from scipy import stats

    total, outcome = (t.n + t.n_rest).astype(np.int64), (t.k + t.k_rest).astype(np.int64)
    n, k = t.n.astype(np.int64), t.k.astype(np.int64)
    upper = stats.hypergeom.sf(k - 1, total, outcome, n)
    lower = stats.hypergeom.cdf(k, total, outcome, n)
    return _sided(upper, lower, both_sides)


def _chi_square(t: Tables, both_sides: NDArray[np.bool_]) -> Floats:
    from scipy import stats

    a, b, c, d = t.k, t.n - t.k, t.k_rest, t.n_rest - t.k_rest
    total = a + b + c + d
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    corrected = np.maximum(np.abs(a * d - b * c) - total / 2, 0)
    statistic = np.divide(total * corrected**2, margins, out=np.zeros_like(a), where=margins > 0)
    half = np.asarray(stats.chi2.sf(statistic, 1), dtype=np.float64) / 2
    return _sided(np.where(t.higher, half, 1 - half), np.where(t.higher, 1 - half, half), both_sides)


def _sided(upper: Floats, lower: Floats, both_sides: Sides) -> Floats:
    """The upper tail, or twice the smaller tail (capped at 1) where both sides count."""
    return np.asarray(np.where(both_sides, np.minimum(1.0, 2 * np.minimum(upper, lower)), upper), dtype=np.float64)


def least_p_values(t: Tables, both_sides: Sides) -> Floats:
    """The smallest p-value each table's margins allow: every outcome trace inside the segment (or,
    two-sided, as few as the margins let). Fisher's test conditions on the margins, so this is known
    before anything the test measures is looked at."""
    outcome = t.k + t.k_rest
    most, fewest = np.minimum(t.n, outcome), np.maximum(outcome - t.n_rest, 0)
    upper, _ = p_values(Tables(k=most, n=t.n, k_rest=outcome - most, n_rest=t.n_rest), both_sides)
    lower, _ = p_values(Tables(k=fewest, n=t.n, k_rest=outcome - fewest, n_rest=t.n_rest), True)
    return np.asarray(np.where(both_sides, np.minimum(upper, lower), upper), dtype=np.float64)


def counted_in_correction(least_p: Floats, fdr: float, *, dependent: bool = True) -> NDArray[np.bool_]:
    """The tests a correction over them could ever let through: those whose smallest attainable p-value
    is within the loosest level it applies (`fdr`, over the harmonic sum of their number under
    dependence), found as a fixed point since fewer tests loosen that level. The rest could never pass,
    so leaving them out loses nothing and loosens the correction for the others; since the margins
    alone decide it, the false discovery rate is still controlled (Tarone 1990, Gilbert 2005, who prune
    at a single discovery's level, which loses slices that pass in a run with many discoveries)."""
    counted, kept = least_p.size, np.zeros(least_p.size, dtype=bool)
    while counted:
        harmonic = float(np.sum(1 / np.arange(1, counted + 1))) if dependent else 1.0
        kept = np.asarray(least_p <= fdr / harmonic)
        if kept.sum() >= counted:
            break
        counted = int(kept.sum())
    return kept


def benjamini_hochberg(p: Floats, *, dependent: bool = True) -> Floats:
    """Adjusted p-values (q-values): a test is a discovery at FDR level q when its value is <= q.

    `dependent` applies the Benjamini-Yekutieli factor (the harmonic sum of the number of tests), which
    keeps the false discovery rate at q under any dependence between the tests. Ours are dependent:
    slices overlap, pairs are built from singles, and outcomes share traces (a span that fails fails
    its trace). Plain Benjamini-Hochberg assumes independence or positive dependence; on our negative
    controls it let about one chance slice per experiment through."""
    from scipy import stats

    if p.size == 0:
        return p
    method = "by" if dependent else "bh"
    return np.asarray(stats.false_discovery_control(p, method=method), dtype=np.float64)


def risk_ratio(t: Tables) -> tuple[Floats, Floats, Floats]:
    """The segment's rate over the rest's, with a 95% Katz log interval (0.5 added to every cell of a
    table with an empty cell, so a segment where every trace fails still gets a finite interval)."""
    empty = (t.k == 0) | (t.k_rest == 0) | (t.k == t.n) | (t.k_rest == t.n_rest)
    pad = np.where(empty, 0.5, 0.0)
    k, n, kr, nr = t.k + pad, t.n + 2 * pad, t.k_rest + pad, t.n_rest + 2 * pad
    ratio = (k / n) / (kr / nr)
    spread = Z_95 * np.sqrt(np.maximum(1 / k - 1 / n + 1 / kr - 1 / nr, 0))
    log_ratio = np.log(ratio)
    return ratio, np.exp(log_ratio - spread), np.exp(log_ratio + spread)


def per_call_p(
    bad: Floats, calls: Floats, bad_rest: Floats, calls_rest: Floats, both_sides: Sides, lower: Sides = False
) -> Floats:
    """Binomial p-values of a segment's share of the bad calls (slow, repeated) against its share of
    the calls: whether its calls go bad more often, not only whether it makes more of them. Two-sided,
    it is twice the tail on the side the trace-level test found (`lower`: a lower rate), so that both
    tests of the intersection-union test point the same way (fewer slow traces, each call slower, is
    no strength)."""
    from scipy import stats

    total, share = bad + bad_rest, calls / np.maximum(calls + calls_rest, 1)
    upper = stats.binom.sf(bad - 1, total, share)
    tail = np.where(lower, stats.binom.cdf(bad, total, share), upper)
    return np.asarray(np.where(both_sides, np.minimum(1.0, 2 * tail), upper), dtype=np.float64)
