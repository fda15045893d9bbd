"""Mirror our issues into MLflow's own Issue entity (MLflow 3.17+), so they show in MLflow's UI.

Our issue document stays the source of truth; the native issue is a projection of it. Stores without
the entity (the file store, older servers) are told once and skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from analyze_experiment.agent.core import failpoints
from analyze_experiment.agent.core.insights.models import Actor, Issue, IssueStatus, Severity
from analyze_experiment.agent.core.tracking import retry_transient

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.tracing.client import TracingClient

_UNSUPPORTED_CODES = {"NOT_IMPLEMENTED", "ENDPOINT_NOT_FOUND"}
# MLflow's scale stops at "high"; CRITICAL is kept exact in our document.
_SEVERITY = {Severity.LOW: "low", Severity.MEDIUM: "medium", Severity.HIGH: "high", Severity.CRITICAL: "high"}
_STATUS = {
    IssueStatus.OPEN: "pending",
    IssueStatus.IN_PROGRESS: "pending",
    IssueStatus.RESOLVED: "resolved",
    IssueStatus.REJECTED: "rejected",
}
SOURCE_ID = "analyze-experiment"
T = TypeVar("T")


class NativeIssues:
    def __init__(self, client: MlflowClient, notify: Callable[[str], None]) -> None:
        self._tracking_uri = client.tracking_uri
        self._notify = notify
        self._supported: bool | None = None

    def create(self, experiment_id: str, run_id: str, issue: Issue, actor: Actor, known_before: bool) -> str | None:
        """Create the native issue and reference it from every evidence trace; None if unsupported."""
        if self._supported is False:
            return None
        from mlflow.entities import IssueSeverity, IssueStatus

        client = self._tracing_client()
        earlier = (
            self._guard(lambda: self._made_before(client, experiment_id, run_id, issue.title)) if known_before else None
        )
        if earlier:
            # a process killed after creating it but before noting its id: keep the one made then
            self._reference_missing(earlier, issue, run_id, actor)
            return earlier
        native = self._guard(
            lambda: client._create_issue(
                experiment_id=experiment_id,
                name=issue.title,
                description=issue.description,
                status=IssueStatus(_STATUS[issue.status]),
                severity=IssueSeverity(_SEVERITY[issue.severity]),
                source_run_id=run_id,
                created_by=SOURCE_ID,
            )
        )
        if native is None:
            return None
        failpoints.reach("issue.native_created")
        self.reference(native.issue_id, issue, run_id, actor, issue.evidence)
        return str(native.issue_id)

    @staticmethod
    def _made_before(client: TracingClient, experiment_id: str, run_id: str, title: str) -> str | None:
        found = client.store.search_issues(experiment_id, filter_string=f"source_run_id = '{run_id}'")
        return next((str(n.issue_id) for n in found if n.name == title and n.created_by == SOURCE_ID), None)

    def _reference_missing(self, native_id: str, issue: Issue, run_id: str, actor: Actor) -> None:
        client = self._tracing_client()
        missing = []
        for entry in issue.evidence:
            assessments = retry_transient(client.get_trace_info)(entry.trace_id).assessments or []
            if not any(a.name == native_id for a in assessments):
                missing.append(entry)
        self.reference(native_id, issue, run_id, actor, missing)

    def reference(self, native_id: str, issue: Issue, run_id: str, actor: Actor, evidence: list[Any]) -> None:
        from mlflow.entities import AssessmentSource, AssessmentSourceType, IssueReference

        source_type = AssessmentSourceType.HUMAN if actor is Actor.PERSON else AssessmentSourceType.LLM_JUDGE
        client = self._tracing_client()
        for entry in evidence:
            reference = IssueReference(
                issue_id=native_id,
                issue_name=issue.title,
                source=AssessmentSource(source_type=source_type, source_id=SOURCE_ID),
                trace_id=entry.trace_id,
                run_id=run_id,
                rationale=entry.rationale,
            )
            retry_transient(client.log_assessment)(entry.trace_id, reference)

    def update(self, issue: Issue) -> None:
        if issue.native_issue_id is None or self._supported is False:
            return
        from mlflow.entities import IssueSeverity, IssueStatus

        client = self._tracing_client()
        native_id = issue.native_issue_id
        self._guard(
            lambda: client.store.update_issue(
                native_id,
                status=IssueStatus(_STATUS[issue.status]),
                name=issue.title,
                description=issue.description,
                severity=IssueSeverity(_SEVERITY[issue.severity]),
            )
        )

    def _tracing_client(self) -> TracingClient:
        from mlflow.tracing.client import TracingClient

        return TracingClient(self._tracking_uri)

    def _guard(self, call: Callable[[], T]) -> T | None:
        from mlflow.exceptions import MlflowException

        if self._supported is False:
            return None
        try:
            result = retry_transient(call)()
        except (MlflowException, NotImplementedError) as error:
            code = getattr(error, "error_code", "NOT_IMPLEMENTED")
            if code not in _UNSUPPORTED_CODES:
                raise
            self._supported = False
            self._notify("this tracking store has no native MLflow issues; issues are kept as analysis artifacts only")
            return None
        self._supported = True
        return result
