"""From chosen tests to findings a person can read: one per problem, with its numbers and its SQL.

Findings whose affected traces are mostly the same (different outcomes of one cause: a span fails and
the trace fails) are one finding, so one problem is not reported under several names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analyze_experiment.agent.core.discovery.catalog import Outcome
from analyze_experiment.agent.core.discovery.models import FindingKind
from analyze_experiment.agent.core.discovery.search import Params, Search, SearchResult, Segment, Test
from analyze_experiment.agent.core.insights.models import SegmentStatistics, Severity

SAME_TRACES = 0.8  # overlap (of the smaller set) above which two findings are one
# Weighted share of traffic affected -> severity (docs/architecture.md, "Severity").
LEVELS = ((0.15, Severity.CRITICAL), (0.05, Severity.HIGH), (0.01, Severity.MEDIUM))


@dataclass
class Finding:
    outcome: Outcome
    segment: Segment
    test: Test
    description: str  # the segment in words
    segment_sql: str
    population_sql: str | None  # where the outcome can happen, less the slices chosen before this one
    affected_sql: str
    affected: list[str]  # a problem's traces (a strength's and a lead's are only counted)
    affected_count: int
    total: int
    strength: bool = False
    near_miss: bool = False
    p_cutoff: float = 0.0
    tests_in_run: int = 0
    fdr: float = 0.05
    also: list[str] = field(default_factory=list)
    whole: set[str] = field(default_factory=set)  # with the earlier slices' traces, for a later slice
    on_a_line: bool = False  # one window or threshold of an ordered feature
    seen: set[str] = field(default_factory=set)  # of `affected`, where the outcome was observed (all, unless presumed)

    @property
    def weighted_share(self) -> float:
        return self.outcome.weight * self.affected_count / max(self.total, 1)

    @property
    def severity(self) -> Severity:
        return next((level for floor, level in LEVELS if self.weighted_share >= floor), Severity.LOW)

    @property
    def statement(self) -> str:
        t = self.test
        if self.strength:
            return (
                f"Where {self.description}, {self.outcome.name} less often: {t.k}/{t.n} ({t.rate:.1%}) "
                f"against {t.k_rest}/{t.n_rest} ({t.rest_rate:.1%}) elsewhere"
            )[:500]
        return (
            f"Where {self.description}, {self.outcome.name} in {t.k}/{t.n} ({t.rate:.1%}) against "
            f"{t.k_rest}/{t.n_rest} ({t.rest_rate:.1%}) elsewhere"
        )[:500]

    def statistics(self) -> SegmentStatistics:
        t = self.test
        return SegmentStatistics(
            outcome=self.outcome.name,
            outcome_family=self.outcome.family,
            segment=self.description[:1000],
            outcome_sql=self.outcome.predicate,
            population_sql=self.population_sql,
            segment_sql=self.segment_sql,
            n=t.n,
            k=t.k,
            n_rest=t.n_rest,
            k_rest=t.k_rest,
            risk_ratio=_finite(t.ratio),
            ci_low=_finite(t.low),
            ci_high=_finite(t.high),
            p_value=t.p,
            q_value=t.q,
            p_cutoff=self.p_cutoff,
            test=t.method,
            tests_in_run=self.tests_in_run,
            fdr=self.fdr,
            strength=self.strength,
            two_sided=t.both_sides,
            explained_ratio=_finite(t.explained),
            calls_sql=self.outcome.exposure,
            bad_calls_sql=self.outcome.events,
            magnitude_sql=self.outcome.magnitude,
            calls=t.calls,
        )


def _finite(value: float) -> float:
    return min(value, 1e9)


def findings(search: Search, result: SearchResult, total: int, params: Params) -> list[Finding]:
    """Problems first (largest weighted impact first), then strengths, then the leads a test should refute.
    Traces are selected from the search's base rows, where each segment and outcome is a column."""
    cutoff: dict[str, float] = {}  # per outcome: a test passes the run's correction and its outcome's
    for t in result.tests:
        if t.q <= params.fdr:
            cutoff[t.outcome.key] = max(cutoff.get(t.outcome.key, 0.0), t.p)
    drafts = (
        [_draft(search, t) for t in result.chosen]
        + [_draft(search, t, strength=True) for t in result.strengths]
        + [_draft(search, t, near_miss=True) for t in result.near_misses]
    )
    _presume_unseen(search, [d for d in drafts if d.outcome.family == "assessment_negative" and d.kind == "problem"])
    # a problem's traces are compared with other problems' and linked; a strength's traces are its slice's
    # population and a lead's its slice's outcome traces, which the search counted
    listed = [d for d in drafts if d.kind == "problem"]
    selected = iter(
        search.select(
            [d.rows_where for d in listed]
            + [d.rows_whole for d in listed if d.rows_whole]
            + [d.rows_seen for d in listed if d.rows_seen]
        )
    )
    affected = [next(selected) for _ in listed]
    problems = [
        d.finding(a, len(a), set(next(selected)) if d.rows_whole else set(), total)
        for d, a in zip(listed, affected, strict=True)
    ]
    for draft, problem in zip(listed, problems, strict=True):
        problem.seen = set(next(selected)) if draft.rows_seen else set(problem.affected)
    others = [
        d.finding([], d.test.n if d.kind == "strength" else d.test.k, set(), total)
        for d in drafts
        if d.kind != "problem"
    ]
    problems = _merged(sorted(_without_remainders(problems), key=lambda f: (-f.weighted_share, -f.outcome.weight)))
    every = [f for f in problems + others if f.affected_count or f.near_miss]
    for finding in every:
        # a slice re-tested on the traces the earlier ones leave passed its own correction there
        own = finding.test.p if finding.test.q <= params.fdr else 0.0
        finding.p_cutoff = max(cutoff.get(finding.outcome.key, 0.0), own)
        finding.tests_in_run, finding.fdr = len(result.tests), params.fdr
    return every


@dataclass
class _Draft:
    """A finding before its traces are selected: every finding's traces come from one query. Each
    selection is written twice: over `traces` for the person (`where`), and over the search's base
    rows (`rows_where`), which select the same traces without deriving the features again."""

    test: Test
    kind: FindingKind
    description: str
    segment_sql: str
    segment_rows: str
    population: str | None
    earlier: str  # the slices chosen before this one for the outcome, as SQL ("" when none)
    earlier_rows: str
    on_a_line: bool
    where: str = ""
    rows_where: str = ""
    rows_whole: str = ""  # a later slice with the earlier slices' traces
    rows_seen: str = ""  # where the unseen are presumed affected: the traces where the outcome was seen

    @property
    def outcome(self) -> Outcome:
        return self.test.outcome

    def finding(self, affected: list[str], count: int, whole: set[str], total: int) -> Finding:
        return Finding(
            outcome=self.outcome,
            segment=self.test.segment,
            test=self.test,
            description=self.description,
            segment_sql=self.segment_sql,
            population_sql=self.population,
            affected_sql=f"SELECT trace_id FROM traces WHERE {self.where}",
            affected=affected,
            affected_count=count,
            total=total,
            strength=self.kind == "strength",
            near_miss=self.kind == "near_miss",
            whole=whole,
            on_a_line=self.on_a_line,
        )


def _draft(search: Search, test: Test, *, strength: bool = False, near_miss: bool = False) -> _Draft:
    """The slice's traces with the outcome; a slice chosen after others for the same outcome is counted,
    selected and re-tested without their traces, as the search tested it."""
    outcome = test.outcome
    segment_sql = test.segment.predicate(search.features)
    earlier = " OR ".join(f"({s.predicate(search.features)})" for s in test.excluding)
    earlier_rows = " OR ".join(f"({s.over_columns(search.features)})" for s in test.excluding)
    population = outcome.population if not earlier else f"({outcome.population or 'true'}) AND NOT ({earlier})"
    scope = f" AND ({population})" if population else ""
    description = test.segment.describe(search.features)
    sides: dict[bool, list[str]] = {False: [], True: []}  # disjoint from this slice or not
    for earlier_slice in test.excluding:
        sides[search.disjoint(earlier_slice, test.segment)].append(earlier_slice.describe(search.features))
    if sides[False]:
        description += " (apart from " + "; ".join(sides[False]) + ")"
    if sides[True]:
        description += " (against the rest less " + "; ".join(sides[True]) + ")"
    draft = _Draft(
        test,
        "strength" if strength else "near_miss" if near_miss else "problem",
        description,
        segment_sql,
        test.segment.over_columns(search.features),
        population,
        earlier,
        earlier_rows,
        _on_a_line(test.segment, search),
    )
    if strength or near_miss:
        draft.where = f"({segment_sql}){scope}" + ("" if strength else f" AND ({outcome.predicate})")
        return draft
    draft.where = f"({segment_sql}) AND ({outcome.predicate}){scope}"
    # the outcome's column is true only inside its population
    draft.rows_where = f"({draft.segment_rows}) AND {outcome.key}" + (f" AND NOT ({earlier_rows})" if earlier else "")
    if earlier:
        draft.rows_whole = f"({draft.segment_rows}) AND {outcome.key}"
    return draft


def _on_a_line(segment: Segment, search: Search) -> bool:
    """One window or threshold of an ordered feature, or a run of bursts."""
    keys = segment.keys()
    if len(keys) != 1 or (len(segment.parts) > 1 and not segment.any_of):
        return False
    ranges = search.features[keys.pop()].ranges
    return all(value in ranges for _, value in segment.parts)


def _presume_unseen(search: Search, drafts: list[_Draft]) -> None:
    """A negative assessment is seen only where an assessment was made. When the share of assessed
    traces that are negative exceeds the share of the slice's finished traces that were assessed, the
    unassessed ones are taken as affected too: the likelier guess (a topic whose every rated answer is
    bad has bad unrated answers as well) and the selection closer to the truth."""
    if not drafts:
        return
    sizes = search.count([f"({d.segment_rows}) AND finished" for d in drafts])
    for draft, size in zip(drafts, sizes, strict=True):
        if size > 0 and draft.test.rate > draft.test.n / size:
            outcome = draft.outcome
            draft.rows_seen = draft.rows_where
            draft.where = (
                f"({draft.segment_sql}) AND state = 'OK' AND (({outcome.predicate}) OR NOT ({outcome.population}))"
            ) + (f" AND NOT ({draft.earlier})" if draft.earlier else "")
            # outside its population the outcome's column is NULL
            draft.rows_where = f"({draft.segment_rows}) AND finished AND coalesce({outcome.key}, true)" + (
                f" AND NOT ({draft.earlier_rows})" if draft.earlier else ""
            )


def _without_remainders(made: list[Finding]) -> list[Finding]:
    """A later slice that contains most of an earlier slice's traces (the day around a burst's windows)
    is what is left of the same problem, not another one."""
    kept: list[Finding] = []
    for finding in made:
        earlier = next((k for k in kept if k.outcome is finding.outcome and k.affected and _extends(finding, k)), None)
        if earlier is None:
            kept.append(finding)
        else:
            earlier.also.append(_also(finding))
    return kept


def _extends(later: Finding, earlier: Finding) -> bool:
    """The later slice holds most of the earlier one's traces, or is another window or threshold of the
    same line that shares traces with it (a burst seen through an overlapping window)."""
    shared = len(later.whole & set(earlier.affected))
    same_line = later.on_a_line and earlier.on_a_line and later.segment.parts[0][0] == earlier.segment.parts[0][0]
    return shared >= 0.5 * len(earlier.affected) or (same_line and shared > 0)


def _merged(problems: list[Finding]) -> list[Finding]:
    """Findings over mostly the same traces, or another outcome within a finding's own traces of the
    same segment (retries that also make the trace slow), are one problem. Of one segment the broader
    description stays (it covers more of what went wrong), but of two lines on one measure (a span
    over 3x its median, over its 90th percentile) the one that sets the slice further apart; of two
    segments the sharper one, whose traces have the outcome more often (a pair where a value alone also
    catches unrelated failures).
    Traces are compared where each outcome was seen: a judge's finding that presumes its unrated traces
    affected would otherwise take in every other outcome of its slice."""
    kept: list[Finding] = []
    for finding in problems:
        index = next(
            (
                i
                for i, k in enumerate(kept)
                if _same_problem(
                    finding.seen, k.seen, k.segment_sql == finding.segment_sql or k.outcome is not finding.outcome
                )
            ),
            None,
        )
        if index is None:
            kept.append(finding)
            continue
        same = kept[index]
        if _sharper(finding, same):
            kept[index], finding.also = finding, [*finding.also, _also(same), *same.also]
        else:
            same.also.append(_also(finding))
    return kept


def _sharper(finding: Finding, kept: Finding) -> bool:
    """Whether `finding` should stand for the problem instead of `kept` (see `_merged`). Two lines on one
    span's calls share their exposure (the span's calls)."""
    if finding.segment_sql != kept.segment_sql:
        return finding.test.rate > kept.test.rate
    one_measure = finding.outcome.family == kept.outcome.family and finding.outcome.exposure == kept.outcome.exposure
    return one_measure and finding.outcome.exposure is not None and finding.test.low > kept.test.low


def _also(finding: Finding) -> str:
    return f"{finding.outcome.name} where {finding.description} ({finding.test.k}/{finding.test.n})"


def _same_problem(a: set[str], b: set[str], same_slice_or_consequence: bool) -> bool:
    """Mostly the same traces: the smaller set lies (nearly) inside the larger and, unless both describe
    the same segment or tell of different outcomes, is not small beside it. A small problem inside a
    broad one of the same outcome stays its own; another outcome on traces that nearly all have the
    broad one's is what it brings with it (the slowest traces of the weeks after a release whose span
    slowed down)."""
    if not a or not b:
        return False
    small, large = sorted((len(a), len(b)))
    return len(a & b) >= SAME_TRACES * small and (same_slice_or_consequence or small >= 0.5 * large)
