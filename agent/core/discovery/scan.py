"""Bursts in time: Kulldorff's scan statistic over an outcome's traces in time order.

A burst is a stretch of time where an outcome is more frequent than in the rest of the traffic. Fixed
windows either dilute a short burst (a 6-hour burst inside a day-long window) or, made fine, add dozens
of overlapping tests whose chance winners pass the correction. The scan asks one question per outcome
instead: of every stretch between two cell edges, which one is least likely under "the outcome is spread
evenly over time", and how often does the best stretch look that unlikely when the same traces are
shuffled? Its p-value already accounts for every stretch it looked at, so it enters the run's correction
as one test, and its edges follow the burst, not a grid.

- Cells: the traffic in time order, cut at fixed-width buckets counted by SQL and merged so each cell
  holds about 1/MAX_CELLS of the outcome's population.
- Statistic: the Bernoulli log-likelihood ratio of a stretch against the rest, for stretches that hold
  at least `min_support` outcome traces, a higher rate than the rest and at most half the population.
- Null: the outcome's traces shuffled over the population (a multivariate hypergeometric draw of each
  cell's count), PERMUTATIONS times; the observed maximum's p-value comes from a Gumbel distribution
  fitted to the shuffled maxima (Abrams, Kleinman and Kulldorff 2010), so it reaches below 1/PERMUTATIONS.
- Further bursts: the scan again, with each burst found set aside (see `bursts`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

MAX_CELLS = 80  # stretches between any two of their edges: 3,240 per outcome
PERMUTATIONS = 199
MAX_BURSTS = 3
MAX_SHARE = 0.5  # a burst holds at most half the outcome's population (SaTScan's default)
LEAD_P = 0.05  # a burst weaker than this ends the scan of its outcome
MIN_FITTED = 20  # shuffled maxima above zero needed to fit the Gumbel tail; fewer: the empirical share


@dataclass(frozen=True)
class Burst:
    start_ms: int  # inclusive
    end_ms: int  # exclusive
    n: int  # the outcome's population in the stretch
    k: int  # traces with the outcome in it
    p: float  # adjusted for every stretch the scan looked at


@dataclass(frozen=True)
class Cells:
    """An outcome's population (`m`) and outcome traces (`k`) per cell, cell `i` covering
    [edges[i], edges[i + 1]) in epoch milliseconds."""

    m: NDArray[np.int64]
    k: NDArray[np.int64]
    edges: NDArray[np.int64]

    @classmethod
    def merged(cls, m: list[int], k: list[int], edges: list[int]) -> Cells:
        """Buckets merged left to right until each cell holds about 1/MAX_CELLS of the population."""
        target = max(1.0, sum(m) / MAX_CELLS)
        cell_m: list[int] = []
        cell_k: list[int] = []
        cell_edges = [edges[0]]
        held_m = held_k = 0
        for i, (bucket_m, bucket_k) in enumerate(zip(m, k, strict=True)):
            held_m, held_k = held_m + bucket_m, held_k + bucket_k
            if held_m >= target or i == len(m) - 1:
                cell_m.append(held_m)
                cell_k.append(held_k)
                cell_edges.append(edges[i + 1])
                held_m = held_k = 0
        return cls(
            np.array(cell_m, dtype=np.int64), np.array(cell_k, dtype=np.int64), np.array(cell_edges, dtype=np.int64)
        )


def bursts(cells: Cells, min_support: int, seed_text: str) -> list[Burst]:
    """The outcome's bursts, strongest first, each with its scan p-value. After each, its cells are set
    aside and the rest scanned again, as if it were explained (Zhang, Assuncao and Kulldorff 2010): a
    weaker burst is judged against traffic that no longer holds the stronger one."""
    rng = np.random.default_rng(zlib.crc32(seed_text.encode()))
    starts, ends = np.triu_indices(len(cells.m) + 1, k=1)
    m, k = cells.m.copy(), cells.k.copy()
    allowed = np.ones(len(starts), dtype=bool)
    found: list[Burst] = []
    while len(found) < MAX_BURSTS:
        burst = _strongest(m, k, starts, ends, allowed, min_support, rng)
        if burst is None:
            break
        first, last, n, hits, p = burst
        found.append(Burst(int(cells.edges[first]), int(cells.edges[last]), n, hits, p))
        if p > LEAD_P:
            break
        m[first:last] = k[first:last] = 0
        allowed &= (ends <= first) | (starts >= last)
    return found


def _strongest(
    m: NDArray[np.int64],
    k: NDArray[np.int64],
    starts: NDArray[np.intp],
    ends: NDArray[np.intp],
    allowed: NDArray[np.bool_],
    min_support: int,
    rng: np.random.Generator,
) -> tuple[int, int, int, int, float] | None:
    """The best stretch among those `allowed`: (first cell, end cell, population, hits, p-value)."""
    big_n, big_k = int(m.sum()), int(k.sum())
    if big_k < min_support or big_n <= big_k:
        return None
    n = _window_counts(m[None, :], starts, ends)[0]
    hits = _window_counts(k[None, :], starts, ends)[0]
    allowed = allowed & (n <= MAX_SHARE * big_n)
    starts, ends, n, hits = starts[allowed], ends[allowed], n[allowed], hits[allowed]
    observed = _llr(hits[None, :], n, big_n, big_k, min_support)[0]
    best = int(np.argmax(observed))
    if observed[best] <= 0:
        return None
    if _nominal_p(float(observed[best])) > LEAD_P:  # no shuffle can make it stronger: spare them
        return int(starts[best]), int(ends[best]), int(n[best]), int(hits[best]), 1.0
    shuffled = rng.multivariate_hypergeometric(m, big_k, size=PERMUTATIONS)
    null = _llr(_window_counts(shuffled, starts, ends), n, big_n, big_k, min_support)
    p = _p_value(float(observed[best]), null.max(axis=1))
    return int(starts[best]), int(ends[best]), int(n[best]), int(hits[best]), p


def _window_counts(
    per_cell: NDArray[np.int64], starts: NDArray[np.intp], ends: NDArray[np.intp]
) -> NDArray[np.float64]:
    cum = np.concatenate([np.zeros((per_cell.shape[0], 1), dtype=np.int64), np.cumsum(per_cell, axis=1)], axis=1)
    counts: NDArray[np.float64] = (cum[:, ends] - cum[:, starts]).astype(np.float64)
    return counts


def _llr(
    k: NDArray[np.float64], n: NDArray[np.float64], big_n: int, big_k: int, min_support: int
) -> NDArray[np.float64]:
    """Bernoulli log-likelihood ratio of each stretch (columns) against the rest, per row of counts; 0
    where the stretch is no worse than the rest, lacks support, or holds every trace."""
    from scipy.special import xlogy

    rest_n, rest_k = big_n - n, big_k - k
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = xlogy(k, k / n) + xlogy(n - k, (n - k) / n)
        outside = xlogy(rest_k, rest_k / rest_n) + xlogy(rest_n - rest_k, (rest_n - rest_k) / rest_n)
        whole = xlogy(big_k, big_k / big_n) + xlogy(big_n - big_k, (big_n - big_k) / big_n)
        worse = (k * rest_n > rest_k * n) & (k >= min_support) & (rest_n > 0)
        scores: NDArray[np.float64] = np.where(worse, np.nan_to_num(inside + outside - whole), 0.0)
        return scores


def _nominal_p(statistic: float) -> float:
    """The p-value of one stretch chosen in advance (Wilks): a lower bound of the scan's."""
    from scipy import stats

    return float(stats.chi2.sf(2 * statistic, 1))


def _p_value(statistic: float, null: NDArray[np.float64]) -> float:
    """The chance that the best stretch of shuffled traces scores at least `statistic`: the share of
    shuffles with any stretch at all times a Gumbel tail fitted to their maxima."""
    from scipy import stats

    positive = null[null > 0]
    empirical = (1 + int((null >= statistic).sum())) / (len(null) + 1)
    if len(positive) < MIN_FITTED or np.ptp(positive) == 0:
        return empirical
    location, scale = stats.gumbel_r.fit(positive)
    share = (1 + len(positive)) / (len(null) + 1)
    return float(min(1.0, share * stats.gumbel_r.sf(statistic, location, scale)))
