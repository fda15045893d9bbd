"""Outcomes (what can go wrong in one trace) and features (what a trace is like), built from a profile.

Each is a SQL expression over one row of the traces table, so the same text counts segments in the
search and selects a finding's traces in its hypothesis: what the report says is what the query does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

from analyze_experiment.agent.core.discovery.profile import (
    ASSESSMENT_ERROR_SIGNATURE,
    ERROR_SIGNATURE,
    ERRORED,
    IDLE_MS,
    MEASURES,
    NEGATIVE_WORDS,
    PATH,
    REQUEST_PATTERN,
    SPAN_FAILED,
    SPAN_MS,
    SPAN_OUTPUTS,
    AssessmentProfile,
    KeyProfile,
    Profile,
    SpanProfile,
    degenerate,
    quote,
    request_field,
)

OutcomeFamily = Literal[
    "trace_failed",
    "span_failed",
    "span_degenerate_output",
    "empty_response",
    "assessment_negative",
    "assessment_error",
    "trace_slow",
    "trace_idle",
    "span_slow",
    "repeated_call",
    "error",
    "custom",
]
FeatureKind = Literal[
    "tag", "metadata", "span", "model", "count", "length", "time", "shape", "request_field", "request_pattern"
]

# How much one affected trace weighs, by what happened to it: a failed request weighs ten slow spans
# (docs/architecture.md, "Severity"), so 38 timeouts in 500 requests outrank a slowdown in half of them.
WEIGHTS: dict[str, float] = {
    "trace_failed": 1.0,
    "empty_response": 1.0,
    "span_failed": 0.8,
    "span_degenerate_output": 0.7,
    "error": 0.8,
    "assessment_negative": 0.7,
    "custom": 0.7,
    "repeated_call": 0.4,
    "trace_slow": 0.15,
    "trace_idle": 0.15,
    "span_slow": 0.1,
    "assessment_error": 0.2,
}
SLOWER = 3.0  # a span is slow when it takes this many times its usual duration
MIN_SLOW_MS = 5.0
# A further "slow" line for a span must lie this far above the one below it (_slow_lines): a third of
# its calls may take 3x its 25th percentile as a matter of course, which dilutes a real slowdown; but the
# lower line stays, since a slowdown in many of the calls lifts the median and the 90th percentile too.
TAIL_GAP = 1.25
MAX_ERROR_SHARE = 0.8  # of the traces with a failed span
MIN_IDLE_MS = 20.0  # below this the time outside the steps is bookkeeping, not waiting


@dataclass(frozen=True)
class Outcome:
    key: str
    family: OutcomeFamily
    name: str  # what a reader sees: "span `x` failed"
    predicate: str  # SQL boolean over one row of `traces`
    population: str | None  # SQL boolean: the traces where the outcome can happen (None: all)
    explanation: str
    truncates: bool = False  # a trace with this outcome may be cut short: its low counts are a consequence
    about_response: bool = False  # derived from the response: response length is no cause of it
    sampled: bool = False  # observed only where an assessment was made
    structural_causes: bool = True  # whether the trace's shape (spans, counts) can be a cause of it
    # The same test over `span_facts` (one struct per span, derived once per trace; see SPAN_FACTS), for
    # the search's counting queries, where walking the spans once per outcome was most of the time.
    fact: str | None = None
    fact_population: str | None = None
    # SQL over a row of `traces`: the trace's chances of the outcome (the span's calls). A trace that calls
    # a span more often has more chances of one slow or repeated call, so a higher count is a cause only
    # beyond that (search.py).
    exposure: str | None = None
    events: str | None = None  # SQL: of those chances, the bad ones (the slow or repeated calls)
    # SQL: how far into the outcome a trace is (the slow call's duration). A slice's outcome traces
    # include its share of the background's, which sit just past the line; its own sit far past it.
    magnitude: str | None = None

    @property
    def weight(self) -> float:
        return WEIGHTS[self.family]

    def where(self) -> str:
        return self.predicate if self.population is None else f"({self.population}) AND ({self.predicate})"


@dataclass(frozen=True)
class Feature:
    key: str
    kind: FeatureKind
    name: str  # "tag `region`"
    expression: str  # SQL: a string, or an array of strings when `multi`
    multi: bool = False
    ranges: dict[str, str] = field(default_factory=dict)  # value -> readable SQL predicate, for bins
    structural: bool = False  # describes the trace's own steps (which spans, how many)
    below: dict[str, str] = field(default_factory=dict)  # low side of a threshold -> its high side
    # Paired with other features' values. Not the time windows: each is the best of thousands the scan
    # looked at, and paired with every value that leans the same way it would find chance clusters.
    paired: bool = True
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)  # window -> [start, end) in epoch ms
    rows: dict[str, str] = field(default_factory=dict)  # value -> predicate over the search's base rows
    counts_repeats: bool = False  # a count that a repeated call raises: no cause of the repeat

    def predicate(self, value: str) -> str:
        if value in self.ranges:
            return self.ranges[value]
        if self.multi:
            return f"array_contains({self.expression}, {quote(value)})"
        return f"{self.expression} = {quote(value)}"

    def describe(self, value: str) -> str:
        return f"{self.name} is {value}" if not self.multi or value in self.ranges else f"{self.name} includes {value}"


# -- outcomes ------------------------------------------------------------------------------------------


def outcomes(profile: Profile, min_support: int, custom: dict[str, str] | None = None) -> list[Outcome]:
    found: list[Outcome] = [
        Outcome(
            "",
            "trace_failed",
            "the trace failed",
            "state = 'ERROR'",
            None,
            "the trace's state is ERROR",
            truncates=True,
            about_response=True,
        ),
        Outcome(
            "",
            "empty_response",
            "the final response is empty",
            degenerate("response"),
            "state = 'OK'",
            "an OK trace whose response is null, empty, [] or {}, 0, or an object whose every field is empty",
            truncates=True,
            about_response=True,
        ),
        Outcome(
            "",
            "trace_slow",
            "the trace is among the slowest 5% of its kind",
            _slow_for_its_path(profile),
            None,
            "execution time above the 95th percentile of traces that call the same steps (of all traces, for "
            f"rare paths: {profile.p95_ms:,.0f} ms); a trace that does more steps takes longer, so its spans "
            "and counts are not offered as causes",
            structural_causes=False,
            magnitude="execution_duration_ms",
        ),
    ]
    median, p99 = profile.idle_ms
    limit = max(SLOWER * median, MIN_IDLE_MS)
    if p99 > limit:
        found.append(
            Outcome(
                "",
                "trace_idle",
                f"the trace waited over {limit:,.0f} ms outside its steps",
                f"{IDLE_MS} > {limit:.0f}",
                None,
                "time between the trace's start and end that no step "
                f"covers (before the first, after the last) over {SLOWER:g}x its median ({median:,.0f} ms); "
                "unlike the whole duration it does not grow with the number of steps, so spans and "
                "counts are offered as causes",
                magnitude=IDLE_MS,
            )
        )
    for span in profile.spans:
        found += _span_outcomes(span, min_support)
    for assessment in profile.assessments:
        found += _assessment_outcomes(assessment, min_support)
    found += _error_outcomes(profile, min_support)
    for name, sql in (custom or {}).items():
        found.append(Outcome("", "custom", name, f"({sql})", None, f"a person's definition: {sql}"))
    return [_keyed(o, i) for i, o in enumerate(found)]


def _slow_lines(span: SpanProfile) -> list[tuple[float, str]]:
    """Where a call of the span counts as slow, lowest first, each kept only if well above the last.
    Over 3x its 25th percentile catches a slowdown in half the calls; over 3x its median is the plain
    reading, where a wide spread puts many calls past the first line; and its 90th percentile serves
    where 3x the median is common too."""
    usual = "median" if span.usual_is_median else "25th percentile"
    candidates = [
        (
            max(SLOWER * span.usual_ms, MIN_SLOW_MS),
            f"over {SLOWER:g}x the span's usual duration (its {usual}, {span.usual_ms:,.0f} ms)",
        ),
        (SLOWER * span.median_ms, f"over {SLOWER:g}x the span's median duration ({span.median_ms:,.0f} ms)"),
        (
            span.tail_ms,
            f"over the span's 90th percentile: its durations spread so wide that {SLOWER:g}x its median is common",
        ),
    ]
    lines = candidates[:1]
    for limit, explanation in candidates[1:]:
        if limit > TAIL_GAP * lines[-1][0]:
            lines.append((limit, explanation))
    return lines


def _slow_span(span: SpanProfile, limit: float, explanation: str) -> Outcome:
    name = quote(span.name)
    return Outcome(
        "",
        "span_slow",
        f"span `{span.name}` took over {limit:,.0f} ms",
        f"exists(spans, s -> s.name = {name} AND {SPAN_MS} > {limit:.0f})",
        f"exists(spans, s -> s.name = {name})",
        explanation,
        fact=f"exists(span_facts, x -> x.name = {name} AND x.ms > {limit:.0f})",
        fact_population=f"exists(span_facts, x -> x.name = {name})",
        exposure=f"size(filter(spans, s -> s.name = {name}))",
        events=f"size(filter(spans, s -> s.name = {name} AND {SPAN_MS} > {limit:.0f}))",
        magnitude=f"array_max(transform(filter(spans, s -> s.name = {name}), s -> {SPAN_MS}))",
    )


def _error_outcomes(profile: Profile, min_support: int) -> list[Outcome]:
    """One error raised again and again. An incident tends to raise one error while failures in the
    background vary, so against a rest where that error is rare its slice stands out where "failed" alone
    is diluted. A signature on nearly every failing trace says no more than "failed" and is left out."""
    found = []
    for signature, traces in profile.errors.items():
        if min_support <= traces <= MAX_ERROR_SHARE * profile.failing:
            shown = signature.replace("`", "'")
            found.append(
                Outcome(
                    "",
                    "error",
                    f"the trace hit the error `{shown}`",
                    f"exists(spans, s -> {SPAN_FAILED} AND {ERROR_SIGNATURE} = {quote(signature)})",
                    None,
                    "a span failed with this error (its status message, else its exception, with numbers blanked)",
                    truncates=True,
                    about_response=True,
                )
            )
    return found


def _slow_for_its_path(profile: Profile) -> str:
    cases = " ".join(f"WHEN {quote(path)} THEN {p95:.0f}" for path, p95 in profile.p95_by_path.items())
    limit = f"CASE {PATH} {cases} ELSE {profile.p95_ms:.0f} END" if cases else f"{profile.p95_ms:.0f}"
    return f"execution_duration_ms > {limit}"


def _keyed(outcome: Outcome, index: int) -> Outcome:
    return replace(outcome, key=f"o{index}")


SPAN_FACTS = (
    f"transform(filter(spans, s -> s.parent_id IS NOT NULL), s -> named_struct('name', s.name, "
    f"'failed', {SPAN_FAILED}, 'empty', s.status_code <> 'ERROR' AND {degenerate(SPAN_OUTPUTS)}, "
    f"'ms', {SPAN_MS}))"
)


def _span_outcomes(span: SpanProfile, min_support: int) -> list[Outcome]:
    name = quote(span.name)
    has = f"exists(spans, s -> s.name = {name})"
    fact_has = f"exists(span_facts, x -> x.name = {name})"
    found = []
    if span.failed >= min_support:
        found.append(
            Outcome(
                "",
                "span_failed",
                f"span `{span.name}` failed",
                f"exists(spans, s -> s.name = {name} AND {SPAN_FAILED})",
                has,
                "status ERROR or an exception event on the span",
                truncates=True,
                fact=f"exists(span_facts, x -> x.name = {name} AND x.failed)",
                fact_population=fact_has,
            )
        )
    if min_support <= span.degenerate <= (span.calls - span.failed) / 2:
        found.append(
            Outcome(
                "",
                "span_degenerate_output",
                f"span `{span.name}` returned nothing",
                f"exists(spans, s -> s.name = {name} AND s.status_code <> 'ERROR' AND {degenerate(SPAN_OUTPUTS)})",
                has,
                "the span succeeded but its output was null, empty, [] or {}, 0, or an object whose "
                "every field is empty, where it usually returns something",
                truncates=True,
                fact=f"exists(span_facts, x -> x.name = {name} AND x.empty)",
                fact_population=fact_has,
            )
        )
    for limit, explanation in _slow_lines(span):
        found.append(_slow_span(span, limit, explanation))
    if span.repeated:
        inputs = "coalesce(s.attributes['mlflow.spanInputs'], '')"
        calls = f"filter(spans, s -> s.name = {name})"
        found.append(
            Outcome(
                "",
                "repeated_call",
                f"`{span.name}` was called again with the same input",
                f"size({calls}) > size(array_distinct(transform({calls}, s -> {inputs})))",
                has,
                "two or more calls of the span in one trace with identical inputs",
                fact_population=fact_has,
                exposure=f"size(array_distinct(transform({calls}, s -> {inputs})))",
                events=f"size({calls}) - size(array_distinct(transform({calls}, s -> {inputs})))",
            )
        )
    return found


def _assessment_outcomes(assessment: AssessmentProfile, min_support: int) -> list[Outcome]:
    same = f"a.name = {quote(assessment.name)} AND a.source.source_type = {quote(assessment.source)}"
    label = f"{assessment.source.lower().replace('_', ' ')} assessment `{assessment.name}`"
    found = []
    negative, rule = _negative(assessment)
    if negative:
        # A failed request has no answer to judge: its rating is the failure's symptom, counted there.
        valid = f"state = 'OK' AND exists(assessments, a -> {same} AND NOT {ERRORED})"
        found.append(
            Outcome(
                "",
                "assessment_negative",
                f"{label} is negative",
                f"exists(assessments, a -> {same} AND NOT {ERRORED} AND {negative})",
                valid,
                f"{rule}; only answered (OK) traces with a valid {label}",
                sampled=True,
            )
        )
    if assessment.errored >= min_support:
        found.append(
            Outcome(
                "",
                "assessment_error",
                f"{label} errored",
                f"exists(assessments, a -> {same} AND {ERRORED})",
                f"exists(assessments, a -> {same})",
                "an error recorded, or no value",
                sampled=True,
            )
        )
    for signature, traces in assessment.errors.items():  # one error recorded again and again (see _error_outcomes)
        if min_support <= traces <= MAX_ERROR_SHARE * assessment.errored:
            shown = signature.replace("`", "'")
            found.append(
                Outcome(
                    "",
                    "assessment_error",
                    f"{label} errored with `{shown}`",
                    f"exists(assessments, a -> {same} AND {ASSESSMENT_ERROR_SIGNATURE} = {quote(signature)})",
                    f"exists(assessments, a -> {same})",
                    "this error recorded (numbers blanked)",
                    sampled=True,
                )
            )
    return found


def _negative(assessment: AssessmentProfile) -> tuple[str | None, str]:
    if assessment.booleans:
        return "a.feedback.value = 'false'", "the value is false"
    if assessment.words:
        words = ", ".join(f"'\"{w}\"'" for w in NEGATIVE_WORDS)
        return f"lower(a.feedback.value) IN ({words})", "the value is a negative word (no, fail, incorrect, ...)"
    if assessment.low is not None and assessment.high is not None and assessment.high > assessment.low:
        low, high = _scale(assessment.low, assessment.high)
        middle = (low + high) / 2
        return (
            f"try_cast(a.feedback.value AS DOUBLE) < {middle:g}",
            f"the value is below the middle of its {low:g}-{high:g} scale ({middle:g})",
        )
    return None, ""


def _scale(low: float, high: float) -> tuple[float, float]:
    """The scale a numeric assessment is on, from the values seen: 0-1, 1-5, 0-10, or what was seen."""
    if low >= 0 and high <= 1:
        return 0.0, 1.0
    if low >= 1 and high <= 5:
        return 1.0, 5.0
    if low >= 0 and high <= 10:
        return 0.0, 10.0
    return low, high


# -- features ------------------------------------------------------------------------------------------


def features(profile: Profile) -> list[Feature]:
    found: list[Feature] = []
    for key in profile.tags:
        found.append(_keyed_values("tag", f"tag `{key.key}`", f"tags[{quote(key.key)}]", key))
    for key in profile.metadata:
        found.append(_keyed_values("metadata", f"metadata `{key.key}`", f"trace_metadata[{quote(key.key)}]", key))
    for key in profile.request_fields:
        found.append(_keyed_values("request_field", f"request field `{key.key}`", request_field(key.key), key))
    if profile.request_patterns.distinct and profile.request_patterns.distinct <= max(2, profile.traces // 4):
        found.append(
            _keyed_values("request_pattern", "request text (digits masked)", REQUEST_PATTERN, profile.request_patterns)
        )
    found.append(
        Feature(
            "",
            "span",
            "spans called",
            "array_distinct(transform(filter(spans, s -> s.parent_id IS NOT NULL), s -> s.name))",
            multi=True,
            structural=True,
        )
    )
    if len(profile.models) > 1:
        found.append(Feature("", "model", "models used", _models_expression(), multi=True))
    for measure, cuts in profile.cuts.items():
        if cuts:
            found.append(_binned(measure, cuts))
    found += _time_features()
    found.append(Feature("", "shape", "identifier shapes in the request", _shapes("request"), multi=True))
    for span in profile.spans:
        if span.span_type == "TOOL":
            inputs = f"array_join(transform(filter(spans, s -> s.name = {quote(span.name)}), s -> coalesce(s.attributes['mlflow.spanInputs'], '')), ' ')"
            found.append(
                Feature(
                    "",
                    "shape",
                    f"identifier shapes in `{span.name}` inputs",
                    _shapes(inputs),
                    multi=True,
                    structural=True,
                )
            )
    return [replace(f, key=f"f{i}") for i, f in enumerate(found)]


def _keyed_values(kind: FeatureKind, name: str, expression: str, key: KeyProfile) -> Feature:
    value = f"coalesce({expression}, '(none)')"
    if key.distinct > len(key.top):
        kept = ", ".join(quote(v) for v in key.top)
        value = f"CASE WHEN {expression} IN ({kept}) THEN {expression} WHEN {expression} IS NULL THEN '(none)' ELSE '(other)' END"
    return Feature("", kind, name, value)


def _models_expression() -> str:
    from analyze_experiment.agent.core.discovery.profile import MODEL_KEYS

    picks = ", ".join(f"s.attributes['{key}']" for key in MODEL_KEYS)
    return f"array_distinct(filter(transform(spans, s -> replace(coalesce({picks}), '\"', '')), m -> m IS NOT NULL))"


BIN_NAMES = {
    "spans": "spans per trace",
    "llm_calls": "LLM calls per trace",
    "tool_calls": "distinct tool calls per trace",
    "request_chars": "request length (characters)",
    "response_chars": "response length (characters)",
}


def _binned(measure: str, cuts: list[float]) -> Feature:
    """Thresholds at the profile's equal-height cut points: a trace under 200 characters is in every
    "under e" with e above 200 and every "e or more" with e up to 200. A cause is rarely a band between
    two cut points; it is a side of a threshold ("more than 3 tool calls"), which a bin would split."""
    sql = MEASURES[measure]
    edges = sorted({round(c) for c in cuts})
    kind: FeatureKind = "length" if measure.endswith("_chars") else "count"
    labels, ranges = [], {}
    for edge in edges:
        for label, test in ((f"under {edge:,}", f"{sql} < {edge}"), (f"{edge:,} or more", f"{sql} >= {edge}")):
            labels.append(f"CASE WHEN {test} THEN {quote(label)} END")
            ranges[label] = test
    expression = f"filter(array({', '.join(labels)}), x -> x IS NOT NULL)" if labels else "array()"
    below = {f"under {edge:,}": f"{edge:,} or more" for edge in edges}
    return Feature(
        "",
        kind,
        BIN_NAMES[measure],
        expression,
        multi=True,
        ranges=ranges,
        structural=kind == "count",
        below=below,
        counts_repeats=measure in {"spans", "llm_calls"},
    )


def _time_features() -> list[Feature]:
    """Calendar slices. Bursts of any length are found by the scan (scan.py), not by fixed windows."""
    return [
        Feature("", "time", "day", "date_format(request_time, 'yyyy-MM-dd')"),
        Feature("", "time", "hour of the week", "date_format(request_time, 'E HH:00')"),
    ]


def window_feature(key: str) -> Feature:
    """The time windows the scan finds, filled in as it finds them: no column of the search's base rows,
    each window a range over their `request_ms`."""
    return Feature(key, "time", "time window", "", multi=True, paired=False)


def add_window(feature: Feature, start_ms: int, end_ms: int) -> str:
    """The window's label, registered with its range; the same label for the same range."""
    label = f"{_stamp(start_ms, 'start')} to {_stamp(end_ms, 'end')}"
    if feature.bounds.get(label, (start_ms, end_ms)) != (start_ms, end_ms):
        label = f"{_stamp(start_ms, 'start', seconds=True)} to {_stamp(end_ms, 'end', seconds=True)}"
    feature.bounds[label] = (start_ms, end_ms)
    feature.ranges[label] = f"unix_millis(request_time) >= {start_ms} AND unix_millis(request_time) < {end_ms}"
    feature.rows[label] = f"request_ms >= {start_ms} AND request_ms < {end_ms}"
    return label


def _stamp(ms: float | None, edge: str, seconds: bool = False) -> str:
    shown = "%m-%d %H:%M:%S" if seconds else "%m-%d %H:%M"
    return edge if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC).strftime(shown)


_ID = "[A-Za-z0-9#@_-]"
# a run of identifier characters holding a digit, and the runs joined to it by single dots or slashes
ID_TOKEN = f"(?:{_ID}+[./])*{_ID}*[0-9]{_ID}*(?:[./]{_ID}+)*"


def _shapes(text: str) -> str:
    """The shapes of identifier-like tokens (letters to a, digits to 9): `AB-1234` becomes `aa-9999`.
    A token holds a digit; a dot or slash between its parts joins them (`v1.2.3`, `INV/2024/001`),
    one at its end (a sentence's full stop) does not."""
    tokens = f"regexp_extract_all(coalesce({text}, ''), '{ID_TOKEN}', 0)"
    return (
        "array_distinct(transform(filter(" + tokens + ", x -> length(x) >= 3), "
        "x -> regexp_replace(regexp_replace(x, '[A-Za-z]', 'a'), '[0-9]', '9')))"
    )
