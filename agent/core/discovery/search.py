"""The search: for every outcome, which slices of the traffic have it significantly more (or less) often.

1. One SQL pass counts, for every feature value, the traces in each outcome's population and those
   with the outcome.
2. Every supported (outcome, value) pair is tested; pairs of promising values are counted in a
   second pass and kept only when the pair explains more than either member. Bursts in time come from
   a scan of each outcome's traces in time order (scan.py), one test per burst.
3. Benjamini-Hochberg over every test of the run; survivors need a risk ratio whose 95% interval
   lies above 1 (below 1 for strengths).
4. Greedy selection by impact, each next segment re-tested on the traces the chosen ones do not
   explain, so the same traces are not reported under several names.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from analyze_experiment.agent.core.discovery.catalog import SPAN_FACTS, Feature, Outcome, add_window, window_feature
from analyze_experiment.agent.core.discovery.profile import quote
from analyze_experiment.agent.core.discovery.scan import Cells, bursts
from analyze_experiment.agent.core.discovery.stats import (
    Floats,
    Tables,
    benjamini_hochberg,
    counted_in_correction,
    least_p_values,
    p_values,
    per_call_p,
    risk_ratio,
)
from analyze_experiment.agent.core.traces.engine import SqlEngine

ALL = "*"
# Slices re-tested once the first is explained, besides its rivals: the strongest leads of the first pass
# (each re-test is one scan with two counts per slice; all of them made the scan of 100k traces 4x slower).
LEAD_P = 0.01
MAX_NEWCOMERS = 40
STEP_OUTCOMES = {"span_failed", "span_degenerate_output", "span_slow", "repeated_call"}
STRENGTH_OUTCOMES = {"trace_slow", "trace_idle", "span_slow", "assessment_negative"}
NO_STRENGTH_KINDS = {"span", "count"}  # fewer steps, fewer chances to go wrong: no credit to the slice
WINDOWS = "windows"  # the key of the time windows the scan finds
BUCKETS = 2000  # time buckets the scan's cells are merged from


@dataclass(frozen=True)
class Params:
    min_support: int = 5  # outcome traces a segment must hold
    fdr: float = 0.05  # Benjamini-Hochberg level over every test of the run
    max_pair_members: int = 8  # promising values per outcome that are paired
    max_rounds: int = 4  # segments chosen per outcome
    max_strength_rate: float = 0.5  # a strength needs the rest of the traffic to do worse than this often
    min_ratio: float = 1.5  # practical significance: the risk ratio's 95% lower bound must exceed this
    dependent_tests: bool = True  # Benjamini-Yekutieli's factor on top of Benjamini-Hochberg (stats.py)


@dataclass(frozen=True)
class Segment:
    """One feature value; two values of different features that hold together; or (`any_of`) several
    bursts of one outcome, as one incident."""

    parts: tuple[tuple[str, str], ...]  # (feature key, value)
    any_of: bool = False

    def predicate(self, features: dict[str, Feature]) -> str:
        """SQL over a row of `traces`: what a hypothesis selects."""
        joiner = " OR " if self.any_of else " AND "
        return joiner.join(f"({features[key].predicate(value)})" for key, value in self.parts)

    def over_columns(self, features: dict[str, Feature]) -> str:
        """The same test over the search's base rows, where each feature is a column named by its key."""
        joiner = " OR " if self.any_of else " AND "
        return joiner.join(f"({_over_columns(features[key], value)})" for key, value in self.parts)

    def keys(self) -> set[str]:
        return {key for key, _ in self.parts}

    def describe(self, features: dict[str, Feature]) -> str:
        if self.any_of:
            return f"{features[self.parts[0][0]].name} is one of " + ", ".join(value for _, value in self.parts)
        return " and ".join(features[key].describe(value) for key, value in self.parts)


@dataclass
class Test:
    outcome: Outcome
    segment: Segment
    n: int
    k: int
    n_rest: int
    k_rest: int
    p: float = 1.0
    q: float = 1.0
    method: str = "fisher"
    ratio: float = 1.0
    low: float = 0.0
    high: float = float("inf")
    excluding: tuple[Segment, ...] = ()  # slices chosen before this one for the outcome: counted without them
    explained: float = 1.0  # the risk ratio the segment's extra chances (more calls of the span) account for
    scan_p: float | None = None  # a window the scan chose: its p-value, for every window it looked at
    # (bad calls, calls) in the segment and outside, where the outcome is one bad call among several: the
    # segment must also have bad calls more often per call, not only more calls (see `score`)
    calls: tuple[int, int, int, int] | None = None
    # Whether a lower rate could be reported too (see `Search._both_sides`); else the test is one-sided
    both_sides: bool = False
    least_p: float = 0.0  # the smallest p-value the table's margins allow (`stats.least_p_values`)

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else 0.0

    @property
    def rest_rate(self) -> float:
        return self.k_rest / self.n_rest if self.n_rest else 0.0

    @property
    def impact(self) -> float:
        """Outcome traces in the segment beyond what the rest's rate predicts (negative for strengths)."""
        return self.k - self.n * self.rest_rate

    def worse(self, fdr: float, floor: float = 1.0) -> bool:
        return self.q <= fdr and self.low > max(floor, self.explained)

    def better(self, fdr: float, floor: float = 1.0) -> bool:
        return self.q <= fdr and self.high < 1 / floor


@dataclass
class SearchResult:
    tests: list[Test] = field(default_factory=list)
    chosen: list[Test] = field(default_factory=list)  # problems, after redundancy
    strengths: list[Test] = field(default_factory=list)
    near_misses: list[Test] = field(default_factory=list)  # promising, not significant
    pairs_tested: int = 0
    counted: int = 0  # of the tests, those that could reach significance: the run's correction counts these


class Search:
    def __init__(self, engine: SqlEngine, outcomes: list[Outcome], features: list[Feature], params: Params) -> None:
        self.engine = engine
        self.outcomes = outcomes
        self.features = {f.key: f for f in features} | {WINDOWS: window_feature(WINDOWS)}
        self.params = params
        self.table: SqlEngine | None = None  # the base rows held as `traces`, where the engine can hold them

    def base_sql(self) -> str:
        """Every outcome and feature per trace: what `run(table)` expects the table to hold."""
        return self._base(self.outcomes, set(self.features), ids=True)

    def run(self, table: SqlEngine | None = None) -> SearchResult:
        """`table`: an engine whose `traces` rows are `base_sql()`'s, so each count reads them instead of
        deriving every feature again from the spans and JSON (five times faster at 100k traces)."""
        self.table = table
        singles = self._single_tests(self._count_singles())
        pairs, possible = self._pair_tests(singles)
        singles += self._window_tests()
        # one correction over every test of the run, and again over each outcome's
        score(singles + pairs, dependent=self.params.dependent_tests, fdr=self.params.fdr)
        self._correct_for_untested_pairs(pairs, possible)
        correct_within_outcomes(singles + pairs, dependent=self.params.dependent_tests, fdr=self.params.fdr)
        candidates = singles + self._explaining_more(pairs, singles) + self._runs(singles)
        chosen = self._choose(candidates)
        return SearchResult(
            tests=singles + pairs,
            chosen=chosen,
            strengths=self._strengths(singles, chosen),
            near_misses=self._near_misses(singles, chosen),
            pairs_tested=len(pairs),
            counted=self._counted(singles + pairs),
        )

    def _counted(self, tests: list[Test]) -> int:
        least = np.array([t.least_p for t in tests], dtype=np.float64)
        return int(counted_in_correction(least, self.params.fdr, dependent=self.params.dependent_tests).sum())

    # -- counting ------------------------------------------------------------------------------------

    def select(self, wheres: list[str]) -> list[list[str]]:
        """The traces each condition over the base rows selects (sorted), from one scan of them."""
        if not wheres:
            return []
        hits = ", ".join(f"CASE WHEN {where} THEN {i} END" for i, where in enumerate(wheres))
        rows = self._over_rows(
            f"SELECT trace_id, hits FROM (SELECT trace_id, filter(array({hits}), x -> x IS NOT NULL) "
            "AS hits FROM base) WHERE size(hits) > 0"
        )
        selected: list[list[str]] = [[] for _ in wheres]
        for row in rows:
            for index in row["hits"]:
                selected[int(index)].append(str(row["trace_id"]))
        return [sorted(ids) for ids in selected]

    def count(self, conditions: list[str]) -> list[int]:
        """The base rows each condition over them holds, from one scan."""
        counts = ", ".join(f"count_if({c}) AS c{i}" for i, c in enumerate(conditions))
        row = self._over_rows(f"SELECT {counts} FROM base")[0]
        return [int(row[f"c{i}"]) for i in range(len(conditions))]

    def _over_rows(self, query: str) -> list[dict[str, Any]]:
        """`query` over `base`: every row with its trace's id and whether it finished."""
        return self._execute(f"WITH base AS ({self._base(self.outcomes, set(self.features), ids=True)}) {query}")

    def _base(self, outcomes: list[Outcome], keys: set[str], ids: bool = False) -> str:
        """One row per trace: a nullable boolean per outcome (NULL outside its population) and a column
        per feature (named by their keys), so later queries test segments without re-deriving them;
        with `ids`, the trace's id and whether it finished, to select traces by them. Span outcomes read
        `span_facts`, each span's facts derived once."""
        if self.table is not None:
            return "SELECT * FROM traces"
        flags = ["trace_id", "state = 'OK' AS finished"] if ids else []
        flags += [
            f"CASE WHEN {o.fact_population or o.population or 'true'} THEN coalesce({o.fact or o.predicate}, false) "
            f"END AS {o.key}"
            for o in outcomes
        ]
        columns = [
            f"coalesce({f.expression}, {'array()' if f.multi else repr('(none)')}) AS {f.key}"
            for f in self.features.values()
            if f.key in keys and f.expression
        ]
        columns.append("unix_millis(request_time) AS request_ms")
        flags += [
            f"CASE WHEN {o.fact_population or o.population or 'true'} THEN {o.exposure} END AS x_{o.key}, "
            f"CASE WHEN {o.fact_population or o.population or 'true'} THEN {o.events} END AS y_{o.key}"
            for o in outcomes
            if o.exposure
        ]
        source = "traces"
        if any(o.fact or o.fact_population for o in outcomes):
            source = f"(SELECT *, {SPAN_FACTS} AS span_facts FROM traces) facts"
        return f"SELECT {', '.join(flags + columns)} FROM {source}"

    def _count_singles(self) -> dict[str, dict[str, Count]]:
        """value -> outcome key -> the outcome's counts among the traces with the value."""
        sums = _sums(self.outcomes)
        columns = [f for f in self.features.values() if f.expression]
        singles = ", ".join(f"concat('{f.key}=', {f.key})" for f in columns if not f.multi)
        multis = "".join(f", transform({f.key}, x -> concat('{f.key}=', x))" for f in columns if f.multi)
        values = f"flatten(array(array('{ALL}', {singles}){multis}))"
        sql = (
            f"WITH base AS ({self._base(self.outcomes, set(self.features))}), valued AS (SELECT *, {values} AS fv "
            f"FROM base) SELECT v, {sums} FROM valued LATERAL VIEW explode(fv) t AS v GROUP BY v"
        )
        rows = self._execute(sql)
        return {str(r["v"]): {o.key: _counted(r, o) for o in self.outcomes} for r in rows}

    def _execute(self, sql: str) -> list[dict[str, Any]]:
        return (self.table or self.engine).execute(sql).records()

    # -- tests ---------------------------------------------------------------------------------------

    def _single_tests(self, counts: dict[str, dict[str, Count]]) -> list[Test]:
        totals = counts.get(ALL, {})
        tests: list[Test] = []
        for value, by_outcome in sorted(counts.items()):  # rows come in no set order; ties must not flip
            if value == ALL:
                continue
            key, _, raw = value.partition("=")
            segment = Segment(((key, raw),))
            for outcome in self.outcomes:
                if not self._relevant(outcome, self.features[key], raw):
                    continue
                inside, whole = by_outcome[outcome.key], totals.get(outcome.key, Count(0, 0))
                both_sides = self._both_sides(outcome, self.features[key], raw)
                if self._supported(inside, whole, both_sides):
                    tests.append(_test(outcome, segment, inside, whole, both_sides))
        return self._one_side_each(tests)

    def _window_tests(self) -> list[Test]:
        """Per outcome, the bursts the scan finds in its traces' time order (scan.py), from one count of
        every outcome per time bucket."""
        rows = self._execute(
            f"WITH base AS ({self._base(self.outcomes, set())}), span AS (SELECT min(request_ms) AS low, "
            f"max(request_ms) + 1 AS high FROM base) SELECT bucket, min(request_ms) AS since, min(high) AS high, "
            f"{_sums(self.outcomes)} FROM (SELECT *, CAST(floor((request_ms - low) * {BUCKETS} / (high - low)) "
            "AS BIGINT) AS bucket FROM base, span) GROUP BY bucket ORDER BY bucket"
        )
        if len(rows) < 2:
            return []
        edges = [int(r["since"]) for r in rows] + [int(rows[-1]["high"])]
        feature, tests = self.features[WINDOWS], []
        for outcome in self.outcomes:
            m, k = [int(r[f"m_{outcome.key}"]) for r in rows], [int(r[f"k_{outcome.key}"]) for r in rows]
            big_n, big_k = sum(m), sum(k)
            for burst in bursts(Cells.merged(m, k, edges), self.params.min_support, outcome.key):
                segment = Segment(((WINDOWS, add_window(feature, burst.start_ms, burst.end_ms)),))
                tests.append(Test(outcome, segment, burst.n, burst.k, big_n - burst.n, big_k - burst.k, scan_p=burst.p))
        return tests

    def _one_side_each(self, tests: list[Test]) -> list[Test]:
        """The two sides of a threshold split the same traces: one table, transposed, with one p-value.
        Counting both would make the correction twice as strict for them; the worse side stays."""
        sides: dict[tuple[str, str, str], Test] = {}
        kept = []
        for test in tests:
            (key, value), *_ = test.segment.parts
            below = self.features[key].below
            high = below.get(value, value)
            if high == value and value not in below.values():
                kept.append(test)
                continue
            pair = (test.outcome.key, key, high)
            if pair not in sides or test.rate > sides[pair].rate:
                sides[pair] = test
        return kept + list(sides.values())

    def _supported(self, inside: Count, whole: Count, both_sides: bool) -> bool:
        """Enough outcome traces to be a pattern (worse), or enough expected ones to miss (better)."""
        if inside.n == 0 or inside.n >= whole.n or whole.k == 0:
            return False
        expected = inside.n * whole.k / whole.n
        return inside.k >= self.params.min_support or (both_sides and expected >= self.params.min_support)

    def _both_sides(self, outcome: Outcome, feature: Feature, value: str) -> bool:
        """Whether a slice's test is two-sided. A lower rate is read only as a strength, and most slices
        cannot be one (_strengths): their tests are one-sided, so no chance is spent on a side nobody
        reads, and a slice trivially spared (a request that failed early never reached the later tools)
        is no discovery that loosens the correction for the others. But of a threshold's two sides the
        worse is kept (_one_side_each): where both could be tested, which one is depends on the counts,
        so either side's test is two-sided."""
        if outcome.family in STRENGTH_OUTCOMES and feature.kind not in NO_STRENGTH_KINDS:
            return True
        other = _other_side(feature, value)
        return other is not None and self._relevant(outcome, feature, other)

    def _relevant(self, outcome: Outcome, feature: Feature, value: str) -> bool:
        """A feature that follows from the outcome is no cause of it."""
        if feature.structural and not outcome.structural_causes:
            return False
        answer_after = outcome.about_response or outcome.truncates or outcome.sampled or outcome.family in STEP_OUTCOMES
        if answer_after and "length(response)" in feature.expression:
            # The answer comes after every step: its length is no cause of what a step did, and a failed
            # step shows in it. A judgement is of the answer: its length is the symptom, and a threshold
            # on it joins every problem that makes answers long or short (apologies, overlong answers).
            return False
        if feature.kind != "count":
            return True
        # A trace cut short has fewer steps, and a repeated call adds one: that side of a threshold follows
        # from the outcome. More calls of a span, more chances of a slow one: priced in by `explained`.
        if outcome.truncates:
            return value not in feature.below
        return outcome.family != "repeated_call" or not feature.counts_repeats or value in feature.below

    def _pair_tests(self, singles: list[Test]) -> tuple[list[Test], int]:
        """Pairs of values of different features, both supported and leaning the same way on their own:
        the most promising few per outcome are counted. Also returned, how many pairs of supported values
        there were, leaning or not: which ones lean is read from the same data, so a correction over the
        leaning ones alone would let a chance pair of chance leaners through."""
        score(singles)
        wanted: dict[Segment, list[Outcome]] = {}
        possible = 0
        for outcome in self.outcomes:
            supported = [
                t
                for t in singles
                if t.outcome is outcome
                and t.k >= self.params.min_support
                and self.features[t.segment.parts[0][0]].paired
            ]
            leaning = sorted((t for t in supported if t.rate > t.rest_rate), key=lambda t: t.p)
            possible += _cross_feature_pairs(supported)
            for a, b in combinations(leaning[: self.params.max_pair_members], 2):
                if a.segment.parts[0][0] != b.segment.parts[0][0]:
                    pair = Segment(tuple(sorted(a.segment.parts + b.segment.parts)))
                    wanted.setdefault(pair, []).append(outcome)
        if not wanted:
            return [], possible
        pairs = list(wanted)
        needed = sorted({o.key: o for outcomes in wanted.values() for o in outcomes}.values(), key=lambda o: o.key)
        # each trace lists the pairs it is in, then one GROUP BY counts them all: a condition per pair
        # per trace, not a conditional count per pair and outcome
        labels = self._pair_labels(pairs)
        keys = set().union(*(pair.keys() for pair in pairs))
        sums = _sums(needed)
        rows = self._execute(
            f"WITH base AS ({self._base(needed, keys)}), listed AS (SELECT *, "
            f"concat(array(-1), filter(flatten(array({labels})), x -> x >= 0)) AS ps FROM base) "
            f"SELECT p, {sums} FROM listed LATERAL VIEW explode(ps) t AS p GROUP BY p"
        )
        counts = {int(r["p"]): r for r in rows}
        totals = counts[-1]
        tests = []
        for i, pair in enumerate(pairs):
            for o in wanted[pair]:
                row = counts.get(i)
                inside, whole = _counted(row, o) if row else Count(0, 0), _counted(totals, o)
                if inside.k >= self.params.min_support and inside.n < whole.n:
                    tests.append(_test(o, pair, inside, whole))
        return tests, possible

    def _correct_for_untested_pairs(self, pairs: list[Test], possible: int) -> None:
        """The pairs counted were picked, by their members' p-values, from every pair of leaning values:
        the run's correction alone would count only the picked ones, and a chance pair of two weak
        leaners passed it on negative controls. So a pair must also pass a correction over every pair
        it was picked from, as if each untested one had been tested and found nothing."""
        if not pairs:
            return
        p = np.concatenate([np.array([t.p for t in pairs]), np.ones(max(possible - len(pairs), 0))])
        family = benjamini_hochberg(p, dependent=self.params.dependent_tests)[: len(pairs)]
        for test, q in zip(pairs, family, strict=True):
            test.q = max(test.q, float(q))

    def _pair_labels(self, pairs: list[Segment]) -> str:
        """SQL: per trace, arrays of the indexes of the pairs it is in. Pairs sharing a first member are
        grouped under it, so the second members are looked at only in the traces the first holds."""
        groups: dict[tuple[str, str], list[tuple[int, Segment]]] = {}
        for i, pair in enumerate(pairs):
            groups.setdefault(pair.parts[0], []).append((i, pair))
        cases = []
        for first, members in groups.items():
            inner = ", ".join(
                f"CASE WHEN {Segment(pair.parts[1:]).over_columns(self.features)} THEN {i} ELSE -2 END"
                for i, pair in members
            )
            cases.append(
                f"CASE WHEN {Segment((first,)).over_columns(self.features)} THEN array({inner}) ELSE array(-2) END"
            )
        return ", ".join(cases)

    def _runs(self, singles: list[Test]) -> list[Test]:
        """The significant bursts of one outcome, as one candidate: the bursts of one incident (a rate
        limit hit on two days). `_sharpest` splits it where one burst is significantly worse than the
        others; bursts are disjoint, so their counts add up."""
        groups: dict[str, list[Test]] = {}
        for test in singles:
            if test.segment.keys() == {WINDOWS} and test.worse(self.params.fdr, self.params.min_ratio):
                groups.setdefault(test.outcome.key, []).append(test)
        runs = []
        for bursts_found in groups.values():
            if len(bursts_found) < 2:
                continue
            bursts_found.sort(key=lambda t: self.features[WINDOWS].bounds[t.segment.parts[0][1]])
            n, k = sum(t.n for t in bursts_found), sum(t.k for t in bursts_found)
            first = bursts_found[0]
            run = Test(
                first.outcome,
                Segment(tuple(t.segment.parts[0] for t in bursts_found), any_of=True),
                n,
                k,
                first.n + first.n_rest - n,
                first.k + first.k_rest - k,
            )
            score([run])
            run.q = max(t.q for t in bursts_found)  # each burst passed the run's correction; the union is no new test
            runs.append(run)
        return runs

    @staticmethod
    def _explaining_more(pairs: list[Test], singles: list[Test]) -> list[Test]:
        """A pair stands on its own only if its risk ratio's lower bound exceeds each member's ratio.
        Where no member has an outcome trace outside it, no member has a finite ratio to exceed (a judge
        erring on 5 of 5 traces of a pair, 5 of 24 of each member, none elsewhere): then the pair must be
        worse than each member's other traces. Only then: that test alone let through the slowest traces
        where two problems meet (a slowdown in one version, long answers on one topic), which the two
        problems' own findings explain."""
        member = {(t.outcome.key, t.segment.parts): t for t in singles}

        def explains_more(pair: Test) -> bool:
            alone = [member.get((pair.outcome.key, (part,))) for part in pair.segment.parts]
            known = [m for m in alone if m is not None]
            if len(known) < len(alone):
                return False
            if all(m.k_rest == 0 for m in known):
                return all(_worse_within(pair, m) for m in known)
            return all(pair.low > m.ratio for m in known)

        return [pair for pair in pairs if explains_more(pair)]

    # -- choosing ------------------------------------------------------------------------------------

    def _choose(self, tests: list[Test]) -> list[Test]:
        chosen: list[Test] = []
        for outcome in self.outcomes:
            mine = [t for t in tests if t.outcome is outcome]
            candidates = [t for t in mine if t.worse(self.params.fdr, self.params.min_ratio)]
            # once a slice explains some of the outcome, a second one no longer competes with its traces
            # in "the rest": the strongest leads are counted again too, not only the first survivors
            leaning = sorted(
                (t for t in mine if t.k >= self.params.min_support and t.rate > t.rest_rate and t.p <= LEAD_P),
                key=lambda t: t.p,
            )[:MAX_NEWCOMERS]
            chosen += self._greedy(outcome, candidates, leaning, len(tests))
        return chosen

    def _greedy(self, outcome: Outcome, candidates: list[Test], leaning: list[Test], run_size: int) -> list[Test]:
        """Largest impact first, narrowed to a sharper slice inside it when one exists; every next
        slice is re-tested on the traces not yet explained, corrected as strictly as the first pass."""
        picked: list[Test] = []
        while candidates and len(picked) < self.params.max_rounds:
            best = self._sharpest(outcome, max(candidates, key=lambda t: (t.impact, -t.q)), candidates, picked)
            # counted against the rest less every slice chosen before it, as _tested_within counted it
            picked.append(replace(best, excluding=tuple(t.segment for t in picked)))
            # a run that holds a chosen burst is gone: its other bursts compete on their own
            taken = {t.segment for t in picked} | {t.segment for t in [*candidates, *leaning] if _holds(t, picked)}
            survivors = [t for t in candidates if t.segment not in taken]
            taken |= {t.segment for t in survivors}
            newcomers = list({t.segment: t for t in leaning if t.segment not in taken}.values())
            unexplained = "NOT (" + " OR ".join(f"({t.segment.over_columns(self.features)})" for t in picked) + ")"
            # the first pass's survivors were corrected over the run already; the others are now
            candidates = self._tested_within(
                outcome, [(survivors, len(survivors)), (newcomers, run_size)], unexplained, picked
            )
        return picked

    def disjoint(self, a: Segment, b: Segment) -> bool:
        """Two values of one single-valued feature, or two windows that do not overlap, share no trace."""
        if len(a.parts) != 1 or len(b.parts) != 1 or a.any_of or b.any_of:
            return False
        (key_a, value_a), (key_b, value_b) = a.parts[0], b.parts[0]
        if key_a != key_b or value_a == value_b:
            return False
        bounds = self.features[key_a].bounds
        if value_a in bounds and value_b in bounds:  # windows: intervals that do not meet
            (start_a, end_a), (start_b, end_b) = bounds[value_a], bounds[value_b]
            return end_a <= start_b or end_b <= start_a
        return not self.features[key_a].multi

    def _sharpest(self, outcome: Outcome, best: Test, candidates: list[Test], picked: list[Test]) -> Test:
        """A broad slice can owe its excess to a narrower one inside it (no tool calls, because one topic
        is answered badly): drill down while a candidate with a higher rate is significantly worse than
        the rest of the slice itself, and that rest is no worse than the traffic outside the slice. A
        rest that is worse too means the excess spans the broad slice (a burst longer than the window
        inside it), and the narrower one would report part of it. A run of bursts is split freely where
        the narrower slice is one of its bursts: the others are found in the next round, on their own or
        as a run (a strong burst and a weaker one of the same failure are two incidents)."""
        for _ in range(3):
            inside = [t for t in candidates if t.rate > best.rate and t.segment != best.segment]
            if not inside:
                return best
            within = f"({best.segment.over_columns(self.features)})"
            if picked:
                within += " AND NOT (" + " OR ".join(f"({t.segment.over_columns(self.features)})" for t in picked) + ")"
            sharper = [
                t
                for t in self._tested_within(outcome, [(inside, len(inside))], within, [best, *picked])
                if t.n >= 0.2 * best.n
            ]
            if not sharper:
                return best
            narrowed = max(sharper, key=lambda t: (t.impact, -t.q))
            if not self._splits_run(best.segment, narrowed.segment) and self._rest_is_worse(narrowed, best):
                return best
            best = next(t for t in candidates if t.segment == narrowed.segment)
        return best

    @staticmethod
    def _splits_run(run: Segment, burst: Segment) -> bool:
        return run.any_of and burst.parts[0] in run.parts and len(burst.parts) == 1

    def _rest_is_worse(self, narrowed: Test, broad: Test) -> bool:
        """The broad slice less the narrower one (counted within it) against the traffic outside it."""
        rest = Test(broad.outcome, broad.segment, narrowed.n_rest, narrowed.k_rest, broad.n_rest, broad.k_rest)
        score([rest])
        return rest.worse(self.params.fdr, self.params.min_ratio)

    def _tested_within(
        self, outcome: Outcome, groups: list[tuple[list[Test], int]], where: str, context: list[Test]
    ) -> list[Test]:
        """Candidates counted again, in one query, on the traces `where` selects; each (group, family)
        is corrected as one of `family` tests. `context`: the segments `where` mentions."""
        candidates = [c for group, _ in groups for c in group]
        if not candidates:
            return []
        columns = ", ".join(
            f"count_if(({c.segment.over_columns(self.features)}) AND {outcome.key} IS NOT NULL) AS m{i}, "
            f"count_if(({c.segment.over_columns(self.features)}) AND {outcome.key}) AS k{i}"
            for i, c in enumerate(candidates)
        )
        keys = set().union(*(t.segment.keys() for t in [*candidates, *context]))
        row = self._execute(
            f"WITH base AS ({self._base([outcome], keys)}) SELECT count_if({outcome.key} IS NOT NULL) AS m, "
            f"count_if({outcome.key}) AS k, {columns} FROM base WHERE {where}"
        )[0]
        big_n, big_k = int(row["m"]), int(row["k"])
        worse, first = [], 0
        for group, family in groups:
            again = []
            for i, c in enumerate(group, start=first):
                n, k = int(row[f"m{i}"]), int(row[f"k{i}"])
                if k >= self.params.min_support and 0 < n < big_n:
                    # the same slice counted again: its calls and scan p-value come with it
                    again.append(replace(c, n=n, k=k, n_rest=big_n - n, k_rest=big_k - k))
            score(again, previous=max(family, len(group)))
            worse += [t for t in again if t.worse(self.params.fdr, self.params.min_ratio)]
            first += len(group)
        return worse

    def _strengths(self, tests: list[Test], chosen: list[Test]) -> list[Test]:
        """Slices that are faster or better judged. Not failing less: a request that never calls a
        failing step cannot fail in it, which says nothing good about it; and not for an outcome with
        a problem slice, where every other slice looks better by comparison."""
        troubled = {t.outcome.key for t in chosen}
        better = [
            t
            for t in tests
            if t.better(self.params.fdr, self.params.min_ratio)
            and t.outcome.family in STRENGTH_OUTCOMES
            and t.outcome.key not in troubled
            and self.features[t.segment.parts[0][0]].kind not in NO_STRENGTH_KINDS
            and t.rest_rate <= self.params.max_strength_rate
            and len(t.segment.parts) == 1
        ]
        return sorted(better, key=lambda t: t.impact)[:2]

    def _near_misses(self, tests: list[Test], chosen: list[Test]) -> list[Test]:
        """The strongest leads that did not survive the correction: hypotheses a test should refute."""
        taken = {(t.outcome.key, t.segment) for t in chosen}
        leads = [
            t
            for t in tests
            if t.p <= 0.05
            and t.q > self.params.fdr
            and t.rate > t.rest_rate
            and t.k >= self.params.min_support
            and (t.outcome.key, t.segment) not in taken
        ]
        return sorted(leads, key=lambda t: t.p)[:2]


def _other_side(feature: Feature, value: str) -> str | None:
    """The value on the other side of a threshold (None for a value that is no side of one)."""
    if value in feature.below:
        return feature.below[value]
    return next((low for low, high in feature.below.items() if high == value), None)


def _holds(run: Test, picked: list[Test]) -> bool:
    return run.segment.any_of and any(set(p.segment.parts) & set(run.segment.parts) for p in picked)


def _over_columns(feature: Feature, value: str) -> str:
    if value in feature.rows:
        return feature.rows[value]
    return f"array_contains({feature.key}, {quote(value)})" if feature.multi else f"{feature.key} = {quote(value)}"


def correct_within_outcomes(tests: list[Test], dependent: bool = True, fdr: float = 0.05) -> None:
    """A test must also pass a correction over its own outcome's tests, in place. The run's correction
    alone is lenient for an outcome with nothing behind it once other outcomes have many discoveries (one
    strong problem is significant under dozens of correlated slices): a chance window of 7 slow calls in
    10 traces passed at q = 0.03 beside them."""
    by_outcome: dict[str, list[Test]] = {}
    for test in tests:
        by_outcome.setdefault(test.outcome.key, []).append(test)
    for mine in by_outcome.values():
        family = _corrected(np.array([t.p for t in mine]), np.array([t.least_p for t in mine]), 0, fdr, dependent)
        for test, q in zip(mine, family, strict=True):
            test.q = max(test.q, float(q))


def _worse_within(pair: Test, member: Test) -> bool:
    """Inside the member's traces, the pair's rate is above the rest's: the risk ratio's lower bound over 1."""
    if member.n <= pair.n:
        return False
    k, n, k_rest, n_rest = np.array([[pair.k], [pair.n], [member.k - pair.k], [member.n - pair.n]], dtype=np.float64)
    return bool(risk_ratio(Tables(k=k, n=n, k_rest=k_rest, n_rest=n_rest))[1][0] > 1.0)


def _cross_feature_pairs(tests: list[Test]) -> int:
    """How many pairs of the tests' values belong to two different features."""
    per_feature = Counter(t.segment.parts[0][0] for t in tests)
    return math.comb(len(tests), 2) - sum(math.comb(n, 2) for n in per_feature.values())


class Count(NamedTuple):
    n: int  # traces in the outcome's population
    k: int  # traces with the outcome
    calls: int = 0  # where the outcome is one bad call among several: the calls
    events: int = 0  # and the bad ones


def _sums(outcomes: list[Outcome]) -> str:
    """Per outcome: traces in its population, traces with it and, where calls are chances, the calls and
    the bad ones."""
    return ", ".join(
        f"count_if({o.key} IS NOT NULL) AS m_{o.key}, count_if({o.key}) AS k_{o.key}"
        + (f", sum(x_{o.key}) AS e_{o.key}, sum(y_{o.key}) AS b_{o.key}" if o.exposure else "")
        for o in outcomes
    )


def _counted(row: dict[str, Any], outcome: Outcome) -> Count:
    n, k = int(row[f"m_{outcome.key}"]), int(row[f"k_{outcome.key}"])
    if not outcome.exposure:
        return Count(n, k)
    return Count(n, k, int(row.get(f"e_{outcome.key}") or 0), int(row.get(f"b_{outcome.key}") or 0))


def _test(outcome: Outcome, segment: Segment, inside: Count, whole: Count, both_sides: bool = False) -> Test:
    calls = None
    if outcome.exposure:
        calls = (inside.events, inside.calls, whole.events - inside.events, whole.calls - inside.calls)
    return Test(
        outcome,
        segment,
        inside.n,
        inside.k,
        whole.n - inside.n,
        whole.k - inside.k,
        explained=_explained(inside.n, inside.calls, whole.n, whole.calls),
        calls=calls,
        both_sides=both_sides,
    )


def _explained(n: int, chances: int, big_n: int, all_chances: int) -> float:
    """The risk ratio that more chances alone would give: calls per trace in the segment over calls per
    trace elsewhere. A trace's chance of at least one bad call grows at most in proportion to its calls,
    so a segment is worse than its calls explain only when the ratio's lower bound exceeds this."""
    rest_n, rest_chances = big_n - n, all_chances - chances
    if not chances or not n or not rest_n:
        return 1.0
    if rest_chances <= 0:
        return float("inf")
    return max((chances / n) / (rest_chances / rest_n), 1.0)


def score(tests: list[Test], previous: int = 0, dependent: bool = True, fdr: float = 0.05) -> None:
    """p-values, risk ratios and Benjamini-Hochberg q-values, in place. A re-test corrects for the
    candidates it was chosen among (`previous`), not just the survivors. Only the tests that could reach
    significance count in the correction (`stats.counted_in_correction`)."""
    if not tests:
        return
    tables = Tables(
        k=np.array([t.k for t in tests], dtype=np.float64),
        n=np.array([t.n for t in tests], dtype=np.float64),
        k_rest=np.array([t.k_rest for t in tests], dtype=np.float64),
        n_rest=np.array([t.n_rest for t in tests], dtype=np.float64),
    )
    both_sides = np.array([t.both_sides for t in tests])
    p, method = p_values(tables, both_sides)
    per_call = _per_call_p(tests, both_sides, tables.lower)
    method = np.where(per_call > p, "binomial", method)
    p = np.fmax(p, per_call)
    scanned = np.array([np.nan if t.scan_p is None else t.scan_p for t in tests], dtype=np.float64)
    p = np.where(np.isnan(scanned), p, np.fmax(p, scanned))
    method = np.where(np.isnan(scanned), method, "scan")
    ratio, low, high = risk_ratio(tables)
    least = least_p_values(tables, both_sides)  # the per-call and scan tests only raise p: still a floor
    q = _corrected(p, least, previous - len(tests), fdr, dependent)
    for i, test in enumerate(tests):
        test.p, test.q, test.method, test.least_p = float(p[i]), float(q[i]), str(method[i]), float(least[i])
        test.ratio, test.low, test.high = float(ratio[i]), float(low[i]), float(high[i])


def _corrected(p: Floats, least_p: Floats, untested: int, fdr: float, dependent: bool) -> Floats:
    """q-values over the tests that could reach significance (and `untested` more that found nothing);
    1 for the rest, which no correction could let through."""
    counted = counted_in_correction(np.concatenate([least_p, np.zeros(max(untested, 0))]), fdr, dependent=dependent)
    q = np.ones_like(p)
    mine = counted[: len(p)]
    padded = np.concatenate([p[mine], np.ones(int(counted[len(p) :].sum()))])
    q[mine] = benjamini_hochberg(padded, dependent=dependent)[: int(mine.sum())]
    return q


def _per_call_p(tests: list[Test], both_sides: NDArray[np.bool_], lower: NDArray[np.bool_]) -> Floats:
    """The per-call test of each segment whose outcome is one bad call among several (0 elsewhere): the
    trace's test and this one must both reject (an intersection-union test)."""
    p = np.zeros(len(tests))
    counted = [(i, t.calls) for i, t in enumerate(tests) if t.calls and t.calls[1] > 0 and t.calls[3] > 0]
    if counted:
        bad, calls, bad_rest, calls_rest = np.array([c for _, c in counted], dtype=np.float64).T
        indexes = [i for i, _ in counted]
        p[indexes] = per_call_p(bad, calls, bad_rest, calls_rest, both_sides[indexes], lower[indexes])
    return p
