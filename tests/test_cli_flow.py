"""The seed's workflow through the real CLI on a real SQLite store, and every refusal on the way."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.conftest import Store
from tests.helpers import CliRunner

pytestmark = pytest.mark.slow  # each test starts a store, a server or the whole CLI

TITLE = "Order lookup tool times out often"
UNKNOWN_TRACE = "tr-00000000000000000000000000000000"


def evidence(trace_id: str, supports: bool = True, rationale: str = "seen in the span tree") -> str:
    return json.dumps({"trace_id": trace_id, "rationale": rationale, "supports": supports})


def failed_ids(store: Store) -> list[str]:
    return store.traces.failed_ids()  # type: ignore[attr-defined]


def ok_ids(store: Store) -> list[str]:
    return store.traces.ok_ids()  # type: ignore[attr-defined]


class Workflow:
    """Argument lists for the commands these tests repeat; each returns argv for `cli`."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def hypothesis(self, statement: str = "lookup_order times out") -> list[str]:
        return [
            "insights",
            "create-hypothesis",
            "-r",
            self.run_id,
            "--statement",
            statement,
            "--rationale",
            "census shows tool errors",
            "--testing-plan",
            "Q1 counts errors per tool",
            "--sql-query",
            '{"id": "Q1", "query": "SELECT 1"}',
        ]

    def update(self, *options: str, hypothesis_id: str = "H1") -> list[str]:
        return ["insights", "update-hypothesis", "-r", self.run_id, "-H", hypothesis_id, *options]

    def set_status(self, status: str, trace_id: str, supports: bool = True) -> list[str]:
        return self.update("--status", status, "--evidence", evidence(trace_id, supports))

    def issue(self, trace_id: str, title: str = TITLE, severity: str = "LOW") -> list[str]:
        return [
            "insights",
            "create-issue",
            "-r",
            self.run_id,
            "-H",
            "H1",
            "--severity",
            severity,
            "--title",
            title,
            "--description",
            "7 of 40 traces fail",
            "--evidence",
            evidence(trace_id),
        ]

    def get(self, kind: str, object_id: str) -> list[str]:
        flag = "-H" if kind == "hypothesis" else "-I"
        return ["insights", f"get-{kind}", "-r", self.run_id, flag, object_id]


@pytest.fixture
def run_id(cli: CliRunner) -> str:
    created = cli.ok("insights", "create-analysis", "--name", "Support quality", "-o", "json").json()
    return str(created["run_id"])


@pytest.fixture
def flow(cli: CliRunner, run_id: str) -> Workflow:
    """An analysis with its census, ready for hypotheses."""
    cli.ok("insights", "create-baseline-census", "--run-id", run_id)
    return Workflow(run_id)


@pytest.fixture
def validated(cli: CliRunner, store: Store, flow: Workflow) -> Workflow:
    """H1 exists and is VALIDATED by the first failed trace."""
    cli.ok(*flow.hypothesis())
    cli.ok(*flow.set_status("VALIDATED", failed_ids(store)[0]))
    return flow


def linked(store: Store, run_id: str) -> set[str]:
    found = store.client().search_traces(locations=[store.experiment_id], run_id=run_id, include_spans=False)
    return {t.info.trace_id for t in found}


def as_json(cli: CliRunner, argv: list[str]) -> Any:
    return cli.ok(*argv, "-o", "json").json()


def test_full_workflow_records_everything_in_mlflow(cli: CliRunner, store: Store, flow: Workflow) -> None:
    census = as_json(cli, ["insights", "get-baseline-census", "-r", flow.run_id])
    assert census["trace_count"] == len(store.traces.traces)  # type: ignore[attr-defined]
    assert census["error_count"] == len(failed_ids(store))

    h1 = as_json(cli, flow.hypothesis())
    assert (h1["id"], h1["status"]) == ("H1", "TESTING")
    bad = failed_ids(store)[0]
    done = as_json(cli, flow.set_status("VALIDATED", bad))
    assert done["status"] == "VALIDATED" and done["history"][0]["from_status"] == "TESTING"
    issue = as_json(cli, flow.issue(bad, severity="HIGH"))
    assert issue["id"] == "I1" and issue["native_issue_id"].startswith("iss-")

    listed = as_json(cli, ["insights", "list-issues"])
    assert [(i["run_id"], i["id"]) for i in listed] == [(flow.run_id, "I1")]
    assert as_json(cli, ["insights", "get-issue", "--issue-id", "I1"])["title"] == TITLE
    shown = as_json(cli, ["insights", "preview-issues", "-r", flow.run_id])[0]["evidence"][0]
    assert (shown["trace_id"], shown["state"]) == (bad, "ERROR")
    assert "order" in shown["request_excerpt"].lower()
    assert linked(store, flow.run_id) == {bad}


def test_native_issue_is_visible_to_mlflow(cli: CliRunner, store: Store, validated: Workflow) -> None:
    from mlflow.tracing.client import TracingClient

    bad = failed_ids(store)[0]
    issue = as_json(cli, validated.issue(bad, severity="CRITICAL"))
    native = TracingClient(store.uri)._get_issue(issue["native_issue_id"])
    assert (native.name, native.source_run_id) == (TITLE, validated.run_id)
    found = store.client().search_traces(
        locations=[store.experiment_id], filter_string=f"issue.id = '{native.issue_id}'"
    )
    assert [t.info.trace_id for t in found] == [bad]
    cli.ok("insights", "update-issue", "-r", validated.run_id, "-I", "I1", "--status", "RESOLVED", "--reason", "ok")
    assert str(TracingClient(store.uri)._get_issue(native.issue_id).status) == "resolved"


def test_creating_twice_is_harmless(cli: CliRunner, flow: Workflow) -> None:
    assert as_json(cli, flow.hypothesis())["id"] == as_json(cli, flow.hypothesis())["id"] == "H1"
    assert len(as_json(cli, ["insights", "list-hypotheses", "-r", flow.run_id])) == 1


def test_no_hypothesis_before_census(cli: CliRunner, run_id: str) -> None:
    message = cli.refused(*Workflow(run_id).hypothesis())
    assert "no baseline census" in message and "create-baseline-census" in message


def test_status_change_needs_evidence(cli: CliRunner, flow: Workflow) -> None:
    cli.ok(*flow.hypothesis())
    assert "needs evidence" in cli.refused(*flow.update("--status", "VALIDATED"))
    assert as_json(cli, flow.get("hypothesis", "H1"))["version"] == 1


def test_validated_needs_supporting_evidence(cli: CliRunner, store: Store, flow: Workflow) -> None:
    cli.ok(*flow.hypothesis())
    message = cli.refused(*flow.set_status("VALIDATED", ok_ids(store)[0], supports=False))
    assert "supporting evidence" in message


def test_rejected_needs_refuting_evidence(cli: CliRunner, store: Store, flow: Workflow) -> None:
    cli.ok(*flow.hypothesis())
    assert "refuting evidence" in cli.refused(*flow.set_status("REJECTED", failed_ids(store)[0]))


def test_evidence_must_be_a_trace_of_the_experiment(cli: CliRunner, store: Store, flow: Workflow) -> None:
    cli.ok(*flow.hypothesis())
    message = cli.refused(*flow.update("--evidence", evidence(UNKNOWN_TRACE)))
    assert "not in experiment" in message and UNKNOWN_TRACE in message
    assert linked(store, flow.run_id) == set()


def test_rejected_hypothesis_stays_closed_until_a_person_reopens_it(
    cli: CliRunner, store: Store, flow: Workflow
) -> None:
    cli.ok(*flow.hypothesis())
    cli.ok(*flow.set_status("REJECTED", ok_ids(store)[0], supports=False))
    message = cli.refused(*flow.update("--evidence", evidence(failed_ids(store)[0])))
    assert "REJECTED" in message and "--reopen" in message
    assert "--reason" in cli.refused(*flow.update("--status", "TESTING", "--reopen"))
    reopened = as_json(cli, flow.update("--status", "TESTING", "--reopen", "--reason", "new traffic since"))
    assert reopened["status"] == "TESTING"
    assert reopened["history"][-1]["reason"] == "new traffic since"


def test_issue_only_from_validated_hypothesis(cli: CliRunner, store: Store, flow: Workflow) -> None:
    cli.ok(*flow.hypothesis())
    message = cli.refused(*flow.issue(failed_ids(store)[0]))
    assert "only from VALIDATED" in message and "TESTING" in message


@pytest.mark.parametrize("title", ["Too short title", "this title has far too many words to be a good title"])
def test_issue_title_length(cli: CliRunner, store: Store, validated: Workflow, title: str) -> None:
    assert "5-8 words" in cli.refused(*validated.issue(failed_ids(store)[0], title=title))


def test_issue_evidence_must_already_be_linked(cli: CliRunner, store: Store, validated: Workflow) -> None:
    other = failed_ids(store)[1]
    message = cli.refused(*validated.issue(other))
    assert "already be linked" in message and other in message
    assert as_json(cli, ["insights", "list-issues", "-r", validated.run_id]) == []


def test_severity_must_be_one_of_four(cli: CliRunner, store: Store, validated: Workflow) -> None:
    message = cli.refused(*validated.issue(failed_ids(store)[0], severity="URGENT"))
    assert "URGENT" in message and "CRITICAL" in message


def test_completed_analysis_is_read_only_until_reopened(cli: CliRunner, flow: Workflow) -> None:
    cli.ok("insights", "update-analysis", "-r", flow.run_id, "--status", "COMPLETED")
    message = cli.refused(*flow.hypothesis())
    assert "COMPLETED" in message and "--status ACTIVE" in message
    cli.refused("insights", "update-analysis", "-r", flow.run_id, "--name", "renamed")
    cli.ok("insights", "update-analysis", "-r", flow.run_id, "--status", "ACTIVE", "--reason", "more to do")
    assert as_json(cli, flow.hypothesis())["id"] == "H1"


def test_stale_expected_version_is_refused(cli: CliRunner, flow: Workflow) -> None:
    cli.ok(*flow.hypothesis())
    cli.ok(*flow.update("--rationale", "sharper"))
    assert "version 2" in cli.refused(*flow.update("--rationale", "stale edit", "--expected-version", "1"))
    assert as_json(cli, flow.get("hypothesis", "H1"))["rationale"] == "sharper"


def test_bad_json_is_refused_with_an_example(cli: CliRunner, flow: Workflow) -> None:
    cli.ok(*flow.hypothesis())
    message = cli.refused(*flow.update("--evidence", "{oops"))
    assert "not valid JSON" in message and "trace_id" in message
    assert "rationale" in cli.refused(*flow.update("--evidence", '{"trace_id": "tr-1"}'))


def test_sql_query_ids_cannot_change_meaning(cli: CliRunner, flow: Workflow) -> None:
    cli.ok(*flow.hypothesis())
    message = cli.refused(*flow.update("--sql-query", '{"id": "Q1", "query": "SELECT 2"}'))
    assert "Q1" in message and "new id" in message


def test_unknown_objects_and_runs(cli: CliRunner, store: Store, flow: Workflow) -> None:
    assert "no hypothesis H9" in cli.refused(*flow.get("hypothesis", "H9"))
    assert "does not exist" in cli.refused("insights", "get-analysis", "-r", "0" * 32)
    plain_run = store.client().create_run(store.experiment_id).info.run_id
    assert "not an analysis run" in cli.refused("insights", "get-analysis", "-r", plain_run)
    assert "no experiment 424242" in cli.refused("insights", "list-analyses", "--experiment-id", "424242")


def test_json_errors_for_scripts(cli: CliRunner, run_id: str) -> None:
    result = cli(*Workflow(run_id).get("hypothesis", "H3"), "-o", "json")
    assert result.exit_code == 2
    assert result.json()["error"]["kind"] == "not_found"


def test_link_traces_refuses_unknown_ids_and_links_nothing(cli: CliRunner, store: Store, run_id: str) -> None:
    real = ok_ids(store)[:2]
    message = cli.refused("runs", "link-traces", "-r", run_id, "-t", real[0], "-t", UNKNOWN_TRACE)
    assert UNKNOWN_TRACE in message and "nothing was linked" in message
    assert linked(store, run_id) == set()
    cli.ok("runs", "link-traces", "-r", run_id, "-t", real[0], "-t", real[1])
    assert linked(store, run_id) == set(real)


def test_status_tags_mirror_documents(cli: CliRunner, store: Store, flow: Workflow) -> None:
    cli.ok(*flow.hypothesis())
    tags = store.client().get_run(flow.run_id).data.tags
    assert tags["insights.analysis"] == "true"
    assert tags["insights.hypothesis.H1.status"] == "TESTING"


def test_hypothesis_behind_an_open_issue_keeps_its_status(cli: CliRunner, store: Store, validated: Workflow) -> None:
    fine = ok_ids(store)[0]
    cli.ok(*validated.issue(failed_ids(store)[0]))
    assert "open issue(s) I1" in cli.refused(*validated.set_status("REJECTED", fine, supports=False))
    cli.ok("insights", "update-issue", "-r", validated.run_id, "-I", "I1", "--status", "REJECTED", "--reason", "dup")
    cli.ok(*validated.set_status("REJECTED", fine, supports=False))


def test_what_people_read_is_rounded_and_counted(cli: CliRunner, validated: Workflow) -> None:
    sql = "SELECT avg(execution_duration_ms) / 7 AS ms FROM traces"
    cli.ok("traces", "execute-sql", "-r", validated.run_id, "-H", "H1", "--sql", sql)
    hypothesis = as_json(cli, [*validated.get("hypothesis", "H1"), "-o", "json"])
    (summary,) = [q["result_summary"] for q in hypothesis["sql_queries"] if q["query"] == sql]
    assert summary.startswith("1 row; first: ms=") and not re.search(r"\d\.\d{4,}", summary)
    shown = cli.ok("traces", "execute-sql", "--sql", sql).stdout
    assert "1 row" in shown and not re.search(r"\d\.\d{4,}", shown)
    exact = cli.ok("traces", "execute-sql", "--sql", sql, "-o", "json").json()["result"]["rows"][0][0]
    assert re.search(r"\.\d{4,}", repr(exact))  # JSON keeps full precision
    assert "`insights list-hypotheses`" in cli.refused(*validated.get("hypothesis", "H9"))
