"""The insights library's API: analyses, census, hypotheses and issues, stored in MLflow.

Every write passes the checks in `invariants` first. Callers say who they are (`Actor`); the graph's
tools always act as the agent, so text inside a trace cannot make the agent act as a person.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from pydantic import BaseModel, ValidationError

from analyze_experiment.agent.core import failpoints
from analyze_experiment.agent.core.errors import InvalidInput, NotFoundError, StaleWriteError
from analyze_experiment.agent.core.insights import invariants
from analyze_experiment.agent.core.insights.documents import DocumentIndex, RunDocuments
from analyze_experiment.agent.core.insights.models import (
    Actor,
    Analysis,
    AnalysisStatus,
    Approval,
    Category,
    Census,
    Evidence,
    Hypothesis,
    HypothesisStatus,
    Issue,
    IssueStatus,
    SegmentStatistics,
    Severity,
    SqlQuery,
    StatusChange,
    utc_now,
)
from analyze_experiment.agent.core.insights.native_issues import NativeIssues
from analyze_experiment.agent.core.traces.links import TraceLinks
from analyze_experiment.agent.core.tracking import retry_transient
from analyze_experiment.agent.core.wording import plural

if TYPE_CHECKING:
    from mlflow import MlflowClient

ANALYSIS_TAG = "insights.analysis"
THREAD_TAG = "insights.thread_id"
STATUS_TAG = "insights.status"
ANALYSIS_DOC = ("analysis", "analysis")
CENSUS_DOC = ("census", "census")
_ID_ATTEMPTS = 50
D = TypeVar("D", bound=BaseModel)
P = ParamSpec("P")
R = TypeVar("R")


def _refuses_invalid(method: Callable[P, R]) -> Callable[P, R]:
    """A value the documents cannot hold (blank, too long, malformed) is the caller's to fix: one line."""

    @functools.wraps(method)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "value"
            raise InvalidInput(f"{where}: {first['msg'].removeprefix('Value error, ')}") from error

    return checked


class Insights:
    def __init__(self, client: MlflowClient, notify: Callable[[str], None] | None = None) -> None:
        self._client = client
        self._links = TraceLinks(client)
        self._native = NativeIssues(client, notify or (lambda _message: None))
        self._metrics_lock = threading.Lock()

    # -- analyses ---------------------------------------------------------------------------------

    @_refuses_invalid
    def create_analysis(
        self,
        experiment_id: str,
        name: str,
        description: str = "",
        run_name: str | None = None,
        thread_id: str | None = None,
        focus: Sequence[str] = (),
        outcomes: dict[str, str] | None = None,
    ) -> Analysis:
        # validated before the run exists, so a value the document cannot hold creates nothing
        draft = Analysis(
            experiment_id=experiment_id,
            run_id="-",
            name=name,
            description=description,
            thread_id=thread_id,
            focus=list(focus),
            outcomes=dict(outcomes or {}),
        )
        self._links.require_linking_support()
        self._require_experiment(experiment_id)
        tags = {ANALYSIS_TAG: "true", STATUS_TAG: AnalysisStatus.ACTIVE.value}
        if description:
            tags["mlflow.note.content"] = description
        if thread_id:
            tags[THREAD_TAG] = thread_id
        run = retry_transient(self._client.create_run)(experiment_id, run_name=run_name or name, tags=tags)
        run_id = run.info.run_id
        failpoints.reach("analysis.run_created")
        analysis = draft.model_copy(update={"run_id": run_id})
        try:
            version = RunDocuments(self._client, run_id).write(*ANALYSIS_DOC, _dump(analysis), 0)
        except BaseException:
            # A failed command leaves nothing behind: no half-made analysis run.
            self._client.delete_run(run_id)
            raise
        return analysis.model_copy(update={"version": version})

    def get_analysis(self, run_id: str) -> Analysis:
        docs, index = self._open(run_id)
        return self._analysis(docs, index)

    def list_analyses(self, experiment_id: str, status: AnalysisStatus | None = None) -> list[Analysis]:
        self._require_experiment(experiment_id)
        query = f"tags.`{ANALYSIS_TAG}` = 'true'"
        if status is not None:
            query += f" AND tags.`{STATUS_TAG}` = '{status.value}'"
        runs = retry_transient(self._client.search_runs)(
            [experiment_id], filter_string=query, order_by=["attributes.start_time DESC"], max_results=1000
        )
        return [self.get_analysis(run.info.run_id) for run in runs]

    def find_analysis(self, experiment_id: str, thread_id: str) -> Analysis | None:
        """The analysis an agent thread created, so a re-run setup step does not create a second.

        A process killed between creating the run and writing its analysis document leaves a run
        without one; it holds nothing, so it is deleted and the caller creates the analysis afresh."""
        runs = retry_transient(self._client.search_runs)(
            [experiment_id], filter_string=f"tags.`{THREAD_TAG}` = '{thread_id}'", max_results=10
        )
        for run in runs:
            docs, index = self._open(run.info.run_id)
            if index.latest(*ANALYSIS_DOC) is not None:
                return self._analysis(docs, index)
            retry_transient(self._client.delete_run)(run.info.run_id)
        return None

    @_refuses_invalid
    def record_approval(
        self, run_id: str, approval: Approval, *, description: str | None = None, focus: Sequence[str] = ()
    ) -> Analysis:
        """Persist a decision the moment it is made, with the description and focus it settled."""
        docs, index = self._open(run_id)
        analysis = self._analysis(docs, index)
        if any(_same_approval(known, approval) for known in analysis.approvals):
            return analysis  # a resumed process applying the same decision again
        invariants.require_writable(analysis)
        changes: dict[str, Any] = {"approvals": [*analysis.approvals, approval], "updated_at": utc_now()}
        if description is not None:
            changes["description"] = description
        if focus:
            changes["focus"] = list(dict.fromkeys([*analysis.focus, *focus]))
        updated = self._save(docs, ANALYSIS_DOC[0], ANALYSIS_DOC[1], _revise(analysis, changes), analysis.version)
        self._mirror_analysis(updated)
        return updated

    def log_metrics(self, run_id: str, metrics: dict[str, float]) -> None:
        """Run metrics (token use and cost per phase); they add up across resumed processes."""
        from mlflow.entities import Metric

        if not metrics:
            return
        with self._metrics_lock:  # parallel hypothesis tests add to the same totals
            run = retry_transient(self._client.get_run)(run_id)
            stamp = int(utc_now().timestamp() * 1000)
            merged = [Metric(key, run.data.metrics.get(key, 0.0) + value, stamp, 0) for key, value in metrics.items()]
            retry_transient(self._client.log_batch)(run_id, metrics=merged)

    def attach_files(self, run_id: str, paths: Sequence[str], artifact_path: str) -> None:
        for path in paths:
            retry_transient(self._client.log_artifact)(run_id, path, artifact_path)

    @_refuses_invalid
    def update_analysis(
        self,
        run_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        status: AnalysisStatus | None = None,
        reason: str | None = None,
        actor: Actor = Actor.PERSON,
        expected_version: int | None = None,
    ) -> Analysis:
        docs, index = self._open(run_id)
        analysis = self._analysis(docs, index)
        _check_expected(analysis.version, expected_version, f"analysis {run_id}")
        if status is not AnalysisStatus.ACTIVE:
            invariants.require_writable(analysis)
        changes: dict[str, Any] = {"updated_at": utc_now()}
        if name is not None:
            changes["name"] = name
        if description is not None:
            if not description.strip():
                raise InvalidInput("description: cannot be blank; describe what the traced agent does")
            changes["description"] = description
        if status is not None and status is not analysis.status:
            changes["status"] = status
            note = reason or f"set to {status.value}"
            changes["history"] = [*analysis.history, _change(analysis.status, status, note, actor)]
        updated = _revise(analysis, changes)
        updated = self._save(docs, ANALYSIS_DOC[0], ANALYSIS_DOC[1], updated, analysis.version)
        self._mirror_analysis(updated)
        return updated

    # -- census ---------------------------------------------------------------------------------

    @_refuses_invalid
    def save_census(self, run_id: str, census: Census) -> Census:
        docs, index = self._open(run_id)
        invariants.require_writable(self._analysis(docs, index))
        current = index.latest(*CENSUS_DOC)
        base = current.version if current else 0
        fresh = census.model_copy(update={"created_at": utc_now(), "updated_at": utc_now()})
        return self._save(docs, CENSUS_DOC[0], CENSUS_DOC[1], fresh, base)

    def get_census(self, run_id: str) -> Census:
        docs, index = self._open(run_id)
        body = docs.read(*CENSUS_DOC, index=index)
        if body is None:
            raise NotFoundError(
                f"analysis {run_id} has no baseline census; create it with "
                f"`insights create-baseline-census --run-id {run_id}`"
            )
        return Census.model_validate(body)

    # -- hypotheses -------------------------------------------------------------------------------

    @_refuses_invalid
    def create_hypothesis(
        self,
        run_id: str,
        *,
        statement: str,
        rationale: str,
        testing_plan: str,
        evidence: Sequence[Evidence] = (),
        sql_queries: Sequence[SqlQuery] = (),
        category: Category | None = None,
        actor: Actor = Actor.AGENT,
        statistics: SegmentStatistics | None = None,
    ) -> Hypothesis:
        docs, index = self._open(run_id)
        analysis = self._analysis(docs, index)
        invariants.require_writable(analysis)
        invariants.require_census(index.latest(*CENSUS_DOC) is not None, run_id)
        existing = self._all(docs, index, "hypothesis", Hypothesis)
        for known in existing:
            if _same_text(known.statement, statement):
                return known  # creating twice (a retry, a resumed run) is harmless
        self._admit_evidence(analysis, list(evidence))
        draft = Hypothesis(
            id="H0",
            statement=statement,
            rationale=rationale,
            testing_plan=testing_plan,
            evidence=invariants.merge_evidence([], list(evidence)),
            sql_queries=invariants.merge_queries([], list(sql_queries)),
            category=category,
            author=actor,
            statistics=statistics,
        )
        return self._create_numbered(docs, "hypothesis", "H", draft, [h.id for h in existing])

    @_refuses_invalid
    def update_hypothesis(
        self,
        run_id: str,
        hypothesis_id: str,
        *,
        status: HypothesisStatus | None = None,
        evidence: Sequence[Evidence] = (),
        sql_queries: Sequence[SqlQuery] = (),
        selection: SqlQuery | None = None,
        statement: str | None = None,
        rationale: str | None = None,
        testing_plan: str | None = None,
        reason: str | None = None,
        note: str | None = None,
        reopen: bool = False,
        actor: Actor = Actor.AGENT,
        expected_version: int | None = None,
    ) -> Hypothesis:
        docs, index = self._open(run_id)
        analysis = self._analysis(docs, index)
        invariants.require_writable(analysis)
        hypothesis = self._one(docs, index, "hypothesis", hypothesis_id, Hypothesis, run_id)
        _check_expected(hypothesis.version, expected_version, f"hypothesis {hypothesis_id}")
        target = status or hypothesis.status
        new_evidence = list(evidence)
        reopening = reopen and target is HypothesisStatus.TESTING
        invariants.require_workable(hypothesis, actor, reopening)
        if reopening and hypothesis.status is HypothesisStatus.REJECTED:
            invariants.require_reason(reason, f"reopening {hypothesis_id}")
        else:
            invariants.require_status_evidence(hypothesis, target, new_evidence, actor, reason)
        if target is not hypothesis.status:
            invariants.require_no_open_issues(hypothesis, target, self._all(docs, index, "issue", Issue))
        invariants.require_query_for_statement(hypothesis, statement, selection)
        self._admit_evidence(analysis, new_evidence)
        queries = [*sql_queries, *([selection] if selection else [])]
        changes: dict[str, Any] = {
            "evidence": invariants.merge_evidence(hypothesis.evidence, new_evidence),
            "sql_queries": invariants.merge_queries(hypothesis.sql_queries, queries),
            "notes": [*hypothesis.notes, note] if note and note not in hypothesis.notes else hypothesis.notes,
            "updated_at": utc_now(),
        }
        if selection is not None and selection.id != (hypothesis.selection.id if hypothesis.selection else None):
            # the engine's statistics described the old selection
            changes.update(selection_id=selection.id, statistics=None)
        for field, value in (("statement", statement), ("rationale", rationale), ("testing_plan", testing_plan)):
            if value is not None:
                changes[field] = value
        if target is not hypothesis.status:
            note = reason or "; ".join(e.rationale for e in new_evidence)[:1000]
            changes["status"] = target
            changes["history"] = [*hypothesis.history, _change(hypothesis.status, target, note, actor)]
        updated = _revise(hypothesis, changes)
        return self._save(docs, "hypothesis", hypothesis_id, updated, hypothesis.version)

    def get_hypothesis(self, run_id: str, hypothesis_id: str) -> Hypothesis:
        docs, index = self._open(run_id)
        return self._one(docs, index, "hypothesis", hypothesis_id, Hypothesis, run_id)

    def list_hypotheses(self, run_id: str, status: HypothesisStatus | None = None) -> list[Hypothesis]:
        docs, index = self._open(run_id)
        items = self._all(docs, index, "hypothesis", Hypothesis)
        return [h for h in items if status is None or h.status is status]

    # -- issues -----------------------------------------------------------------------------------

    @_refuses_invalid
    def create_issue(
        self,
        run_id: str,
        *,
        hypothesis_id: str,
        title: str,
        description: str,
        severity: Severity,
        evidence: Sequence[Evidence],
        category: Category | None = None,
        actor: Actor = Actor.AGENT,
    ) -> Issue:
        docs, index = self._open(run_id)
        analysis = self._analysis(docs, index)
        invariants.require_writable(analysis)
        hypothesis = self._one(docs, index, "hypothesis", hypothesis_id, Hypothesis, run_id)
        invariants.require_validated_source(hypothesis)
        invariants.require_title_length(title)
        invariants.require_evidence(list(evidence), "an issue")
        self._require_linked(analysis, list(evidence))
        existing = self._all(docs, index, "issue", Issue)
        for known in existing:
            if known.hypothesis_id == hypothesis_id and _same_text(known.title, title):
                return self._ensure_native(docs, analysis, known, actor, known_before=True)
        draft = Issue(
            id="I0",
            title=title,
            description=description,
            severity=severity,
            hypothesis_id=hypothesis_id,
            evidence=invariants.merge_evidence([], list(evidence)),
            category=category or hypothesis.category,
        )
        issue = self._create_numbered(docs, "issue", "I", draft, [i.id for i in existing])
        return self._ensure_native(docs, analysis, issue, actor, known_before=False)

    @_refuses_invalid
    def update_issue(
        self,
        run_id: str,
        issue_id: str,
        *,
        status: IssueStatus | None = None,
        severity: Severity | None = None,
        title: str | None = None,
        description: str | None = None,
        evidence: Sequence[Evidence] = (),
        reason: str | None = None,
        actor: Actor = Actor.AGENT,
        expected_version: int | None = None,
    ) -> Issue:
        docs, index = self._open(run_id)
        analysis = self._analysis(docs, index)
        invariants.require_writable(analysis)
        issue = self._one(docs, index, "issue", issue_id, Issue, run_id)
        _check_expected(issue.version, expected_version, f"issue {issue_id}")
        if title is not None:
            invariants.require_title_length(title)
        new_evidence = list(evidence)
        self._require_linked(analysis, new_evidence)
        changes: dict[str, Any] = {
            "evidence": invariants.merge_evidence(issue.evidence, new_evidence),
            "updated_at": utc_now(),
        }
        for field, value in (("severity", severity), ("title", title), ("description", description)):
            if value is not None:
                changes[field] = value
        if status is not None and status is not issue.status:
            changes["status"] = status
            note = reason or f"set to {status.value}"
            changes["history"] = [*issue.history, _change(issue.status, status, note, actor)]
        updated = self._save(docs, "issue", issue_id, _revise(issue, changes), issue.version)
        self._native.update(updated)
        if updated.native_issue_id and new_evidence:
            self._native.reference(updated.native_issue_id, updated, run_id, actor, new_evidence)
        return updated

    def get_issue(self, run_id: str, issue_id: str) -> Issue:
        docs, index = self._open(run_id)
        return self._one(docs, index, "issue", issue_id, Issue, run_id)

    def list_issues(self, run_id: str) -> list[Issue]:
        docs, index = self._open(run_id)
        return self._all(docs, index, "issue", Issue)

    def list_experiment_issues(self, experiment_id: str) -> list[tuple[str, Issue]]:
        """Issues of every analysis of the experiment, with the run each belongs to."""
        return [
            (analysis.run_id, issue)
            for analysis in self.list_analyses(experiment_id)
            for issue in self.list_issues(analysis.run_id)
        ]

    # -- internals --------------------------------------------------------------------------------

    def _open(self, run_id: str) -> tuple[RunDocuments, DocumentIndex]:
        from mlflow.exceptions import MlflowException

        docs = RunDocuments(self._client, run_id)
        try:
            index = docs.index()
        except MlflowException as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise NotFoundError(
                    f"run {run_id} does not exist; list analyses with `insights list-analyses`"
                ) from error
            raise
        return docs, index

    def _analysis(self, docs: RunDocuments, index: DocumentIndex) -> Analysis:
        body = docs.read(*ANALYSIS_DOC, index=index)
        if body is None:
            raise NotFoundError(f"run {docs.run_id} is not an analysis run; create one with `insights create-analysis`")
        return Analysis.model_validate(body)

    def _one(self, docs: RunDocuments, index: DocumentIndex, kind: str, doc_id: str, model: type[D], run_id: str) -> D:
        body = docs.read(kind, doc_id, index=index)
        if body is None:
            raise NotFoundError(
                f"no {kind} {doc_id} in analysis {run_id}; list them with `insights list-{plural(kind)}`"
            )
        return model.model_validate(body)

    def _all(self, docs: RunDocuments, index: DocumentIndex, kind: str, model: type[D]) -> list[D]:
        items = [model.model_validate(body) for body in docs.read_all(kind, index=index)]
        return sorted(items, key=_number)

    def _save(self, docs: RunDocuments, kind: str, doc_id: str, doc: D, base_version: int) -> D:
        version = docs.write(kind, doc_id, _dump(doc), base_version)
        saved = doc.model_copy(update={"version": version})
        self._mirror(docs.run_id, kind, doc_id, saved)
        return saved

    def _create_numbered(self, docs: RunDocuments, kind: str, prefix: str, draft: D, taken: list[str]) -> D:
        """Give the document the next free id; a concurrent creator that took it moves us on."""
        number = max((int(existing[1:]) for existing in taken), default=0) + 1
        for _ in range(_ID_ATTEMPTS):
            candidate = draft.model_copy(update={"id": f"{prefix}{number}"})
            try:
                return self._save(docs, kind, f"{prefix}{number}", candidate, 0)
            except StaleWriteError:
                number += 1
        raise StaleWriteError(f"could not allocate a new {kind} id after {_ID_ATTEMPTS} attempts; try again")

    def _ensure_native(
        self, docs: RunDocuments, analysis: Analysis, issue: Issue, actor: Actor, *, known_before: bool
    ) -> Issue:
        """`known_before`: the issue existed before this call, so a crash may have left its native
        issue made but not noted; a new issue cannot have one yet."""
        if issue.native_issue_id is not None:
            return issue
        native_id = self._native.create(analysis.experiment_id, analysis.run_id, issue, actor, known_before)
        if native_id is None:
            return issue
        return self._save(docs, "issue", issue.id, _revise(issue, {"native_issue_id": native_id}), issue.version)

    def _admit_evidence(self, analysis: Analysis, evidence: list[Evidence]) -> None:
        """Evidence must be real traces of the experiment; admitting it links them to the run."""
        ids = {entry.trace_id for entry in evidence}
        if not ids:
            return
        missing = ids - self._links.existing(analysis.experiment_id, ids)
        invariants.require_all_present(
            missing,
            f"evidence names traces that are not in experiment {analysis.experiment_id}",
            "cite trace ids returned by `traces search`",
        )
        self._links.link(analysis.run_id, ids)

    def _require_linked(self, analysis: Analysis, evidence: list[Evidence]) -> None:
        ids = {entry.trace_id for entry in evidence}
        if not ids:
            return
        unlinked = ids - self._links.linked(analysis.experiment_id, analysis.run_id, ids)
        invariants.require_all_present(
            unlinked,
            f"issue evidence must already be linked to analysis {analysis.run_id}; not linked",
            "inspect them with `traces get --run-id ...` or link them with `runs link-traces`",
        )

    def _require_experiment(self, experiment_id: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            experiment = retry_transient(self._client.get_experiment)(experiment_id)
        except MlflowException as error:
            if error.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
                raise NotFoundError(
                    f"experiment {experiment_id} does not exist in this tracking store; check "
                    "--experiment-id / MLFLOW_EXPERIMENT_ID (`analyze-experiment doctor` helps)"
                ) from error
            raise
        if experiment.lifecycle_stage != "active":
            raise NotFoundError(f"experiment {experiment_id} is deleted; restore it or pick another")

    def _mirror(self, run_id: str, kind: str, doc_id: str, doc: BaseModel) -> None:
        """Tags for MLflow's UI and cheap filtering; the documents stay the source of truth."""
        status = getattr(doc, "status", None)
        if kind in {"hypothesis", "issue"} and status is not None:
            retry_transient(self._client.set_tag)(run_id, f"insights.{kind}.{doc_id}.status", str(status))

    def _mirror_analysis(self, analysis: Analysis) -> None:
        set_tag = retry_transient(self._client.set_tag)
        set_tag(analysis.run_id, STATUS_TAG, analysis.status.value)
        set_tag(analysis.run_id, "mlflow.note.content", analysis.description)
        run_status = "RUNNING" if analysis.status is AnalysisStatus.ACTIVE else "FINISHED"
        retry_transient(self._client.update_run)(analysis.run_id, status=run_status, name=None)


def _number(doc: BaseModel) -> int:
    """H12 sorts after H2."""
    return int(str(getattr(doc, "id", "X0"))[1:])


def _dump(doc: BaseModel) -> dict[str, Any]:
    return doc.model_dump(mode="json")


def _revise(doc: D, changes: dict[str, Any]) -> D:
    """Apply changes and validate the result as a whole (model_copy alone skips validation)."""
    return type(doc).model_validate({**_dump(doc), **_jsonable(changes)})


def _jsonable(changes: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if isinstance(value, list):
            out[key] = [item.model_dump(mode="json") if isinstance(item, BaseModel) else item for item in value]
        elif isinstance(value, BaseModel):
            out[key] = value.model_dump(mode="json")
        else:
            out[key] = value
    return out


def _change(old: Any, new: Any, reason: str, actor: Actor) -> StatusChange:
    return StatusChange(from_status=str(old.value), to_status=str(new.value), reason=reason, actor=actor)


def _same_approval(a: Approval, b: Approval) -> bool:
    return (a.stage, a.summary, a.by) == (b.stage, b.summary, b.by)


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def _check_expected(actual: int, expected: int | None, what: str) -> None:
    if expected is not None and expected != actual:
        raise StaleWriteError(f"{what} is at version {actual}, not {expected}; read it again and reapply your change")
