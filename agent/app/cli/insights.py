"""`analyze-experiment insights ...`: the analysis record (the seed's I1-I10)."""

from __future__ import annotations

from typing import Any

import click

from analyze_experiment.agent.app.cli.common import (
    EVIDENCE_EXAMPLE,
    SQL_EXAMPLE,
    UpperChoice,
    current_services,
    engine_options,
    experiment_option,
    output_option,
    parse_json_items,
    run_id_option,
    traces_table,
)

ANALYSIS_STATUSES = ["ACTIVE", "COMPLETED", "ARCHIVED"]
HYPOTHESIS_STATUSES = ["TESTING", "VALIDATED", "REJECTED"]
ISSUE_STATUSES = ["OPEN", "IN_PROGRESS", "RESOLVED", "REJECTED"]
SEVERITIES = ["LOW", "MEDIUM", "HIGH", "CRITICAL"]

evidence_option = click.option(
    "--evidence",
    "-e",
    multiple=True,
    metavar="JSON",
    help=f"Evidence as JSON, repeatable: {EVIDENCE_EXAMPLE}.",
)
sql_query_option = click.option(
    "--sql-query",
    "-q",
    multiple=True,
    metavar="JSON",
    help=f"A SQL query for the lineage, repeatable: {SQL_EXAMPLE}.",
)
expected_version_option = click.option(
    "--expected-version", type=int, help="Refuse the update unless the object is still at this version."
)


@click.group()
def insights() -> None:
    """Analyses, census, hypotheses and issues, all stored in MLflow."""


def _emit(output: str, data: Any, render: Any) -> None:
    from analyze_experiment.agent.app import console

    if output == "json":
        console.emit_json(data)
    else:
        console.show(render())


def _evidence(values: tuple[str, ...]) -> list[Any]:
    from analyze_experiment.agent.core.insights.models import Evidence

    return parse_json_items(values, Evidence, "--evidence", EVIDENCE_EXAMPLE)


def _queries(values: tuple[str, ...]) -> list[Any]:
    from analyze_experiment.agent.core.insights.models import SqlQuery

    return parse_json_items(values, SqlQuery, "--sql-query", SQL_EXAMPLE)


# -- analyses ---------------------------------------------------------------------------------------


@insights.command("create-analysis")
@experiment_option
@click.option("--name", required=True, help="A title for the investigation.")
@click.option("--description", default="", help="What the traced agent does (about one paragraph).")
@click.option("--run-name", help="MLflow run name. [default: the name]")
@output_option
def create_analysis(experiment_id: str | None, name: str, description: str, run_name: str | None, output: str) -> None:
    """Start an analysis: a new MLflow run in the experiment.

    \b
    analyze-experiment insights create-analysis -x 1 --name 'support bot, week 48'
    """
    from analyze_experiment.agent.app import console

    services = current_services()
    analysis = services.insights.create_analysis(services.experiment_id(experiment_id), name, description, run_name)
    _emit(output, analysis, lambda: console.analysis_panel(analysis))


@insights.command("update-analysis")
@run_id_option()
@click.option("--name", help="A new name for the analysis run.")
@click.option("--description", help="What the traced agent does, in your words.")
@click.option("--status", type=UpperChoice(ANALYSIS_STATUSES), help="COMPLETED makes it read-only; ACTIVE reopens it.")
@click.option("--reason", help="Why the status changes (kept in the history).")
@expected_version_option
@output_option
def update_analysis(
    run_id: str,
    name: str | None,
    description: str | None,
    status: str | None,
    reason: str | None,
    expected_version: int | None,
    output: str,
) -> None:
    """Rename, describe, complete (read-only) or reopen (ACTIVE) an analysis.

    \b
    analyze-experiment insights update-analysis -r RUN_ID --description 'A support bot'
    analyze-experiment insights update-analysis -r RUN_ID --status COMPLETED --reason 'report sent'
    """
    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.core.insights.models import AnalysisStatus

    analysis = current_services().insights.update_analysis(
        run_id,
        name=name,
        description=description,
        reason=reason,
        expected_version=expected_version,
        status=AnalysisStatus(status) if status else None,
    )
    _emit(output, analysis, lambda: console.analysis_panel(analysis))


@insights.command("get-analysis")
@run_id_option()
@output_option
def get_analysis(run_id: str, output: str) -> None:
    """Show one analysis.

    \b
    analyze-experiment insights get-analysis -r RUN_ID -o json
    """
    from analyze_experiment.agent.app import console

    analysis = current_services().insights.get_analysis(run_id)
    _emit(output, analysis, lambda: console.analysis_panel(analysis))


@insights.command("list-analyses")
@experiment_option
@click.option("--status", type=UpperChoice(ANALYSIS_STATUSES), help="Only analyses with this status.")
@output_option
def list_analyses(experiment_id: str | None, status: str | None, output: str) -> None:
    """List the analyses of an experiment, newest first.

    \b
    analyze-experiment insights list-analyses -x 1 --status ACTIVE
    """
    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.core.insights.models import AnalysisStatus

    services = current_services()
    found = services.insights.list_analyses(
        services.experiment_id(experiment_id), AnalysisStatus(status) if status else None
    )
    _emit(output, found, lambda: console.analyses_table(found))


# -- census -----------------------------------------------------------------------------------------


@insights.command("create-baseline-census")
@run_id_option()
@click.option("--refresh", is_flag=True, help="Rebuild the local traces table from scratch first.")
@engine_options
@output_option
def create_baseline_census(run_id: str, refresh: bool, engine: str | None, table_name: str | None, output: str) -> None:
    """Compute the census with SQL over every trace of the experiment and store it on the run.

    \b
    analyze-experiment insights create-baseline-census -r RUN_ID
    """
    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.core.traces.census import compute_census

    services = current_services()
    analysis = services.insights.get_analysis(run_id)
    census = compute_census(
        traces_table(analysis.experiment_id, refresh, engine, table_name), outcomes=analysis.outcomes
    )
    saved = services.insights.save_census(run_id, census)
    _emit(output, saved, lambda: console.census_view(saved))


@insights.command("get-baseline-census")
@run_id_option()
@output_option
def get_baseline_census(run_id: str, output: str) -> None:
    """Show the stored census.

    \b
    analyze-experiment insights get-baseline-census -r RUN_ID
    """
    from analyze_experiment.agent.app import console

    census = current_services().insights.get_census(run_id)
    _emit(output, census, lambda: console.census_view(census))


# -- hypotheses -------------------------------------------------------------------------------------


@insights.command("create-hypothesis")
@run_id_option()
@click.option("--statement", required=True, help="The testable claim, as a title.")
@click.option("--rationale", required=True, help="Why test it; cite the census.")
@click.option("--testing-plan", required=True, help="Step by step, citing query ids (Q1, Q2...).")
@evidence_option
@sql_query_option
@output_option
def create_hypothesis(
    run_id: str,
    statement: str,
    rationale: str,
    testing_plan: str,
    evidence: tuple[str, ...],
    sql_query: tuple[str, ...],
    output: str,
) -> None:
    """Add a hypothesis (status TESTING). Needs the census first.

    \b
    analyze-experiment insights create-hypothesis -r RUN_ID --statement 'Refund answers fail' \
        --rationale 'census: 12% of refund traces fail' --testing-plan 'Q1 selects them' \
        --sql-query '{"id": "Q1", "query": "SELECT trace_id FROM traces WHERE state = ''ERROR''"}'
    """
    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.core.insights.models import Actor

    hypothesis = current_services().insights.create_hypothesis(
        run_id,
        statement=statement,
        rationale=rationale,
        testing_plan=testing_plan,
        evidence=_evidence(evidence),
        sql_queries=_queries(sql_query),
        actor=Actor.PERSON,
    )
    _emit(output, hypothesis, lambda: console.hypothesis_panel(hypothesis))


@insights.command("update-hypothesis")
@run_id_option()
@click.option("--hypothesis-id", "-H", required=True, help="The hypothesis, like H1.")
@click.option(
    "--status", type=UpperChoice(HYPOTHESIS_STATUSES), help="The verdict; needs new --evidence that supports it."
)
@evidence_option
@sql_query_option
@click.option("--statement", help="A new statement; needs a new --sql-query that tests it.")
@click.option("--rationale", help="A new rationale (why test it; cite the census).")
@click.option("--testing-plan", help="A new testing plan, citing query ids.")
@click.option("--reason", help="Why the status changes. [default: the new evidence's rationale]")
@click.option("--reopen", is_flag=True, help="Reopen a REJECTED hypothesis (with --status TESTING).")
@expected_version_option
@output_option
def update_hypothesis(
    run_id: str,
    hypothesis_id: str,
    status: str | None,
    evidence: tuple[str, ...],
    sql_query: tuple[str, ...],
    statement: str | None,
    rationale: str | None,
    testing_plan: str | None,
    reason: str | None,
    reopen: bool,
    expected_version: int | None,
    output: str,
) -> None:
    """Record evidence and queries, or change the status (which needs new evidence).

    \b
    analyze-experiment insights update-hypothesis -r RUN_ID -H H1 --status VALIDATED \
        --evidence '{"trace_id": "tr-...", "rationale": "the lookup timed out", "supports": true}'
    """
    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.core.insights.models import Actor, HypothesisStatus

    queries = _queries(sql_query)
    # a new statement is tested by the first query given with it (the old one tested the old statement)
    selection = queries.pop(0) if statement and queries else None
    hypothesis = current_services().insights.update_hypothesis(
        run_id,
        hypothesis_id.upper(),
        status=HypothesisStatus(status) if status else None,
        evidence=_evidence(evidence),
        sql_queries=queries,
        selection=selection,
        statement=statement,
        rationale=rationale,
        testing_plan=testing_plan,
        reason=reason,
        reopen=reopen,
        actor=Actor.PERSON,
        expected_version=expected_version,
    )
    _emit(output, hypothesis, lambda: console.hypothesis_panel(hypothesis))


@insights.command("get-hypothesis")
@run_id_option()
@click.option("--hypothesis-id", "-H", required=True, help="The hypothesis, like H1.")
@output_option
def get_hypothesis(run_id: str, hypothesis_id: str, output: str) -> None:
    """Show one hypothesis with its evidence, queries and history.

    \b
    analyze-experiment insights get-hypothesis -r RUN_ID -H H1
    """
    from analyze_experiment.agent.app import console

    hypothesis = current_services().insights.get_hypothesis(run_id, hypothesis_id.upper())
    _emit(output, hypothesis, lambda: console.hypothesis_panel(hypothesis))


@insights.command("list-hypotheses")
@run_id_option()
@click.option("--status", type=UpperChoice(HYPOTHESIS_STATUSES), help="Only hypotheses with this status.")
@output_option
def list_hypotheses(run_id: str, status: str | None, output: str) -> None:
    """List the hypotheses of an analysis.

    \b
    analyze-experiment insights list-hypotheses -r RUN_ID --status VALIDATED
    """
    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.core.insights.models import HypothesisStatus

    found = current_services().insights.list_hypotheses(run_id, HypothesisStatus(status) if status else None)
    _emit(output, found, lambda: console.hypotheses_table(found))


@insights.command("preview-hypotheses")
@run_id_option()
@click.option("--max-traces", default=20, show_default=True, help="Evidence traces to show in all.")
@output_option
def preview_hypotheses(run_id: str, max_traces: int, output: str) -> None:
    """Each hypothesis with excerpts of its evidence traces.

    \b
    analyze-experiment insights preview-hypotheses -r RUN_ID
    """
    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.core.previews import PreviewItem, build_previews
    from analyze_experiment.agent.core.traces.links import TraceLinks

    services = current_services()
    analysis = services.insights.get_analysis(run_id)
    items = [
        PreviewItem(
            kind="hypothesis", id=h.id, run_id=run_id, title=h.statement, status=h.status.value, evidence=h.evidence
        )
        for h in services.insights.list_hypotheses(run_id)
    ]
    previews = build_previews(TraceLinks(services.client), analysis.experiment_id, items, max_traces)
    _emit(output, previews, lambda: console.previews_view(previews))


# -- issues -----------------------------------------------------------------------------------------


@insights.command("create-issue")
@run_id_option()
@click.option("--hypothesis-id", "-H", required=True, help="The VALIDATED hypothesis it comes from.")
@click.option("--title", required=True, help="5-8 words, specific and fix-oriented.")
@click.option("--description", required=True, help="What, why, impact, with numbers and denominators.")
@click.option(
    "--severity",
    required=True,
    type=UpperChoice(SEVERITIES),
    help="LOW, MEDIUM, HIGH or CRITICAL: the share of traffic affected, weighted by what happened to it.",
)
@evidence_option
@output_option
def create_issue(
    run_id: str, hypothesis_id: str, title: str, description: str, severity: str, evidence: tuple[str, ...], output: str
) -> None:
    """Promote a VALIDATED hypothesis to an issue (evidence traces must be linked).

    \b
    analyze-experiment insights create-issue -r RUN_ID -H H1 --severity HIGH \
        --title 'Stop refund lookups from timing out' --description '12 of 40 refund traces fail'
    """
    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.core.insights.models import Actor, Severity

    issue = current_services().insights.create_issue(
        run_id,
        hypothesis_id=hypothesis_id.upper(),
        title=title,
        description=description,
        severity=Severity(severity),
        evidence=_evidence(evidence),
        actor=Actor.PERSON,
    )
    _emit(output, issue, lambda: console.issue_panel(issue))


@insights.command("update-issue")
@run_id_option()
@click.option("--issue-id", "-I", required=True, help="The issue, like I1.")
@click.option("--status", type=UpperChoice(ISSUE_STATUSES), help="The new status; a reason is kept in its history.")
@click.option("--severity", type=UpperChoice(SEVERITIES), help="LOW, MEDIUM, HIGH or CRITICAL.")
@click.option("--title", help="A new title, 5-8 words, fix-oriented.")
@click.option("--description", help="A new description: what, why, impact, with numbers.")
@evidence_option
@click.option("--reason", help="Why the status changes (kept in the history).")
@expected_version_option
@output_option
def update_issue(
    run_id: str,
    issue_id: str,
    status: str | None,
    severity: str | None,
    title: str | None,
    description: str | None,
    evidence: tuple[str, ...],
    reason: str | None,
    expected_version: int | None,
    output: str,
) -> None:
    """Change an issue's status, severity, wording or evidence.

    \b
    analyze-experiment insights update-issue -r RUN_ID -I I1 --severity CRITICAL
    """
    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.core.insights.models import Actor, IssueStatus, Severity

    issue = current_services().insights.update_issue(
        run_id,
        issue_id.upper(),
        status=IssueStatus(status) if status else None,
        severity=Severity(severity) if severity else None,
        title=title,
        description=description,
        evidence=_evidence(evidence),
        reason=reason,
        actor=Actor.PERSON,
        expected_version=expected_version,
    )
    _emit(output, issue, lambda: console.issue_panel(issue))


@insights.command("get-issue")
@click.option("--issue-id", "-I", required=True, help="The issue, like I1.")
@run_id_option("The analysis run; without it, every analysis of the experiment is searched.", required=False)
@experiment_option
@output_option
def get_issue(issue_id: str, run_id: str | None, experiment_id: str | None, output: str) -> None:
    """Show one issue.

    \b
    analyze-experiment insights get-issue -r RUN_ID -I I1
    """
    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.core.errors import NotFoundError, UserError

    services = current_services()
    if run_id:
        issue = services.insights.get_issue(run_id, issue_id.upper())
    else:
        matches = [
            i
            for _, i in services.insights.list_experiment_issues(services.experiment_id(experiment_id))
            if i.id == issue_id.upper() or i.native_issue_id == issue_id
        ]
        if not matches:
            raise NotFoundError(
                f"no issue {issue_id} in the experiment's analyses; list them with `insights list-issues`"
            )
        if len(matches) > 1:
            raise UserError(f"{len(matches)} analyses have an issue {issue_id}; pass --run-id to pick one")
        issue = matches[0]
    _emit(output, issue, lambda: console.issue_panel(issue))


@insights.command("list-issues")
@run_id_option("List the issues of this analysis.", required=False)
@experiment_option
@output_option
def list_issues(run_id: str | None, experiment_id: str | None, output: str) -> None:
    """List issues of one analysis (--run-id) or of every analysis of the experiment.

    \b
    analyze-experiment insights list-issues -r RUN_ID
    analyze-experiment insights list-issues -x 1
    """
    from analyze_experiment.agent.app import console

    services = current_services()
    if run_id:
        rows = [(run_id, issue) for issue in services.insights.list_issues(run_id)]
    else:
        rows = services.insights.list_experiment_issues(services.experiment_id(experiment_id))
    data = [{"run_id": r, **issue.model_dump(mode="json")} for r, issue in rows]
    _emit(output, data, lambda: console.issues_table(rows))


@insights.command("preview-issues")
@run_id_option("Preview the issues of this analysis.", required=False)
@experiment_option
@click.option("--max-traces", default=20, show_default=True, help="Evidence traces to show in all.")
@output_option
def preview_issues(run_id: str | None, experiment_id: str | None, max_traces: int, output: str) -> None:
    """Each issue with excerpts of its evidence traces.

    \b
    analyze-experiment insights preview-issues -r RUN_ID
    """
    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.core.previews import PreviewItem, build_previews
    from analyze_experiment.agent.core.traces.links import TraceLinks

    services = current_services()
    if run_id:
        experiment = services.insights.get_analysis(run_id).experiment_id
        rows = [(run_id, issue) for issue in services.insights.list_issues(run_id)]
    else:
        experiment = services.experiment_id(experiment_id)
        rows = services.insights.list_experiment_issues(experiment)
    items = [
        PreviewItem(kind="issue", id=i.id, run_id=r, title=i.title, status=i.status.value, evidence=i.evidence)
        for r, i in rows
    ]
    previews = build_previews(TraceLinks(services.client), experiment, items, max_traces)
    _emit(output, previews, lambda: console.previews_view(previews))


@insights.command("schema")
@click.argument(
    "name",
    type=click.Choice(["analysis", "census", "hypothesis", "issue", "trace-summary", "trace-view", "decision"]),
)
def schema(name: str) -> None:
    """Print the JSON Schema of an object that `--output json` emits, or of `resume --decision`.

    \b
    analyze-experiment insights schema decision
    analyze-experiment insights schema hypothesis
    """
    from pydantic import BaseModel

    from analyze_experiment.agent.app import console
    from analyze_experiment.agent.core.approvals import ApprovalDecision
    from analyze_experiment.agent.core.insights import models
    from analyze_experiment.agent.core.traces import views

    by_name: dict[str, type[BaseModel]] = {
        "decision": ApprovalDecision,
        "analysis": models.Analysis,
        "census": models.Census,
        "hypothesis": models.Hypothesis,
        "issue": models.Issue,
        "trace-summary": views.TraceSummary,
        "trace-view": views.TraceView,
    }
    console.emit_json(by_name[name].model_json_schema())
