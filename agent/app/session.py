"""The facade both front ends call (the CLI and the Slack hook): start, resume, inspect, list threads.

A thread is one analysis run by the agent. Its graph state is checkpointed in SQLite under the home
directory after every step, so a thread paused at an approval, stopped with Ctrl-C or killed can be
resumed by a later process; everything else it knows lives in MLflow.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from analyze_experiment.agent.core.approvals import ApprovalDecision, ApprovalRequest
from analyze_experiment.agent.core.errors import (
    AnalysisPaused,
    AnalystError,
    ConfigurationError,
    DecisionRefused,
    NotFoundError,
    StoreUnavailableError,
    UserError,
)
from analyze_experiment.agent.core.locks import thread_lock
from analyze_experiment.agent.core.services import Services
from analyze_experiment.graphs.limits import MAX_HYPOTHESES_RANGE, Limits

if TYPE_CHECKING:
    from analyze_experiment.graphs.analysts.base import Analyst
    from analyze_experiment.tools.protocols import PersonDecisions

RECURSION_LIMIT = 200
DECISION_EXAMPLE = '{"reject": {"H2": "not our concern"}, "focus": ["refunds"]}'
DEFAULT_MODEL = "gpt-4o-mini"
EventHandler = Callable[[dict[str, Any]], None]


class RunOptions(BaseModel):
    experiment_id: str
    model: str | None = None
    focus: list[str] = Field(default_factory=list)
    outcomes: dict[str, str] = Field(default_factory=dict, description="Outcomes of your own: name -> SQL boolean.")
    report_path: str | None = None
    max_hypotheses: int = Field(default=Limits.max_hypotheses, ge=MAX_HYPOTHESES_RANGE[0], le=MAX_HYPOTHESES_RANGE[1])
    name: str | None = None


class Outcome(BaseModel):
    thread_id: str
    run_id: str | None = None
    experiment_id: str | None = None
    phase: str
    pending: ApprovalRequest | None = None
    report: str | None = None


class ThreadInfo(BaseModel):
    thread_id: str
    experiment_id: str | None
    run_id: str | None
    phase: str
    waiting_for: str | None
    report: str | None
    updated_at: str | None


class AnalysisSession:
    def __init__(
        self,
        services: Services,
        on_event: EventHandler | None = None,
        engine: str | None = None,
        llm_http_client: Any = None,
    ) -> None:
        self.services = services
        self._llm_http_client = llm_http_client
        self._on_event = on_event or (lambda _event: None)
        self._engine = engine
        self._compiled: Any = None
        self._workbench: Any = None
        self._report_path: str | None = None

    # -- the public verbs ----------------------------------------------------------------------------

    def start(self, options: RunOptions) -> Outcome:
        model = resolve_model(options.model, self.services)
        make_analyst(model, self.services, self._llm_http_client)  # refuse a bad model before anything is written
        self._preflight(options)
        thread_id = "ax-" + secrets.token_hex(4)
        first: dict[str, Any] = {
            "thread_id": thread_id,
            "experiment_id": options.experiment_id,
            "name": options.name or self._default_name(options.experiment_id, thread_id),
            "model": model,
            "max_hypotheses": options.max_hypotheses,
            "tracking_uri": self.services.settings.display_uri(),
            "focus": options.focus,
            "outcomes": options.outcomes,
            "tested": [],
        }
        if options.report_path:
            first["report_path"] = options.report_path
        with thread_lock(self.services.settings.home, thread_id):
            return self._drive(thread_id, first)

    def resume(
        self, thread_id: str, decision: ApprovalDecision | None = None, report_path: str | None = None
    ) -> Outcome:
        if report_path:
            check_report_path(report_path)
            self._report_path = report_path
        with thread_lock(self.services.settings.home, thread_id):
            return self._resume(thread_id, decision)

    def _default_name(self, experiment_id: str, thread_id: str) -> str:
        """What the report is titled: the experiment, the day and the thread, e.g. 'support-bot, 2026-11-28 (ax-…)'."""
        from datetime import UTC, datetime

        from analyze_experiment.agent.core.tracking import retry_transient

        experiment = retry_transient(self.services.client.get_experiment)(experiment_id).name
        return f"{experiment}, {datetime.now(UTC):%Y-%m-%d} ({thread_id})"

    def _preflight(self, options: RunOptions) -> None:
        """Refuse now what would fail mid-way, before a thread or an analysis run exists."""
        from analyze_experiment.agent.core.discovery import check_outcome
        from analyze_experiment.agent.core.traces.links import TraceLinks

        if any(not area.strip() for area in options.focus):
            raise UserError("a --focus area is blank; name what to look at, e.g. --focus 'refund answers'")
        if options.name is not None and not options.name.strip():
            raise UserError("--name is blank; give the analysis a name or leave --name out")
        if options.report_path:
            check_report_path(options.report_path)
        self.services.experiment_id(options.experiment_id)  # exists and is not deleted, whoever calls
        TraceLinks(self.services.client).require_linking_support()
        bench = self._bench()
        bench.require_traces(options.experiment_id)
        for name, sql in options.outcomes.items():
            check_outcome(bench.table(options.experiment_id), name, sql)

    def _resume(self, thread_id: str, decision: ApprovalDecision | None) -> Outcome:
        from langgraph.types import Command

        from analyze_experiment.graphs.factory import RESUME_AFTER

        snapshot = self._snapshot(thread_id)
        pending = _pending(snapshot)
        done = snapshot.values.get("report")
        if self._report_path and done:
            raise UserError(f"thread {thread_id} is complete; its report is at {done}; copy it from there")
        # a report path given on resume is kept in the thread, for this step and any later resume
        update = {"report_path": self._report_path} if self._report_path else None
        if pending is not None:
            if decision is None:
                return self._outcome(thread_id)
            self.check(pending, decision)
            return self._drive(thread_id, Command(resume=decision.model_dump(mode="json"), update=update))
        if decision is not None:
            raise UserError(
                f"thread {thread_id} is not waiting for an approval (it was answered already); "
                "see `analyze-experiment list`"
            )
        if snapshot.next:  # stopped mid-phase (Ctrl-C or a crash): carry on
            return self._drive(thread_id, Command(update=update) if update else None)
        phase = snapshot.values.get("phase", "")
        if not done and phase in RESUME_AFTER:
            # Stopped between steps with no next step recorded: carry on after the last finished phase.
            self._graph().update_state(self._config(thread_id), update, as_node=RESUME_AFTER[phase])
            return self._drive(thread_id, None)
        return self._outcome(thread_id)

    def check(self, request: ApprovalRequest, decision: ApprovalDecision) -> None:
        """Refuse (DecisionRefused) a decision that cannot answer `request`, before any of it is applied."""
        from analyze_experiment.agent.core.sql_runs import check_selection

        check_decision(request, decision)

        queries = [new.sql for new in decision.add_hypotheses] + [edit.sql for edit in decision.hypothesis_edits]
        for query in filter(None, queries):
            try:
                check_selection(self._bench().table(request.experiment_id), query)
            except UserError as refused:
                raise DecisionRefused(f"{refused.message} ({' '.join(query.split())[:120]})") from refused

    def forget(self, thread_id: str) -> ThreadInfo:
        """Drop a thread from this home; its analysis run, and all it recorded, stay in MLflow."""
        with thread_lock(self.services.settings.home, thread_id):
            self._snapshot(thread_id)  # refuses an unknown thread
            info = self._info(thread_id)
            self._graph().checkpointer.delete_thread(thread_id)
        return info

    def pending(self, thread_id: str) -> ApprovalRequest | None:
        return _pending(self._snapshot(thread_id))

    def threads(self) -> list[ThreadInfo]:
        path = self._db_path()
        if not path.exists():
            return []
        with sqlite3.connect(path) as con:
            try:
                ids = [row[0] for row in con.execute("SELECT DISTINCT thread_id FROM checkpoints")]
            except sqlite3.OperationalError:
                return []
        infos = [self._info(thread_id) for thread_id in ids]
        return sorted(infos, key=lambda t: t.updated_at or "", reverse=True)

    # -- internals ------------------------------------------------------------------------------------

    def _drive(self, thread_id: str, graph_input: Any) -> Outcome:
        from analyze_experiment.graphs.context import AnalysisContext

        graph = self._graph()
        config = self._config(thread_id)
        values = graph.get_state(config).values or (graph_input if isinstance(graph_input, dict) else {})
        limits = Limits(max_hypotheses=values.get("max_hypotheses", Limits.max_hypotheses))
        analyst = make_analyst(values["model"], self.services, self._llm_http_client)
        context = AnalysisContext(
            tool_source=self._bench(),
            analyst=analyst,
            limits=limits,
            reports_dir=self.services.settings.home / "reports",
            decisions_for=self._decisions,
        )
        config["max_concurrency"] = limits.parallel
        from analyze_experiment.agent.core.llm_tracing import flush_analyst_traces

        try:
            for mode, chunk in graph.stream(
                graph_input, config, context=context, stream_mode=["custom", "updates"], durability="sync"
            ):
                if mode == "custom":
                    self._on_event(chunk)
        except Exception as error:
            cause = outside_failure(error, self.services.settings.display_uri())
            if cause is None:
                raise
            raise AnalysisPaused(
                f"{cause}; the analysis is saved at its last finished step: carry on with "
                f"`analyze-experiment resume {thread_id}`"
            ) from error
        finally:
            flush_analyst_traces()
        return self._outcome(thread_id)

    def _outcome(self, thread_id: str) -> Outcome:
        snapshot = self._snapshot(thread_id)
        values = snapshot.values
        return Outcome(
            thread_id=thread_id,
            run_id=values.get("run_id"),
            experiment_id=values.get("experiment_id"),
            phase=values.get("phase", "setup"),
            pending=_pending(snapshot),
            report=values.get("report"),
        )

    def _info(self, thread_id: str) -> ThreadInfo:
        snapshot = self._graph().get_state(self._config(thread_id))
        values = snapshot.values or {}
        pending = _pending(snapshot)
        return ThreadInfo(
            thread_id=thread_id,
            experiment_id=values.get("experiment_id"),
            run_id=values.get("run_id"),
            phase=values.get("phase", "setup"),
            waiting_for=pending.stage if pending else None,
            report=values.get("report"),
            updated_at=snapshot.created_at,
        )

    def _snapshot(self, thread_id: str) -> Any:
        snapshot = self._graph().get_state(self._config(thread_id))
        if not snapshot.values:
            raise NotFoundError(f"no analysis thread {thread_id}; list them with `analyze-experiment list`")
        started_on = snapshot.values.get("tracking_uri")
        if started_on and started_on != self.services.settings.display_uri():
            raise ConfigurationError(
                f"thread {thread_id} analyses a store at {started_on}; resume it with --tracking-uri pointing there"
            )
        return snapshot

    def _graph(self) -> Any:
        if self._compiled is None:
            from langgraph.checkpoint.sqlite import SqliteSaver

            from analyze_experiment.graphs.factory import build_graph

            path = self._db_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            saver = SqliteSaver(sqlite3.connect(str(path), check_same_thread=False))
            self._compiled = build_graph(saver)
        return self._compiled

    def _decisions(self, run_id: str) -> PersonDecisions:
        from analyze_experiment.tools.decisions import DecisionWriter

        return DecisionWriter(self.services, run_id)

    def _bench(self) -> Any:
        if self._workbench is None:
            from analyze_experiment.tools.workbench import Workbench

            self._workbench = Workbench(self.services, engine=self._engine)
        return self._workbench

    def _db_path(self) -> Any:
        return self.services.settings.home / "threads.sqlite"

    @staticmethod
    def _config(thread_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": thread_id}, "recursion_limit": RECURSION_LIMIT}


def outside_failure(error: BaseException, store: str) -> str | None:
    """What failed, if it was the model endpoint or the tracking store rather than the analysis."""
    from analyze_experiment.agent.core.tracking import is_store_down

    if isinstance(error, AnalystError | StoreUnavailableError):
        return str(error)
    if is_store_down(error):
        return f"the tracking store at {store} stopped answering"
    return None


def _pending(snapshot: Any) -> ApprovalRequest | None:
    for pending in getattr(snapshot, "interrupts", ()) or ():
        return ApprovalRequest.model_validate(pending.value)
    return None


def check_report_path(path: str) -> None:
    """The report is written last: a path that cannot be written is refused before the analysis starts."""
    import tempfile

    target = Path(path)
    if target.is_dir():
        raise UserError(f"--report {path} is a directory; give the markdown file to write, e.g. {target / 'report.md'}")
    ancestor = next(p for p in [target.parent, *target.parent.parents] if p.exists())
    try:  # the folders the report needs must be creatable here; the probe leaves nothing behind
        with tempfile.TemporaryDirectory(dir=ancestor):
            pass
    except OSError as error:
        raise UserError(
            f"cannot write the report at {path} ({error.strerror} in {ancestor}); choose another --report path"
        ) from error


def parse_decision(text: str) -> ApprovalDecision:
    """A decision given as JSON (`--decision`, the API): refused in one line that says how to fix it."""
    from pydantic import ValidationError

    try:
        return ApprovalDecision.model_validate_json(text)
    except ValidationError as error:
        raise DecisionRefused(
            f"--decision: {_first_problem(error)}; the format is in `analyze-experiment insights "
            f"schema decision`, e.g. '{DECISION_EXAMPLE}'"
        ) from error


def _first_problem(error: Any) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the decision"
    return f"{where}: {first['msg'].removeprefix('Value error, ')}"


def check_decision(request: ApprovalRequest, decision: ApprovalDecision) -> None:
    """Refuse a decision about items the request did not offer, before anything is applied."""
    from pydantic import ValidationError

    try:  # front ends build decisions field by field; check the whole as the graph will read it
        ApprovalDecision.model_validate(decision.model_dump())
    except ValidationError as error:
        raise DecisionRefused(_first_problem(error)) from error
    if decision.stage is not None and decision.stage != request.stage:
        raise DecisionRefused(
            f"the {decision.stage} approval was answered already; the thread now waits for the "
            f"{request.stage} approval: decide on that"
        )
    offered = {item.id for item in request.items}
    named = set(decision.reject) | {e.id for e in decision.hypothesis_edits} | {e.id for e in decision.issue_edits}
    unknown = sorted(named - offered)
    if unknown:
        choices = ", ".join(sorted(offered)) or "none"
        raise DecisionRefused(
            f"{', '.join(unknown)} not offered at this approval (offered: {choices}); decide on those"
        )
    from analyze_experiment.agent.core.errors import InvariantViolation
    from analyze_experiment.agent.core.insights.invariants import require_title_length

    for edit in decision.issue_edits:
        try:
            if edit.title is not None:
                require_title_length(edit.title)
        except InvariantViolation as refused:
            raise DecisionRefused(f"{edit.id}: {refused.message}") from refused
    unchecked = [e.id for e in decision.hypothesis_edits if e.statement and not e.sql]
    if unchecked:
        raise DecisionRefused(
            f"a new statement needs its own SQL ({', '.join(unchecked)}): the recorded query tested the "
            'old one; add "sql": "SELECT trace_id FROM traces WHERE ..." to the edit'
        )
    if decision.add_hypotheses and request.stage != "hypotheses":
        raise DecisionRefused("hypotheses can be added only at the hypotheses approval")
    if decision.description is not None and request.stage != "description":
        raise DecisionRefused("the description can be edited only at the description approval")


def resolve_model(requested: str | None, services: Services) -> str:
    if requested:
        return requested
    if services.settings.model:
        return services.settings.model
    return DEFAULT_MODEL if services.settings.has_llm_endpoint else "offline"


def make_analyst(model: str, services: Services, http_client: Any = None) -> Analyst:
    if model == "offline":
        from analyze_experiment.graphs.analysts.offline import OfflineAnalyst

        return OfflineAnalyst()
    from analyze_experiment.agent.core.llm_tracing import analyst_tracer
    from analyze_experiment.graphs.analysts.llm import LlmAnalyst, chat_model

    llm = chat_model(model, services.settings, http_client=http_client)
    return LlmAnalyst(llm, model_name=model, callbacks=[analyst_tracer(services)])
