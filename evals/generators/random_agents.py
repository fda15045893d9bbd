"""Random agents with random planted problems, and their ground truth: evals an analyst cannot be tuned to.

A draw (`draw(seed, traces, control)`) makes up an agent: a trace name, 3 to 12 span kinds (tools, one
or more chat models, maybe a retriever, maybe one tool that wraps a model or retriever call), tags,
metadata (one of them an id per trace), a request format with identifier-like tokens of random
shapes, and assessments from people, judges and code on part of the traffic. All names are random
pronounceable words. It then logs a week of traffic in time order with small random base rates of
failures, empty outputs, negative and errored assessments, and lognormal latencies.

Into that it plants 1 to 3 problems. A problem is an outcome (what goes wrong) firing with
probability `effect` inside a segment of traces (why): see OUTCOMES and CAUSES. The ground truth is
the traces where the effect fired; each problem also carries its statistical power (`power.py`), so
scores can tell what an analyst missed from what no analyst could see. A negative control
(`control=True`) plants nothing and adds decoys: a skewed tag correlated with nothing and heavy-tailed
latency with no cause; whatever an analyst reports there is false.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from analyze_experiment.agent.simulation.tracejson import MS, AssessmentDraft, SpanDraft, TraceDraft
from analyze_experiment.evals.generators import names
from analyze_experiment.evals.generators.power import EDGE_ALPHA, exact_test_power, raised

if TYPE_CHECKING:
    from mlflow import MlflowClient

OUTCOMES = (
    "trace_failed",
    "span_failed",
    "span_degenerate_output",
    "empty_response",
    "assessment_negative",
    "assessment_error",
    "trace_slow",
    "span_slow",
    "repeated_tool_call",
)
# assessment_negative is scored per source type: these are the outcome families problems carry.
OUTCOME_FAMILIES = (
    "trace_failed",
    "span_failed",
    "span_degenerate_output",
    "empty_response",
    "assessment_negative_human",
    "assessment_negative_llm_judge",
    "assessment_negative_code",
    "assessment_error",
    "trace_slow",
    "span_slow",
    "repeated_tool_call",
)
CAUSES = ("feature_value", "pair", "threshold", "time_window", "identifier_shape")
DEFAULT_TRACES = 300
HOUR_NS = 3600 * 10**9
DAY_NS = 24 * HOUR_NS
EPOCH_NS = 1_790_000_000 * 10**9  # traffic starts within 200 days of this
SLOW_SHARE = 0.05  # trace_slow: the slowest 5% of traces
SLOW_PLANTED = 0.04  # at most this share of traffic is made slow, so all of it lands in the slowest 5%
SPAN_SLOW = 3.0  # span_slow: over 3x the span's median duration
MIN_SEGMENT = 10
MIN_EXPECTED_FIRED = 3.0
ATTEMPTS = 200

Key = tuple[str, ...]  # an outcome: ("span_failed", "<span name>"), ("trace_failed",), ...


# -- the agent ------------------------------------------------------------------------------------------


@dataclass
class Kind:
    """One kind of span the agent makes."""

    name: str
    span_type: str  # TOOL, CHAT_MODEL, LLM or RETRIEVER
    prob: float  # called in this share of traces
    max_calls: int  # called 1..max_calls times (each with different input)
    median_ms: float
    sigma: float
    arg: str  # the input's main field
    output: str  # list | results | text | object | chat
    out_key: str
    fail_rate: float
    degenerate_rate: float = 0.0
    models: list[tuple[str, float]] = field(default_factory=list)
    id_patterns: list[tuple[str, float]] = field(default_factory=list)  # tools that take an identifier
    inner: Kind | None = None  # a kind called only inside this one
    top: bool = True

    @property
    def is_llm(self) -> bool:
        return self.span_type in {"CHAT_MODEL", "LLM"}


@dataclass
class Judge:
    name: str
    source_type: str  # HUMAN, LLM_JUDGE or CODE
    source_id: str
    scale: str  # bool | yes_no | score (1-5)
    coverage: float
    negative_rate: float
    error_rate: float

    @property
    def family(self) -> str:
        return "assessment_negative_" + self.source_type.lower()

    def value(self, rng: random.Random, negative: bool) -> Any:
        if self.scale == "bool":
            return not negative
        if self.scale == "yes_no":
            return "no" if negative else "yes"
        return rng.choice([1, 2]) if negative else rng.choices([3, 4, 5], weights=[2, 4, 4])[0]

    def negatives(self) -> list[str]:
        """Negative values as the traces table shows them (JSON text)."""
        return {"bool": ["false"], "yes_no": ['"no"'], "score": ["1", "2"]}[self.scale]


@dataclass
class Agent:
    name: str
    start_ns: int
    kinds: list[Kind]  # top-level kinds in call order
    tags: dict[str, list[tuple[str, float]]]
    metadata: dict[str, list[tuple[str, float]]]  # bounded-cardinality metadata
    id_key: str  # metadata with a new id per trace
    id_prefix: str
    text_key: str
    field_key: str | None
    field_values: list[tuple[str, float]]
    vocabulary: list[str]
    templates: list[list[str]]  # words, with "{id}" where the identifier goes
    request_patterns: list[tuple[str, float]]
    answer_key: str
    judges: list[Judge]
    trace_fail_rate: float
    errors: list[str]  # exception types the agent's code raises

    def all_kinds(self) -> list[Kind]:
        return [k for top in self.kinds for k in ([top, top.inner] if top.inner else [top])]

    def summary(self) -> str:
        kinds = ", ".join(
            f"{k.name} ({k.span_type.lower()}{', nested' if not k.top else ''})" for k in self.all_kinds()
        )
        judges = ", ".join(f"{j.name} ({j.source_type.lower()}, {j.coverage:.0%} of traces)" for j in self.judges)
        return f"agent '{self.name}' with spans {kinds}; tags {', '.join(self.tags)}; assessments {judges or 'none'}"


def _weights(rng: random.Random, count: int, floor: float = 0.03) -> list[float]:
    raw = [rng.gammavariate(1.2, 1.0) + floor * 4 for _ in range(count)]
    total = sum(raw)
    return [w / total for w in raw]


def _categorical(rng: random.Random, namer: names.Namer, low: int, high: int) -> list[tuple[str, float]]:
    count = rng.randint(low, high)
    if rng.random() < 0.2:  # version-like values
        values = [f"{rng.randrange(1, 6)}.{minor}" for minor in rng.sample(range(20), count)]
    else:
        values = [namer.word() for _ in range(count)]
    return list(zip(values, _weights(rng, count), strict=True))


def _pick(rng: random.Random, options: list[tuple[str, float]]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def _make_agent(rng: random.Random, namer: names.Namer, control: bool) -> Agent:
    kinds_total = rng.randint(3, 12)
    llm_count = 1 if kinds_total < 5 else rng.randint(1, 2)
    retriever = kinds_total >= 4 and rng.random() < 0.5
    nested = kinds_total >= 4 and rng.random() < 0.35
    tools = kinds_total - llm_count - int(retriever) - int(nested)

    def latency() -> tuple[float, float]:
        return math.exp(rng.uniform(math.log(20), math.log(2000))), rng.uniform(0.2, 0.8)

    def llm(prob: float, top: bool = True) -> Kind:
        median, sigma = latency()
        models = [(namer.model(), w) for w in _weights(rng, rng.choice([1, 1, 2]))]
        return Kind(
            namer.name(),
            rng.choice(["CHAT_MODEL", "LLM"]),
            prob,
            1,
            median,
            sigma,
            "messages",
            "chat",
            rng.choice(["content", "text"]),
            rng.uniform(0, 0.02),
            models=models,
            top=top,
        )

    def tool(prob: float, span_type: str = "TOOL", top: bool = True) -> Kind:
        median, sigma = latency()
        output = "list" if span_type == "RETRIEVER" else rng.choice(["list", "results", "text", "object"])
        takes_id = span_type == "TOOL" and rng.random() < 0.5
        patterns: list[tuple[str, float]] = []
        if takes_id:
            shapes = _distinct_patterns(rng, rng.randint(2, 3))
            patterns = list(zip(shapes, _weights(rng, len(shapes), floor=0.1), strict=True))
        return Kind(
            namer.name(),
            span_type,
            prob,
            rng.choice([1, 1, 1, 2, 3, 4]) if span_type == "TOOL" else 1,
            median,
            sigma,
            namer.word(),
            output,
            namer.word(),
            rng.uniform(0, 0.02),
            degenerate_rate=rng.uniform(0, 0.01),
            id_patterns=patterns,
            top=top,
        )

    first = llm(1.0)
    middle = [tool(rng.uniform(0.5, 1.0), "RETRIEVER")] if retriever else []
    middle += [tool(rng.choice([rng.uniform(0.15, 0.5), rng.uniform(0.5, 1.0), 1.0])) for _ in range(tools)]
    rng.shuffle(middle)
    if nested and middle:
        wrapper = rng.choice([k for k in middle if k.span_type == "TOOL"] or middle)
        wrapper.inner = llm(1.0, top=False) if rng.random() < 0.5 else tool(1.0, "RETRIEVER", top=False)
        wrapper.max_calls = 1
    last = [llm(rng.choice([1.0, rng.uniform(0.6, 1.0)]))] if llm_count > 1 else []
    kinds = [first, *middle, *last]
    if control:  # heavy-tailed latency with no cause
        for kind in rng.sample(kinds, min(2, len(kinds))):
            kind.sigma = rng.uniform(1.2, 1.6)

    tags = {namer.name(): _categorical(rng, namer, 2, 8) for _ in range(rng.randint(2, 5))}
    if control:  # a skewed tag correlated with nothing
        values = [namer.word() for _ in range(rng.randint(3, 6))]
        skew = [0.7, *[0.3 / (len(values) - 1)] * (len(values) - 1)]
        tags[namer.name()] = list(zip(values, skew, strict=True))
    metadata = {namer.name(): _categorical(rng, namer, 2, 6) for _ in range(rng.randint(0, 2))}
    vocabulary = [namer.word(rng.choice([1, 2, 2])) for _ in range(rng.randint(30, 60))]
    templates = []
    for _ in range(rng.randint(3, 6)):
        words = [rng.choice(vocabulary) for _ in range(rng.randint(4, 30))]
        words.insert(rng.randrange(0, len(words)), "{id}")  # never last
        templates.append(words)
    patterns = _distinct_patterns(rng, rng.randint(2, 4))
    judges = []
    for source_type, chance in (("HUMAN", 0.6), ("LLM_JUDGE", 0.6), ("CODE", 0.4)):
        if rng.random() < chance:
            scale = {"HUMAN": "bool", "CODE": "bool", "LLM_JUDGE": rng.choice(["yes_no", "score"])}[source_type]
            source_id = f"user-{rng.randrange(100)}" if source_type == "HUMAN" else namer.name(sep="-")
            judges.append(
                Judge(
                    namer.name(),
                    source_type,
                    source_id,
                    scale,
                    rng.uniform(0.3, 1.0),
                    rng.uniform(0.05, 0.2),
                    0.0 if source_type == "HUMAN" else rng.uniform(0, 0.03),
                )
            )
    field_key = namer.word() if rng.random() < 0.5 else None
    return Agent(
        name=namer.name(),
        start_ns=EPOCH_NS + rng.randrange(200) * DAY_NS,
        kinds=kinds,
        tags=tags,
        metadata=metadata,
        id_key=namer.name(),
        id_prefix=namer.word(1)[:3],
        text_key=namer.word(),
        field_key=field_key,
        field_values=_categorical(rng, namer, 3, 6) if field_key else [],
        vocabulary=vocabulary,
        templates=templates,
        request_patterns=list(zip(patterns, _weights(rng, len(patterns), floor=0.1), strict=True)),
        answer_key=namer.word(),
        judges=judges,
        trace_fail_rate=rng.uniform(0, 0.03),
        errors=[namer.word().capitalize() + suffix for suffix in ("Error", "Exception", "Timeout")],
    )


def _distinct_patterns(rng: random.Random, count: int) -> list[str]:
    found: dict[str, str] = {}
    while len(found) < count:
        pattern = names.id_pattern(rng)
        found.setdefault(names.shape(pattern), pattern)
    return list(found.values())


# -- one trace, planned before it is drawn ------------------------------------------------------------


@dataclass(eq=False)  # calls compare by identity: two calls can look alike
class Call:
    kind: Kind
    inputs: Any
    outputs: Any
    ms: float
    model: str | None = None
    error: str | None = None
    inner: list[Call] = field(default_factory=list)

    def total_ms(self) -> float:
        return self.ms + sum(c.total_ms() + 3 for c in self.inner)


@dataclass
class Verdict:
    value: Any = None
    error: str | None = None
    observed: bool = False


@dataclass
class Plan:
    index: int
    begin_ns: int
    tags: dict[str, str]
    metadata: dict[str, str]
    request: dict[str, Any]
    request_shape: str
    tool_shapes: dict[str, str]  # kind name -> the shape of the identifier it was called with
    calls: list[Call]
    response: Any
    error: str | None = None
    wait_ms: float = 0.0
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    bad: set[str] = field(default_factory=set)

    def all_calls(self) -> list[Call]:
        return [c for top in self.calls for c in [top, *top.inner]]

    def first(self, kind: Kind) -> Call | None:
        return next((c for c in self.all_calls() if c.kind is kind and c.error is None), None)

    def tool_calls(self) -> int:
        return sum(1 for c in self.all_calls() if c.kind.span_type == "TOOL")

    def request_length(self) -> int:
        return len(json.dumps(self.request, ensure_ascii=False))

    def duration_ms(self) -> float:
        return self.wait_ms + sum(c.total_ms() + 3 for c in self.calls) + 6


def _words(rng: random.Random, vocabulary: list[str], low: int, high: int) -> str:
    return " ".join(rng.choice(vocabulary) for _ in range(rng.randint(low, high)))


def _lognormal(rng: random.Random, kind: Kind) -> float:
    return max(1.0, kind.median_ms * math.exp(kind.sigma * rng.gauss(0, 1)))


def _output(rng: random.Random, agent: Agent, kind: Kind, text: str) -> Any:
    if kind.output == "chat":
        return {kind.out_key: text}
    items = [
        {
            "id": names.token(rng, "aa9999"),
            "score": round(rng.random(), 3),
            "text": _words(rng, agent.vocabulary, 3, 12),
        }
        for _ in range(rng.randint(1, 5))
    ]
    if kind.output == "list":
        return items
    if kind.output == "results":
        return {kind.out_key: items, "count": len(items)}
    if kind.output == "text":
        return _words(rng, agent.vocabulary, 4, 30)
    return {kind.out_key: rng.choice(agent.vocabulary), "value": rng.randrange(1, 10_000)}


def _call(rng: random.Random, agent: Agent, kind: Kind, text: str, attempt: int, id_token: str | None) -> Call:
    if kind.is_llm:
        model = _pick(rng, kind.models)
        answer = _words(rng, agent.vocabulary, 5, 60)
        return Call(
            kind,
            {"messages": [{"role": "user", "content": text}]},
            _output(rng, agent, kind, answer),
            _lognormal(rng, kind),
            model=model,
        )
    inputs: dict[str, Any] = {kind.arg: id_token if id_token else _words(rng, agent.vocabulary, 1, 4)}
    if kind.max_calls > 1:
        inputs["page" if id_token else "attempt"] = attempt + 1  # repeated calls never repeat their input
    return Call(kind, inputs, _output(rng, agent, kind, ""), _lognormal(rng, kind))


def _plan(rng: random.Random, agent: Agent, index: int, count: int) -> Plan:
    begin = agent.start_ns + int(index * (7 * DAY_NS / max(count, 1))) + rng.randrange(10**9)
    pattern = _pick(rng, agent.request_patterns)
    template = rng.choice(agent.templates)
    words = [names.token(rng, pattern) if w == "{id}" else w for w in template]
    text = " ".join(words)
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        text += ". " + _words(rng, agent.vocabulary, 4, 15).capitalize()
    request: dict[str, Any] = {agent.text_key: text}
    if agent.field_key:
        request[agent.field_key] = _pick(rng, agent.field_values)
    plan = Plan(
        index=index,
        begin_ns=begin,
        tags={k: _pick(rng, v) for k, v in agent.tags.items()},
        metadata={
            agent.id_key: names.opaque_id(rng, agent.id_prefix),
            **{k: _pick(rng, v) for k, v in agent.metadata.items()},
        },
        request=request,
        request_shape=names.shape(pattern),
        tool_shapes={},
        calls=[],
        response=None,
    )
    failed = _work(rng, agent, plan, text)
    if not failed and rng.random() < agent.trace_fail_rate:
        plan.error = f"{rng.choice(agent.errors)}: {_words(rng, agent.vocabulary, 2, 5)}"
    if plan.error is None:
        plan.response = {agent.answer_key: _words(rng, agent.vocabulary, 5, 120).capitalize() + "."}
    for judge in agent.judges:
        verdict = plan.verdicts[judge.name] = Verdict(observed=rng.random() < judge.coverage)
        if verdict.observed and rng.random() < judge.error_rate:
            verdict.error = f"{judge.name} failed: {_words(rng, agent.vocabulary, 2, 4)}"
        elif verdict.observed:
            verdict.value = judge.value(rng, rng.random() < judge.negative_rate)
    return plan


def _work(rng: random.Random, agent: Agent, plan: Plan, text: str) -> bool:
    """The agent's calls, with their base rates of failure and empty output; True when a failure ended it."""
    for kind in agent.kinds:
        if rng.random() >= kind.prob:
            continue
        id_token = None
        if kind.id_patterns:
            tool_pattern = _pick(rng, kind.id_patterns)
            plan.tool_shapes[kind.name] = names.shape(tool_pattern)
            id_token = names.token(rng, tool_pattern)
        for attempt in range(rng.randint(1, kind.max_calls)):
            call = _call(rng, agent, kind, text, attempt, id_token)
            if kind.inner:
                call.inner.append(_call(rng, agent, kind.inner, text, 0, None))
                call.ms = rng.uniform(2, 20)
            plan.calls.append(call)
            for made in [call, *call.inner]:
                _base_noise(rng, agent, made, call)
            if call.error and rng.random() < 0.5:  # the failure reaches the agent's caller
                plan.error = call.error
                return True
    return False


def _base_noise(rng: random.Random, agent: Agent, made: Call, outer: Call) -> None:
    if rng.random() < made.kind.fail_rate:
        made.error = f"{rng.choice(agent.errors)}: {_words(rng, agent.vocabulary, 2, 5)}"
        made.outputs = None
        if made is not outer:
            outer.error, outer.outputs = made.error, None
    elif not made.kind.is_llm and rng.random() < made.kind.degenerate_rate:
        made.outputs = _degenerate(rng, made.kind)


def _degenerate(rng: random.Random, kind: Kind, form: str | None = None) -> Any:
    form = form or rng.choice(_DEGENERATE[kind.output])
    return {
        "null": None,
        "empty_text": "",
        "empty_list": [],
        "empty_object": {},
        "zero_results": {kind.out_key: [], "count": 0},
    }[form]


_DEGENERATE = {
    "list": ["null", "empty_list"],
    "results": ["null", "zero_results"],
    "text": ["null", "empty_text"],
    "object": ["null", "empty_object"],
    "chat": ["null"],
}


# -- outcomes: what the traces show ---------------------------------------------------------------------


def _kind(agent: Agent, name: str) -> Kind:
    return next(k for k in agent.all_kinds() if k.name == name)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _degenerate_value(value: Any) -> bool:
    return value in (None, "", [], {}) or (isinstance(value, dict) and value.get("count") == 0)


def observe(agent: Agent, plans: list[Plan], key: Key) -> list[bool | None]:
    """Whether each trace shows the outcome (None: not observed there, e.g. no assessment)."""
    family = key[0]
    if family == "trace_failed":
        return [p.error is not None for p in plans]
    if family == "empty_response":
        return [p.error is None and _degenerate_value(_answer(agent, p.response)) for p in plans]
    if family == "trace_slow":
        durations = [p.duration_ms() for p in plans]
        cut = sorted(durations, reverse=True)[max(int(len(plans) * SLOW_SHARE), 1) - 1]
        return [d >= cut for d in durations]
    if family in {"assessment_negative", "assessment_error"}:
        judge = next(j for j in agent.judges if j.name == key[1])
        out: list[bool | None] = []
        for p in plans:
            v = p.verdicts[judge.name]
            if family == "assessment_error":
                out.append(v.error is not None if v.observed else None)
            else:
                out.append(json.dumps(v.value) in judge.negatives() if v.observed and v.error is None else None)
        return out
    kind = _kind(agent, key[1])
    if family == "span_failed":
        return [any(c.kind is kind and c.error for c in p.all_calls()) for p in plans]
    if family == "span_degenerate_output":
        return [
            any(c.kind is kind and not c.error and _degenerate_value(c.outputs) for c in p.all_calls()) for p in plans
        ]
    if family == "span_slow":
        typical = _median([c.total_ms() for p in plans for c in p.all_calls() if c.kind is kind])
        return [any(c.kind is kind and c.total_ms() > SPAN_SLOW * typical for c in p.all_calls()) for p in plans]
    if family == "repeated_tool_call":
        seen = [[json.dumps(c.inputs, sort_keys=True) for c in p.all_calls() if c.kind is kind] for p in plans]
        return [len(s) != len(set(s)) for s in seen]
    raise ValueError(family)


def _answer(agent: Agent, response: Any) -> Any:
    return response.get(agent.answer_key) if isinstance(response, dict) and response else response


def outcome_sql(agent: Agent, key: Key, plans: list[Plan]) -> str:
    """A query over the traces table selecting the traces that show the outcome."""
    family = key[0]
    if family == "trace_failed":
        return "SELECT trace_id FROM traces WHERE state = 'ERROR'"
    if family == "empty_response":
        return (
            f"SELECT trace_id FROM traces WHERE state = 'OK' AND (response IS NULL OR response IN ('\"\"', '{{}}') "
            f"OR get_json_object(response, '$.{agent.answer_key}') = '')"
        )
    if family == "trace_slow":
        top = max(int(len(plans) * SLOW_SHARE), 1)
        return (
            f"SELECT trace_id FROM traces WHERE execution_duration_ms >= (SELECT min(d) FROM (SELECT "
            f"execution_duration_ms AS d FROM traces ORDER BY d DESC LIMIT {top}) slowest)"
        )
    if family == "assessment_negative":
        judge = next(j for j in agent.judges if j.name == key[1])
        values = ", ".join("'" + v + "'" for v in judge.negatives())
        return (
            f"SELECT trace_id FROM traces WHERE exists(assessments, a -> a.name = '{judge.name}' AND "
            f"a.feedback.error IS NULL AND a.feedback.value IN ({values}))"
        )
    if family == "assessment_error":
        return (
            f"SELECT trace_id FROM traces WHERE exists(assessments, a -> a.name = '{key[1]}' "
            "AND a.feedback.error IS NOT NULL)"
        )
    name = key[1]
    if family == "span_failed":
        return f"SELECT trace_id FROM traces WHERE exists(spans, s -> s.name = '{name}' AND s.status_code = 'ERROR')"
    if family == "span_degenerate_output":
        return (
            f"SELECT trace_id FROM traces WHERE exists(spans, s -> s.name = '{name}' AND s.status_code = 'OK' AND "
            "(s.attributes['mlflow.spanOutputs'] IS NULL OR s.attributes['mlflow.spanOutputs'] IN "
            "('\"\"', '[]', '{}') OR s.attributes['mlflow.spanOutputs'] LIKE '%\"count\": 0}'))"
        )
    if family == "span_slow":
        kind = _kind(agent, name)
        typical = _median([c.total_ms() for p in plans for c in p.all_calls() if c.kind is kind])
        return (
            f"SELECT trace_id FROM traces WHERE exists(spans, s -> s.name = '{name}' AND "
            f"unix_millis(s.end_time) - unix_millis(s.start_time) > {SPAN_SLOW * typical:.0f})"
        )
    if family == "repeated_tool_call":
        return (
            f"SELECT trace_id FROM traces WHERE size(filter(spans, s -> s.name = '{name}')) > "
            f"size(array_distinct(transform(filter(spans, s -> s.name = '{name}'), "
            "s -> s.attributes['mlflow.spanInputs'])))"
        )
    raise ValueError(family)


# -- causes: which traces a problem lives in -------------------------------------------------------------


@dataclass
class Segment:
    family: str
    words: str  # e.g. "tag 'sorabi' = 'kelo'"
    sql: str  # a WHERE condition over the traces table
    members: frozenset[int]  # plan indexes
    by_tool_calls: bool = False  # the segment depends on how many tools a trace calls, or on their inputs


def _shape_regex(shape: str) -> str:
    body = "".join("[A-Za-z]" if ch == "a" else "[0-9]" if ch == "9" else re.escape(ch) for ch in shape)
    return f'(^|[ "]){body}([ ".,]|$)'


def _segment(rng: random.Random, agent: Agent, plans: list[Plan], family: str) -> Segment | None:
    n = len(plans)
    if family == "feature_value":
        sources = [("tag", "tags", k, v) for k, v in agent.tags.items()]
        sources += [("metadata", "trace_metadata", k, v) for k, v in agent.metadata.items()]
        label, column, key, values = rng.choice(sources)
        value = _pick(rng, values)
        members = frozenset(p.index for p in plans if (p.tags if column == "tags" else p.metadata)[key] == value)
        return Segment(family, f"{label} '{key}' = '{value}'", f"{column}['{key}'] = '{value}'", members)
    if family == "pair":
        if len(agent.tags) < 2:
            return None
        (k1, values1), (k2, values2) = rng.sample(sorted(agent.tags.items()), 2)
        v1, v2 = _pick(rng, values1), _pick(rng, values2)
        members = frozenset(p.index for p in plans if p.tags[k1] == v1 and p.tags[k2] == v2)
        alone1 = sum(1 for p in plans if p.tags[k1] == v1)
        alone2 = sum(1 for p in plans if p.tags[k2] == v2)
        if min(alone1, alone2) < 2 * len(members):  # only the combination, not one value, must stand out
            return None
        return Segment(
            family,
            f"tag '{k1}' = '{v1}' together with tag '{k2}' = '{v2}'",
            f"tags['{k1}'] = '{v1}' AND tags['{k2}'] = '{v2}'",
            members,
        )
    if family == "threshold":
        share = rng.uniform(0.1, 0.35)
        if rng.random() < 0.5:
            counts = sorted(p.tool_calls() for p in plans)
            cut = counts[int(n * (1 - share))]
            members = frozenset(p.index for p in plans if p.tool_calls() > cut)
            return Segment(
                family,
                f"more than {cut} tool calls",
                f"size(filter(spans, s -> s.attributes['mlflow.spanType'] = '\"TOOL\"')) > {cut}",
                members,
                by_tool_calls=True,
            )
        lengths = sorted(p.request_length() for p in plans)
        cut = lengths[int(n * (1 - share))]
        members = frozenset(p.index for p in plans if p.request_length() > cut)
        return Segment(family, f"requests longer than {cut} characters", f"length(request) > {cut}", members)
    if family == "time_window":
        hours = rng.randint(6, 36)
        first = plans[0].begin_ns - plans[0].begin_ns % HOUR_NS
        start = first + rng.randrange(0, 7 * 24 - hours) * HOUR_NS
        end = start + hours * HOUR_NS
        members = frozenset(p.index for p in plans if start <= p.begin_ns < end)
        return Segment(
            family,
            f"the {hours} hours from {_when(start)}",
            f"unix_millis(request_time) >= {start // MS} AND unix_millis(request_time) < {end // MS}",
            members,
        )
    if family == "identifier_shape":
        tools = [k for k in agent.all_kinds() if k.id_patterns and k.prob >= 0.5]
        if tools and rng.random() < 0.5:
            kind = rng.choice(tools)
            shape = names.shape(_pick(rng, kind.id_patterns))
            members = frozenset(
                p.index
                for p in plans
                if p.tool_shapes.get(kind.name) == shape and any(c.kind is kind for c in p.all_calls())
            )
            # by_tool_calls: a failure that ends the trace before this call would hide the cause
            return Segment(
                family,
                f"'{kind.name}' called with an identifier shaped '{shape}'",
                f"exists(spans, s -> s.name = '{kind.name}' AND s.attributes['mlflow.spanInputs'] "
                f"rlike '{_shape_regex(shape)}')",
                members,
                by_tool_calls=True,
            )
        shape = names.shape(_pick(rng, agent.request_patterns))
        members = frozenset(p.index for p in plans if p.request_shape == shape)
        return Segment(
            family, f"requests with an identifier shaped '{shape}'", f"request rlike '{_shape_regex(shape)}'", members
        )
    raise ValueError(family)


def _when(ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:00 UTC")


# -- planting ---------------------------------------------------------------------------------------------


@dataclass
class Planted:
    """A problem of a draw, with its ground truth (plan indexes until the traces are drawn)."""

    number: int
    outcome: str  # one of OUTCOMES
    family: str  # one of OUTCOME_FAMILIES
    key: Key
    also: set[Key]  # outcomes the effect brings with it
    uses: set[str]  # what of a trace it changes: two problems never change the same thing in one trace
    segment: Segment
    effect: float
    eligible: Callable[[Plan], bool]
    apply: Callable[[Plan], None]
    details: str
    target: Kind | None = None
    fired: list[int] = field(default_factory=list)
    eligible_share: float = 0.0
    power: float = 0.0

    def shows(self) -> set[Key]:
        return {self.key, *self.also}


def _span_targets(agent: Agent, outcome: str) -> list[Kind]:
    """Span kinds common enough to carry a problem (called in half the traces or more)."""
    kinds = [k for k in agent.all_kinds() if (k if k.top else _parent(agent, k)).prob >= 0.5]
    if outcome == "repeated_tool_call":
        return [k for k in kinds if k.span_type == "TOOL" and k.top and k.inner is None]
    if outcome == "span_degenerate_output":
        return [k for k in kinds if not k.is_llm]
    return kinds


def _parent(agent: Agent, kind: Kind) -> Kind:
    return next(k for k in agent.kinds if k.inner is kind)


def _draw_outcome(
    rng: random.Random, agent: Agent, outcome: str, number: int, segment: Segment, effect: float, may_end_early: bool
) -> Planted | None:
    message = f"{rng.choice(agent.errors)}: {' '.join(rng.sample(agent.vocabulary, 3))}"

    def planted(
        key: Key,
        also: set[Key],
        uses: set[str],
        eligible: Callable[[Plan], bool],
        apply: Callable[[Plan], None],
        details: str,
        family: str = outcome,
    ) -> Planted:
        return Planted(number, outcome, family, key, also, uses, segment, effect, eligible, apply, details)

    if outcome == "trace_failed":

        def fail(p: Plan) -> None:
            p.error, p.response = message, None

        return planted(
            ("trace_failed",), set(), {"end"}, lambda p: p.error is None, fail, f"the trace fails ({message})"
        )
    if outcome == "empty_response":
        form = rng.choice(["empty_answer", "empty_text", "null"])
        empty: Any = {"empty_answer": {agent.answer_key: ""}, "empty_text": "", "null": None}[form]

        def blank(p: Plan) -> None:
            p.response = copy.deepcopy(empty)

        return planted(
            ("empty_response",),
            set(),
            {"end"},
            lambda p: p.error is None,
            blank,
            f"the final response is empty ({form.replace('_', ' ')})",
        )
    if outcome in {"assessment_negative", "assessment_error"}:
        return _judge_outcome(rng, agent, outcome, planted)
    if outcome == "trace_slow":
        kinds = _span_targets(agent, outcome)
        target = rng.choice(kinds) if kinds and rng.random() < 0.5 else None  # else: a wait before the work
        how = f"span '{target.name}' hangs" if target else "it waits before starting"
        made = planted(
            ("trace_slow",),
            {("span_slow", target.name)} if target else set(),
            {"duration", f"span:{target.name}"} if target else {"duration"},
            (lambda p: p.first(target) is not None) if target else (lambda p: True),
            lambda p: None,  # made slow once every other problem is in place (_make_slow)
            f"the trace is among the slowest {SLOW_SHARE:.0%} ({how})",
        )
        made.target = target
        return made
    return _span_outcome(rng, agent, outcome, planted, message, may_end_early)


def _span_outcome(
    rng: random.Random, agent: Agent, outcome: str, planted: Callable[..., Planted], message: str, may_end_early: bool
) -> Planted | None:
    kinds = _span_targets(agent, outcome)
    if not kinds:
        return None
    kind = rng.choice(kinds)

    def has(p: Plan) -> bool:
        return p.first(kind) is not None

    def first(p: Plan) -> Call:
        call = p.first(kind)
        assert call is not None
        return call

    uses = {f"span:{kind.name}"}
    if outcome == "span_failed":
        ends = kind.top and may_end_early and rng.random() < 0.5
        parent = None if kind.top else _parent(agent, kind)

        def fail_span(p: Plan) -> None:
            call = first(p)
            call.error, call.outputs = message, None
            if parent is not None:
                outer = next(c for c in p.calls if any(x is call for x in c.inner))
                outer.error, outer.outputs = message, None
            if ends:
                p.calls = p.calls[: p.calls.index(call) + 1]
                p.error, p.response = message, None

        also: set[Key] = {("trace_failed",)} if ends else set()
        if parent is not None:
            also.add(("span_failed", parent.name))
            uses.add(f"span:{parent.name}")
        if ends:  # the calls after it never happen: nothing else may be planted on them
            uses |= {"end", *(f"span:{k.name}" for k in agent.all_kinds())}
        how = "and the trace fails" if ends else "and the agent carries on"
        return planted(
            ("span_failed", kind.name),
            also,
            uses,
            lambda p: has(p) and p.error is None,
            fail_span,
            f"span '{kind.name}' fails ({message}) {how}",
        )
    if outcome == "span_degenerate_output":
        form = rng.choice(_DEGENERATE[kind.output])

        def degenerate(p: Plan) -> None:
            first(p).outputs = _degenerate(rng, kind, form)

        return planted(
            ("span_degenerate_output", kind.name),
            set(),
            uses,
            has,
            degenerate,
            f"span '{kind.name}' returns {form.replace('_', ' ')}",
        )
    if outcome == "span_slow":
        factor = rng.uniform(4, 10)

        def slow(p: Plan) -> None:
            first(p).ms += kind.median_ms * factor

        return planted(
            ("span_slow", kind.name),
            {("trace_slow",)},
            uses | {"duration"},
            has,
            slow,
            f"span '{kind.name}' takes about {factor + 1:.0f}x its usual time",
        )
    if outcome == "repeated_tool_call":

        def repeat(p: Plan) -> None:
            call = first(p)
            again = Call(kind, copy.deepcopy(call.inputs), copy.deepcopy(call.outputs), _lognormal(rng, kind))
            p.calls.insert(p.calls.index(call) + 1, again)

        return planted(
            ("repeated_tool_call", kind.name),
            set(),
            uses,
            has,
            repeat,
            f"tool '{kind.name}' is called again with the same input",
        )
    raise ValueError(outcome)


def _judge_outcome(rng: random.Random, agent: Agent, outcome: str, planted: Callable[..., Planted]) -> Planted | None:
    judges = [j for j in agent.judges if outcome == "assessment_negative" or j.source_type != "HUMAN"]
    if not judges:
        return None
    judge = rng.choice(judges)
    if outcome == "assessment_negative":

        def bad(p: Plan) -> None:
            p.bad.add(judge.name)
            verdict = p.verdicts[judge.name]
            if verdict.observed and verdict.error is None:
                verdict.value = judge.value(rng, negative=True)

        return planted(
            ("assessment_negative", judge.name),
            set(),
            {f"judge:{judge.name}"},
            lambda p: p.error is None,
            bad,
            f"answers are bad; '{judge.name}' ({judge.source_type}, on {judge.coverage:.0%} of "
            "traces) rates them negative where it runs",
            family=judge.family,
        )
    reason = f"{judge.name} failed: {' '.join(rng.sample(agent.vocabulary, 2))}"

    def broken(p: Plan) -> None:
        verdict = p.verdicts[judge.name]
        verdict.error, verdict.value = reason, None

    return planted(
        ("assessment_error", judge.name),
        set(),
        {f"judge:{judge.name}"},
        lambda p: p.verdicts[judge.name].observed,
        broken,
        f"'{judge.name}' ({judge.source_type}) errors ({reason})",
    )


def _plant(rng: random.Random, agent: Agent, plans: list[Plan], count: int) -> list[Planted]:
    n = len(plans)
    chosen: list[Planted] = []
    for _ in range(ATTEMPTS):
        if len(chosen) == count:
            break
        segment = _segment(rng, agent, plans, rng.choice(CAUSES))
        if segment is None or not MIN_SEGMENT <= len(segment.members) <= n // 2:
            continue
        counts_tools = segment.by_tool_calls or any(c.segment.by_tool_calls for c in chosen)
        outcome = rng.choices(OUTCOMES, weights=[2 if o == "assessment_negative" else 1 for o in OUTCOMES])[0]
        problem = _draw_outcome(rng, agent, outcome, len(chosen) + 1, segment, 0.0, may_end_early=not counts_tools)
        if problem is None or _collides(problem, chosen):
            continue
        eligible = [i for i in sorted(segment.members) if problem.eligible(plans[i])]
        problem.eligible_share = len(eligible) / len(segment.members)
        problem.effect = _effect(rng, agent, plans, problem)
        if problem.outcome == "trace_slow":  # all of it must fit in the slowest 5%
            problem.effect = min(problem.effect, SLOW_PLANTED * n / max(len(eligible), 1))
        if len(eligible) * problem.effect < MIN_EXPECTED_FIRED:
            continue
        problem.fired = [i for i in eligible if rng.random() < problem.effect]
        if problem.outcome == "trace_slow":
            problem.fired = problem.fired[: int(SLOW_PLANTED * n)]
        if not problem.fired:
            continue
        for i in problem.fired:
            problem.apply(plans[i])
        chosen.append(problem)
    for problem in chosen:
        if problem.outcome == "trace_slow":
            _make_slow(plans, problem, rng)
    _settle_span_slow(agent, plans, chosen)
    for problem in chosen:
        shown = observe(agent, plans, problem.key)
        missing = [i for i in problem.fired if shown[i] is False]
        assert not missing, f"{problem.outcome}: the effect does not show in traces {missing[:5]}"
        problem.power = _power(agent, plans, problem, chosen)
    return chosen


def _effect(rng: random.Random, agent: Agent, plans: list[Plan], problem: Planted) -> float:
    """Half the effects are obvious, half lie around the edge of detectability: the effect at which
    the power, at this segment's size and this outcome's base rate, is 0.5."""
    shown = observe(agent, plans, problem.key)
    inside = problem.segment.members
    rest = [v for i, v in enumerate(shown) if i not in inside and v is not None]
    measured = sum(1 for i in inside if shown[i] is not None)
    if not rest or not measured:
        return 0.0
    p0 = 0.01 if problem.outcome == "trace_slow" else sum(1 for v in rest if v) / len(rest)

    def power(effect: float) -> float:
        return exact_test_power(measured, raised(p0, effect * problem.eligible_share), len(rest), p0, EDGE_ALPHA)

    low, high = 0.0, 1.0
    if power(high) < 0.5:
        edge = high
    else:
        for _ in range(20):
            low, high = (low, (low + high) / 2) if power((low + high) / 2) >= 0.5 else ((low + high) / 2, high)
        edge = high
    if rng.random() < 0.5:
        return rng.uniform(min(max(2 * edge, 0.5), 0.95), 0.95)
    return min(rng.uniform(0.5 * edge, 2 * edge), 0.95)


def _collides(problem: Planted, chosen: list[Planted]) -> bool:
    """Two problems collide when their segments share traces and they change, or show as, the same thing."""
    for other in chosen:
        if not problem.segment.members & other.segment.members:
            continue
        if problem.shows() & other.shows() or problem.uses & other.uses:
            return True
    return problem.outcome == "trace_slow" and any(o.outcome == "trace_slow" for o in chosen)


def _make_slow(plans: list[Plan], problem: Planted, rng: random.Random) -> None:
    """Make the fired traces slower than every other trace, so all of them are among the slowest."""
    fired = set(problem.fired)
    ceiling = max(p.duration_ms() for p in plans if p.index not in fired)
    for index in problem.fired:
        plan = plans[index]
        extra = ceiling * rng.uniform(1.2, 2.0) - plan.duration_ms()
        call = plan.first(problem.target) if problem.target else None
        if call is None:
            plan.wait_ms += max(extra, 0)
        else:
            call.ms += max(extra, SPAN_SLOW * 1.5 * call.total_ms())


def _settle_span_slow(agent: Agent, plans: list[Plan], chosen: list[Planted]) -> None:
    """A slow span must stay over 3x the median even after the slow calls raised the median."""
    for problem in chosen:
        kinds = [problem.target] if problem.outcome == "trace_slow" and problem.target else []
        if problem.outcome == "span_slow":
            kinds = [_kind(agent, problem.key[1])]
        for kind in kinds:
            typical = _median([c.total_ms() for p in plans for c in p.all_calls() if c.kind is kind])
            for i in problem.fired:
                call = plans[i].first(kind)
                assert call is not None
                if call.total_ms() <= SPAN_SLOW * typical * 1.2:
                    call.ms += SPAN_SLOW * typical * 1.3 - call.total_ms()


def _power(agent: Agent, plans: list[Plan], problem: Planted, chosen: list[Planted]) -> float:
    """Power at this draw's segment size, base rate and effect as they came out (see power.py): the
    outcome's rate where it is measured in the segment against its rate elsewhere (traces in the segment of
    another problem with the same outcome left out)."""
    shown = observe(agent, plans, problem.key)
    inside = problem.segment.members
    shared: set[int] = set()
    for other in chosen:
        if other is not problem and problem.key in other.shows():
            shared |= other.segment.members
    rest = [v for i, v in enumerate(shown) if i not in inside and i not in shared and v is not None]
    measured = [shown[i] for i in inside if shown[i] is not None]
    if not rest or not measured:
        return 0.0
    p0 = sum(1 for v in rest if v) / len(rest)
    p1 = sum(1 for v in measured if v) / len(measured)
    return exact_test_power(len(measured), p1, len(rest), p0)


# -- the draw ---------------------------------------------------------------------------------------------


@dataclass
class PlantedProblem:
    kind: str
    outcome_family: str
    cause_family: str
    description: str
    effect: float
    segment_size: int
    power: float
    outcome_sql: str
    segment_sql: str
    affected_trace_ids: list[str]
    # traces where nobody could see the outcome (no assessment was made): scored on neither side
    unobserved_trace_ids: list[str] = field(default_factory=list)


@dataclass
class Draw:
    seed: int
    control: bool
    summary: str
    traces: list[dict[str, Any]]
    problems: list[PlantedProblem]
    decoys: list[str]

    def trace_ids(self) -> list[str]:
        return [t["info"]["trace_id"] for t in self.traces]

    def failed_ids(self) -> list[str]:
        return [t["info"]["trace_id"] for t in self.traces if _root(t)["status"]["code"] == "STATUS_CODE_ERROR"]

    def expected(self) -> dict[str, Any]:
        """The ground truth in the `expected.yaml` format (with the optional problem fields)."""
        return {
            "traces": len(self.traces),
            "errors": len(self.failed_ids()),
            "problems": [
                {
                    "kind": p.kind,
                    "strength": False,
                    "outcome_family": p.outcome_family,
                    "cause_family": p.cause_family,
                    "power": p.power,
                    "description": p.description,
                    "affected_trace_ids": sorted(p.affected_trace_ids),
                    "unobserved_trace_ids": sorted(p.unobserved_trace_ids),
                }
                for p in self.problems
            ],
        }


def _root(trace: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in trace["data"]["spans"] if s["parent_span_id"] is None)


def draw(seed: int, traces: int = DEFAULT_TRACES, control: bool = False, experiment_id: str = "draw") -> Draw:
    """A random agent's traffic with planted problems (none in a control) and their ground truth."""
    rng = random.Random(f"random-agent:{seed}:{control}")
    namer = names.Namer(rng, avoid=_committed_names())
    agent = _make_agent(rng, namer, control)
    plans = [_plan(rng, agent, i, traces) for i in range(traces)]
    problems = [] if control else _plant(rng, agent, plans, rng.randint(1, 3))
    decoys = [f"metadata '{agent.id_key}' holds a new id per trace"]
    if control:
        decoys += [
            f"tag '{list(agent.tags)[-1]}' is skewed and correlated with nothing",
            "heavy-tailed latency in " + ", ".join(repr(k.name) for k in agent.all_kinds() if k.sigma > 1),
        ]
    ids = random.Random(f"{experiment_id}:random-agent:{seed}:{control}")
    clock = random.Random(f"clock:{seed}:{control}")
    drawn = [_render(clock, ids, agent, plan, experiment_id) for plan in plans]
    trace_ids = [t["info"]["trace_id"] for t in drawn]
    _check_slowest(drawn, problems, trace_ids)
    return Draw(
        seed=seed,
        control=control,
        summary=agent.summary(),
        traces=drawn,
        decoys=decoys,
        problems=[
            PlantedProblem(
                kind=f"p{p.number}-{p.outcome}-{p.segment.family}",
                outcome_family=p.family,
                cause_family=p.segment.family,
                effect=round(p.effect, 3),
                segment_size=len(p.segment.members),
                power=round(p.power, 3),
                outcome_sql=outcome_sql(agent, p.key, plans),
                segment_sql=f"SELECT trace_id FROM traces WHERE {p.segment.sql}",
                description=f"{p.details} in {p.effect:.0%} of the traces with {p.segment.words} "
                f"({len(p.segment.members)} traces, {len(p.fired)} affected; power {p.power:.2f})",
                affected_trace_ids=sorted(trace_ids[i] for i in p.fired),
                unobserved_trace_ids=[
                    trace_ids[i] for i, seen in enumerate(observe(agent, plans, p.key)) if seen is None
                ],
            )
            for p in problems
        ],
    )


# -- drawing the traces -----------------------------------------------------------------------------------


def _render(rng: random.Random, ids: random.Random, agent: Agent, plan: Plan, experiment_id: str) -> dict[str, Any]:
    trace = TraceDraft(rng, ids, agent.name, plan.begin_ns, plan.request)
    trace.tags.update(plan.tags)
    trace.metadata.update(plan.metadata)
    trace.clock += int(plan.wait_ms * MS)
    for call in plan.calls:
        _render_call(trace, call, None)
    trace.finish(plan.response, error=plan.error)
    for judge in agent.judges:
        verdict = plan.verdicts[judge.name]
        if verdict.observed:
            rationale = (
                None if verdict.error else ("not helpful" if json.dumps(verdict.value) in judge.negatives() else "fine")
            )
            trace.assessments.append(
                AssessmentDraft(
                    judge.name,
                    verdict.value,
                    judge.source_type,
                    judge.source_id,
                    rationale=rationale,
                    error=verdict.error,
                )
            )
    return trace.to_dict(experiment_id)


def _render_call(trace: TraceDraft, call: Call, parent: SpanDraft | None) -> None:
    kind = call.kind
    attributes: dict[str, Any] = {}
    if call.model:
        text = json.dumps(call.outputs or "")
        attributes = {
            "mlflow.llm.model": call.model,
            "mlflow.chat.tokenUsage": {
                "input_tokens": 200 + len(json.dumps(call.inputs)) // 4,
                "output_tokens": 5 + len(text) // 4,
                "total_tokens": 205 + (len(json.dumps(call.inputs)) + len(text)) // 4,
            },
        }
    exception = call.error if call.error and ": " in call.error else None
    if not call.inner:
        trace.child(
            kind.name,
            kind.span_type,
            call.ms,
            call.inputs,
            call.outputs,
            error=call.error,
            exception=exception,
            attributes=attributes,
            parent=parent,
        )
        return
    span = trace.open(kind.name, kind.span_type, call.inputs, attributes=attributes, parent=parent)
    for inner in call.inner:
        _render_call(trace, inner, span)
    trace.clock += int(call.ms * MS)
    trace.close(span, call.outputs, error=call.error, exception=exception)


def _check_slowest(drawn: list[dict[str, Any]], problems: list[Planted], trace_ids: list[str]) -> None:
    durations = [_root(t)["end_time_unix_nano"] - _root(t)["start_time_unix_nano"] for t in drawn]
    top = max(int(len(drawn) * SLOW_SHARE), 1)
    cut = sorted(durations, reverse=True)[top - 1]
    for problem in problems:
        if problem.outcome == "trace_slow":
            late = [trace_ids[i] for i in problem.fired if durations[i] < cut]
            assert not late, f"planted slow traces outside the slowest {SLOW_SHARE:.0%}: {late[:3]}"


def _committed_names() -> frozenset[str]:
    """Names in the committed scenarios: no draw may reuse one."""
    from analyze_experiment.agent.simulation import apps

    words = {
        "support_assistant",
        "travel_agent",
        "data_assistant",
        "retrieve_docs",
        "rerank",
        "lookup_order",
        "chat_model",
        "cancel_booking",
        "search_flights",
        "book_partner_api",
        "book_flight",
        "pay",
        "run_sql",
        "app_version",
        "environment",
        "user_thumbs",
        "answer_correct",
        "production",
        "staging",
        apps.MODEL,
    }
    return frozenset(words)


def log_draw(
    client: MlflowClient,
    experiment_id: str,
    seed: int,
    traces: int = DEFAULT_TRACES,
    control: bool = False,
    on_traces: Callable[[int], None] | None = None,
) -> Draw:
    """Draw and write; the ground truth follows any ids the store minted."""
    from analyze_experiment.agent.simulation.writer import write_traces

    made = draw(seed, traces, control, experiment_id)
    written = write_traces(client, experiment_id, made.traces, on_traces)
    renamed = dict(zip(made.trace_ids(), written, strict=True))
    if any(old != new for old, new in renamed.items()):
        for trace in made.traces:
            trace["info"]["trace_id"] = renamed[trace["info"]["trace_id"]]
        for problem in made.problems:
            problem.affected_trace_ids = sorted(renamed[t] for t in problem.affected_trace_ids)
            problem.unobserved_trace_ids = [renamed[t] for t in problem.unobserved_trace_ids]
    return made


def families(problems: Iterable[PlantedProblem]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in problems:
        counts[p.outcome_family] = counts.get(p.outcome_family, 0) + 1
    return counts
