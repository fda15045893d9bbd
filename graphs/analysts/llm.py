"""The LLM analyst: ChatOpenAI against any OpenAI-compatible endpoint, with the same tools and rules.

Structured answers use function calling (endpoints that ignore `response_format` still work) and are
re-asked with the validation error when they do not parse. Transient API failures are retried here
with tenacity and nowhere else (the client's own retries are off). Token use and cost are recorded
per phase on the analysis run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, Field, ValidationError, field_validator

from analyze_experiment.agent.core.errors import AnalystError, ContextOverflow
from analyze_experiment.agent.core.insights.models import Analysis, Category, Census, Hypothesis, Severity
from analyze_experiment.agent.core.report import ReportFacts
from analyze_experiment.agent.core.settings import Settings
from analyze_experiment.agent.core.traces.views import TraceView
from analyze_experiment.graphs.analysts.base import HypothesisDraft, IssueDraft, ProposedHypothesis, Verdict
from analyze_experiment.graphs.analysts.candidates import candidates
from analyze_experiment.graphs.analysts.offline import contrast_sql
from analyze_experiment.prompts import render
from analyze_experiment.tools.catalog import Conclusion, TestSession, test_tools
from analyze_experiment.tools.protocols import AnalysisTools

S = TypeVar("S", bound=BaseModel)
T = TypeVar("T")
STRUCTURED_ATTEMPTS = 3
RETRY_ATTEMPTS = 4
MAX_RETRY_AFTER_S = 30.0
# USD per million tokens (input, output); unknown models record tokens without a cost.
ENTRY_POINTS_SQL = """
SELECT tags['mlflow.traceName'] AS name, count(*) AS traces, count_if(state = 'ERROR') AS errors
FROM traces
GROUP BY 1
ORDER BY traces DESC
LIMIT 5
"""
PRICES = {"gpt-4o-mini": (0.15, 0.60), "gpt-4o": (2.50, 10.0), "gpt-4.1": (2.0, 8.0), "gpt-4.1-mini": (0.40, 1.60)}


def chat_model(model: str, settings: Settings, http_client: Any = None) -> BaseChatModel:
    """`http_client` lets evals record or replay the exchange (see `analyze_experiment.agent.core.llm_replay`)."""
    from langchain_openai import ChatOpenAI

    key, base = settings.openai_api_key, settings.openai_base_url
    if not key and not base and settings.is_databricks and settings.databricks_host and settings.databricks_token:
        key, base = settings.databricks_token, f"{settings.databricks_host.rstrip('/')}/serving-endpoints"
    if http_client is not None and not key and not base:
        base = "http://replay.invalid/v1"  # a replay answers every request itself
    if not key and not base:
        from analyze_experiment.agent.core.errors import ConfigurationError

        raise ConfigurationError(f"--model {model} needs OPENAI_API_KEY or OPENAI_BASE_URL; or use --model offline")
    from pydantic import SecretStr

    api_key = key if isinstance(key, SecretStr) else SecretStr(key or "not-needed")
    return ChatOpenAI(
        model=model,
        api_key=api_key,
        base_url=base,
        max_retries=0,
        timeout=settings.llm_timeout_s,
        temperature=0,
        use_responses_api=False,
        http_client=http_client,
    )


def with_retries(call: Callable[[], T], attempts: int = RETRY_ATTEMPTS) -> T:
    """Retry what a later attempt can fix (429, 5xx, timeouts, dropped connections), waiting as long
    as a 429's Retry-After asks (capped); then, or for anything else, fail with a plain `AnalystError`."""
    import openai
    from tenacity import retry, retry_if_exception_type, stop_after_attempt

    transient = (openai.RateLimitError, openai.APIConnectionError, openai.APITimeoutError, openai.InternalServerError)
    retrying = retry(
        retry=retry_if_exception_type(transient), stop=stop_after_attempt(attempts), wait=_retry_wait, reraise=True
    )
    try:
        return retrying(call)()
    except openai.APIError as error:
        raise _plain(error, attempts) from error


def _retry_wait(state: Any) -> float:
    from tenacity import wait_exponential

    error = state.outcome.exception() if state.outcome else None
    response = getattr(error, "response", None)
    asked = response.headers.get("retry-after") if response is not None else None
    if asked:
        try:
            return min(float(asked), MAX_RETRY_AFTER_S)
        except ValueError:
            pass  # an HTTP date: fall back to our own backoff
    return float(wait_exponential(multiplier=0.2, max=8)(state))


def _plain(error: Exception, attempts: int) -> AnalystError:
    import openai

    status = getattr(error, "status_code", None)
    code = str(getattr(error, "code", "") or "")
    if isinstance(error, openai.BadRequestError) and ("context_length" in code or "context length" in str(error)):
        return ContextOverflow(
            "the prompt is longer than the model's context window (HTTP 400 "
            "context_length_exceeded); use a model with a larger context, or --model offline"
        )
    if isinstance(error, openai.RateLimitError):
        return AnalystError(f"the model endpoint kept answering 429 (rate limited) for {attempts} attempts")
    if isinstance(error, openai.APITimeoutError):
        return AnalystError(
            f"the model endpoint did not answer in time for {attempts} attempts "
            "(raise ANALYZE_EXPERIMENT_LLM_TIMEOUT if it is just slow)"
        )
    if isinstance(error, openai.APIConnectionError):
        return AnalystError(f"the connection to the model endpoint failed {attempts} times ({_first_line(error)})")
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return AnalystError(f"the model endpoint refused the credentials (HTTP {status}); check OPENAI_API_KEY")
    if isinstance(error, openai.InternalServerError):
        return AnalystError(f"the model endpoint kept failing with HTTP {status} for {attempts} attempts")
    return AnalystError(f"the model endpoint answered HTTP {status}: {_first_line(error)}")


class Description(BaseModel):
    description: str = Field(min_length=20, max_length=5000)


class Hypotheses(BaseModel):
    hypotheses: list[ProposedHypothesis]


class IssueAnswer(BaseModel):
    title: str
    description: str = Field(min_length=1, max_length=10000)
    severity: Severity
    evidence_trace_ids: list[str] = Field(min_length=1)

    @field_validator("title")
    @classmethod
    def _five_to_eight_words(cls, value: str) -> str:
        if not 5 <= len(value.split()) <= 8:
            raise ValueError("the title must have 5 to 8 words")
        return value


class Recommendations(BaseModel):
    items: list[str]


class LlmAnalyst:
    def __init__(self, model: BaseChatModel, *, model_name: str, callbacks: Sequence[BaseCallbackHandler] = ()) -> None:
        self._model = model
        self.name = f"llm:{model_name}"
        self._model_name = model_name
        self._config: dict[str, Any] = {"callbacks": list(callbacks)} if callbacks else {}

    # -- the phases -------------------------------------------------------------------------------

    def describe(self, tools: AnalysisTools, samples: list[TraceView]) -> str:
        stats = tools.execute_sql(ENTRY_POINTS_SQL, record=False)
        prompt = render(
            "describe", stats=_table(stats.columns, stats.rows), samples="\n\n".join(_sample(s) for s in samples)
        )
        return self._ask("describe", prompt, Description, tools).description

    def hypothesize(
        self, tools: AnalysisTools, census: Census, analysis: Analysis, limit: int
    ) -> list[HypothesisDraft]:
        """The model sees the discovery engine's ranked candidates with their numbers and may accept,
        refine or add to them; an accepted candidate (same SQL) keeps the engine's test figures, which
        the model itself can never supply."""
        from analyze_experiment.agent.core.traces.sql import parse

        found = candidates(tools, census, analysis, limit)
        sections = {k: v for k, v in census.sections.items() if k != "discovery"}
        prompt = render(
            "hypothesize",
            limit=str(limit),
            description=analysis.description,
            focus="; ".join(analysis.focus) or "none",
            census=json.dumps(
                {
                    "trace_count": census.trace_count,
                    "error_rate": census.error_rate,
                    "latency_ms": census.latency_ms,
                    **sections,
                },
                default=str,
            )[:12000],
            candidates="\n".join(_candidate(i, c) for i, c in enumerate(found, 1)) or "none",
        )
        proposed = self._ask("hypothesize", prompt, Hypotheses, tools).hypotheses[:limit]
        by_sql = {c.sql: c.statistics for c in found if c.sql}
        drafts = [HypothesisDraft(**p.model_dump(), statistics=by_sql.get(p.sql or "")) for p in proposed]
        for draft in drafts:
            if draft.sql:
                try:
                    parse(draft.sql)
                except Exception:  # noqa: BLE001 - any refusal means the query is not usable as written
                    draft.testing_plan += f"\n(The proposed SQL was refused by the SQL guard: {draft.sql})"
                    draft.sql = None
        return drafts

    def test(self, tools: AnalysisTools, hypothesis: Hypothesis) -> Verdict:
        budget = tools.budget
        session = TestSession(tools)
        catalog = {tool.name: tool for tool in test_tools(session)}
        bound = self._model.bind_tools(list(catalog.values()))
        calls = budget.tool_calls if budget else 16
        messages: list[BaseMessage] = [
            SystemMessage(render("system")),
            HumanMessage(
                render(
                    "test",
                    hypothesis_id=hypothesis.id,
                    statement=hypothesis.statement,
                    rationale=hypothesis.rationale,
                    plan=hypothesis.testing_plan,
                    sql=hypothesis.selection.query if hypothesis.selection else "none",
                    tool_calls=str(calls),
                )
            ),
        ]
        for _turn in range(calls + 4):
            try:
                reply = with_retries(partial(bound.invoke, messages, config=self._config))  # type: ignore[arg-type]
            except ContextOverflow as overflow:
                # what was found so far is kept; the hypothesis stays TESTING for a person or a bigger model
                return _verdict(session.stop(None, str(overflow)))
            self._account(tools, "test", reply)
            messages.append(reply)
            if budget and budget.tokens_left == 0:
                return _verdict(session.stop(None, f"token budget spent ({budget.summary()})"))
            if not reply.tool_calls:
                messages += _answer_unusable(reply)
                continue
            for call in reply.tool_calls:
                messages.append(ToolMessage(content=session.run(catalog, call), tool_call_id=call["id"] or "call"))
                if session.concluded is not None:
                    return _verdict(session.concluded)
                if session.spent:
                    return _verdict(
                        session.stop(None, f"tool-call budget spent ({budget.summary() if budget else ''})")
                    )
        return _verdict(session.stop(None, "no conclusion within the turn limit"))

    def draft_issue(self, tools: AnalysisTools, hypothesis: Hypothesis) -> IssueDraft | None:
        if hypothesis.category is Category.STRENGTH:
            return None
        supporting = {e.trace_id: e for e in hypothesis.evidence if e.supports}
        if not supporting:
            return None
        numbers = "not measured (no SQL)"
        if hypothesis.selection:
            result = tools.execute_sql(contrast_sql(hypothesis.selection.query), record=False)
            numbers = _table(result.columns, result.rows)
        prompt = render(
            "issue",
            hypothesis_id=hypothesis.id,
            statement=hypothesis.statement,
            numbers=numbers,
            evidence="\n".join(f"- {e.trace_id}: {e.rationale}" for e in supporting.values()),
        )
        answer = self._ask("issue", prompt, IssueAnswer, tools)
        cited = [supporting[t] for t in answer.evidence_trace_ids if t in supporting] or list(supporting.values())
        return IssueDraft(
            title=answer.title,
            description=answer.description,
            severity=answer.severity,
            evidence=cited,
            category=hypothesis.category,
        )

    def recommend(self, facts: ReportFacts) -> list[str]:
        if not facts.reported_issues:
            return []
        issues = "\n".join(
            f"- {i.id} ({i.severity.value}): {i.title}. {i.description[:600]}" for i in facts.reported_issues
        )
        return self._ask("report", render("report", issues=issues), Recommendations, None).items

    # -- plumbing ---------------------------------------------------------------------------------

    def _ask(self, phase: str, prompt: str, schema: type[S], tools: AnalysisTools | None) -> S:
        runnable = self._model.with_structured_output(schema, method="function_calling", include_raw=True)
        messages: list[BaseMessage] = [SystemMessage(render("system")), HumanMessage(prompt)]
        problem = ""
        for _attempt in range(STRUCTURED_ATTEMPTS):
            out = _as_dict(with_retries(partial(runnable.invoke, list(messages), config=self._config)))  # type: ignore[arg-type]
            raw = out.get("raw")
            if tools is not None and isinstance(raw, AIMessage):
                self._account(tools, phase, raw)
            parsed = out.get("parsed")
            if isinstance(parsed, schema):
                return parsed
            problem = _first_line(out.get("parsing_error")) or "no structured answer"
            messages += [
                raw if isinstance(raw, AIMessage) else AIMessage(""),
                HumanMessage(
                    f"That answer was not valid: {problem}. Answer again by calling {schema.__name__} with valid arguments."
                ),
            ]
        raise AnalystError(f"the model gave no valid {schema.__name__} in {STRUCTURED_ATTEMPTS} attempts ({problem})")

    def _account(self, tools: AnalysisTools, phase: str, message: AIMessage) -> None:
        usage: dict[str, Any] = dict(message.usage_metadata or {})
        inputs, outputs = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
        if tools.budget is not None:
            tools.budget.spend_tokens(inputs + outputs)
        metrics = {"input_tokens": float(inputs), "output_tokens": float(outputs), "calls": 1.0}
        price = PRICES.get(self._model_name)
        if price:
            metrics["cost_usd"] = (inputs * price[0] + outputs * price[1]) / 1_000_000
        tools.record_usage(phase, metrics)


def _answer_unusable(reply: AIMessage) -> list[BaseMessage]:
    """A reply with no usable tool call: say what was wrong with it (broken JSON, cut off) so the
    next attempt can do better."""
    answers: list[BaseMessage] = [
        ToolMessage(
            content=f"error: the arguments were not valid JSON ({_first_line(call.get('error'))}); "
            "call the tool again with a JSON object",
            tool_call_id=call.get("id") or "call",
        )
        for call in reply.invalid_tool_calls
    ]
    if reply.response_metadata.get("finish_reason") == "length":
        answers.append(HumanMessage("Your reply was cut off at the output limit; keep it shorter."))
    answers.append(HumanMessage("Use the tools, then call `conclude`."))
    return answers


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"parsed": value, "raw": None, "parsing_error": None}


def _verdict(conclusion: Conclusion) -> Verdict:
    return Verdict(status=conclusion.status, evidence=conclusion.evidence, reason=conclusion.reason)


def _first_line(error: Any) -> str:
    if error is None:
        return ""
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:3])
    return str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__


def _table(columns: list[str], rows: list[list[Any]]) -> str:
    return "\n".join([" | ".join(columns), *(" | ".join(str(v) for v in row) for row in rows[:50])])


def _candidate(number: int, draft: HypothesisDraft) -> str:
    return (
        f"C{number} [{draft.category.value if draft.category else 'unknown'}] {draft.statement}\n"
        f"   rationale: {draft.rationale}\n   sql: {draft.sql}"
    )


def _sample(trace: TraceView) -> str:
    spans = ", ".join(f"{s.name}({s.span_type or '?'}:{s.status})" for s in trace.spans[:12])
    return (
        f"trace {trace.trace_id} [{trace.state}, {trace.execution_duration_ms} ms]\nrequest: {(trace.request or '')[:400]}\n"
        f"response: {(trace.response or '')[:400]}\nspans: {spans}"
    )
