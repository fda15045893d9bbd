"""The seed's workflow through the real CLI on a real SQLite store, and every refusal on the way."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Store
from tests.helpers import CliRunner


def evidence(trace_id: str, supports: bool = True, rationale: str = "seen in the span tree") -> str:
    return json.dumps({"trace_id": trace_id, "rationale": rationale, "supports": supports})


@pytest.fixture
def run_id(cli: CliRunner) -> str:
    created = cli.ok("insights", "create-analysis", "--name", "Support quality", "-o", "json").json()
    return str(created["run_id"])


@pytest.fixture
def with_census(cli: CliRunner, run_id: str) -> str:
    cli.ok("insights", "create-baseline-census", "--run-id", run_id)
    return run_id


def hypothesis(cli: CliRunner, run_id: str, statement: str = "lookup_order times out") -> dict:
    return cli.ok(
        "insights",
        "create-hypothesis",
        "-r",
        run_id,
        "--statement",
        statement,
        "--rationale",
        "census shows tool errors",
        "--testing-plan",
        "Q1 counts errors per tool",
        "--sql-query",
        '{"id": "Q1", "query": "SELECT 1"}',
        "-o",
        "json",
    ).json()


def failed_ids(store: Store) -> list[str]:
    return store.traces.ids(failed=True)  # type: ignore[attr-defined]


def ok_ids(store: Store) -> list[str]:
    return store.traces.ids(failed=False)  # type: ignore[attr-defined]


def test_full_workflow_records_everything_in_mlflow(cli: CliRunner, store: Store, with_census: str) -> None:
    run_id = with_census
    census = cli.ok("insights", "get-baseline-census", "-r", run_id, "-o", "json").json()
    assert census["trace_count"] == len(store.traces.traces)  # type: ignore[attr-defined]
    assert census["error_count"] == len(failed_ids(store))

    h1 = hypothesis(cli, run_id)
    assert (h1["id"], h1["status"]) == ("H1", "TESTING")
    bad = failed_ids(store)[0]
    validated = cli.ok(
        "insights",
        "update-hypothesis",
        "-r",
        run_id,
        "-H",
        "H1",
        "--status",
        "VALIDATED",
        "--evidence",
        evidence(bad),
        "-o",
        "json",
    ).json()
    assert validated["status"] == "VALIDATED"
    assert validated["history"][0]["from_status"] == "TESTING"
    issue = cli.ok(
        "insights",
        "create-issue",
        "-r",
        run_id,
        "-H",
        "H1",
        "--severity",
        "HIGH",
        "--title",
        "Order lookup tool times out often",
        "--description",
        "7 of 40 traces fail",
        "--evidence",
        evidence(bad),
        "-o",
        "json",
    ).json()
    assert issue["id"] == "I1" and issue["native_issue_id"].startswith("iss-")

    listed = cli.ok("insights", "list-issues", "-o", "json").json()
    assert [(i["run_id"], i["id"]) for i in listed] == [(run_id, "I1")]
    fetched = cli.ok("insights", "get-issue", "--issue-id", "I1", "-o", "json").json()
    assert fetched["title"] == "Order lookup tool times out often"
    preview = cli.ok("insights", "preview-issues", "-r", run_id, "-o", "json").json()
    assert preview[0]["evidence"][0]["trace_id"] == bad
    assert preview[0]["evidence"][0]["state"] == "ERROR"
    assert "order" in preview[0]["evidence"][0]["request_excerpt"].lower()

    linked = store.client().search_traces(locations=[store.experiment_id], run_id=run_id, include_spans=False)
    assert {t.info.trace_id for t in linked} == {bad}


def test_native_issue_is_visible_to_mlflow(cli: CliRunner, store: Store, with_census: str) -> None:
    run_id = with_census
    hypothesis(cli, run_id)
    bad = failed_ids(store)[0]
    cli.ok(
        "insights", "update-hypothesis", "-r", run_id, "-H", "H1", "--status", "VALIDATED", "--evidence", evidence(bad)
    )
    issue = cli.ok(
        "insights",
        "create-issue",
        "-r",
        run_id,
        "-H",
        "H1",
        "--severity",
        "CRITICAL",
        "--title",
        "Order lookup tool times out often",
        "--description",
        "d",
        "--evidence",
        evidence(bad),
        "-o",
        "json",
    ).json()
    from mlflow.tracing.client import TracingClient

    native = TracingClient(store.uri)._get_issue(issue["native_issue_id"])
    assert native.name == "Order lookup tool times out often"
    assert native.source_run_id == run_id
    found = store.client().search_traces(
        locations=[store.experiment_id], filter_string=f"issue.id = '{native.issue_id}'"
    )
    assert [t.info.trace_id for t in found] == [bad]
    cli.ok("insights", "update-issue", "-r", run_id, "-I", "I1", "--status", "RESOLVED", "--reason", "fixed")
    assert str(TracingClient(store.uri)._get_issue(native.issue_id).status) == "resolved"


def test_creating_twice_is_harmless(cli: CliRunner, with_census: str) -> None:
    first = hypothesis(cli, with_census)
    again = hypothesis(cli, with_census)
    assert again["id"] == first["id"] == "H1"
    listed = cli.ok("insights", "list-hypotheses", "-r", with_census, "-o", "json").json()
    assert len(listed) == 1


def test_no_hypothesis_before_census(cli: CliRunner, run_id: str) -> None:
    message = cli.refused(
        "insights", "create-hypothesis", "-r", run_id, "--statement", "s", "--rationale", "r", "--testing-plan", "p"
    )
    assert "no baseline census" in message and "create-baseline-census" in message


def test_status_change_needs_evidence(cli: CliRunner, with_census: str) -> None:
    hypothesis(cli, with_census)
    message = cli.refused("insights", "update-hypothesis", "-r", with_census, "-H", "H1", "--status", "VALIDATED")
    assert "needs evidence" in message
    assert cli.ok("insights", "get-hypothesis", "-r", with_census, "-H", "H1", "-o", "json").json()["version"] == 1


def test_validated_needs_supporting_evidence(cli: CliRunner, store: Store, with_census: str) -> None:
    hypothesis(cli, with_census)
    message = cli.refused(
        "insights",
        "update-hypothesis",
        "-r",
        with_census,
        "-H",
        "H1",
        "--status",
        "VALIDATED",
        "--evidence",
        evidence(ok_ids(store)[0], supports=False),
    )
    assert "supporting evidence" in message


def test_rejected_needs_refuting_evidence(cli: CliRunner, store: Store, with_census: str) -> None:
    hypothesis(cli, with_census)
    message = cli.refused(
        "insights",
        "update-hypothesis",
        "-r",
        with_census,
        "-H",
        "H1",
        "--status",
        "REJECTED",
        "--evidence",
        evidence(failed_ids(store)[0], supports=True),
    )
    assert "refuting evidence" in message


def test_evidence_must_be_a_trace_of_the_experiment(cli: CliRunner, store: Store, with_census: str) -> None:
    hypothesis(cli, with_census)
    message = cli.refused(
        "insights",
        "update-hypothesis",
        "-r",
        with_census,
        "-H",
        "H1",
        "--evidence",
        evidence("tr-00000000000000000000000000000000"),
    )
    assert "not in experiment" in message and "tr-00000000000000000000000000000000" in message
    linked = store.client().search_traces(locations=[store.experiment_id], run_id=with_census)
    assert len(linked) == 0


def test_rejected_hypothesis_stays_closed_until_a_person_reopens_it(
    cli: CliRunner, store: Store, with_census: str
) -> None:
    hypothesis(cli, with_census)
    cli.ok(
        "insights",
        "update-hypothesis",
        "-r",
        with_census,
        "-H",
        "H1",
        "--status",
        "REJECTED",
        "--evidence",
        evidence(ok_ids(store)[0], supports=False),
    )
    message = cli.refused(
        "insights", "update-hypothesis", "-r", with_census, "-H", "H1", "--evidence", evidence(failed_ids(store)[0])
    )
    assert "REJECTED" in message and "--reopen" in message
    message = cli.refused(
        "insights", "update-hypothesis", "-r", with_census, "-H", "H1", "--status", "TESTING", "--reopen"
    )
    assert "--reason" in message
    reopened = cli.ok(
        "insights",
        "update-hypothesis",
        "-r",
        with_census,
        "-H",
        "H1",
        "--status",
        "TESTING",
        "--reopen",
        "--reason",
        "new traffic since",
        "-o",
        "json",
    ).json()
    assert reopened["status"] == "TESTING"
    assert reopened["history"][-1]["reason"] == "new traffic since"


def test_issue_only_from_validated_hypothesis(cli: CliRunner, store: Store, with_census: str) -> None:
    hypothesis(cli, with_census)
    message = cli.refused(
        "insights",
        "create-issue",
        "-r",
        with_census,
        "-H",
        "H1",
        "--severity",
        "LOW",
        "--title",
        "Order lookup tool times out often",
        "--description",
        "d",
        "--evidence",
        evidence(failed_ids(store)[0]),
    )
    assert "only from VALIDATED" in message and "TESTING" in message


@pytest.mark.parametrize("title", ["Too short title", "this title has far too many words to be a good title"])
def test_issue_title_length(cli: CliRunner, store: Store, with_census: str, title: str) -> None:
    bad = failed_ids(store)[0]
    hypothesis(cli, with_census)
    cli.ok(
        "insights",
        "update-hypothesis",
        "-r",
        with_census,
        "-H",
        "H1",
        "--status",
        "VALIDATED",
        "--evidence",
        evidence(bad),
    )
    message = cli.refused(
        "insights",
        "create-issue",
        "-r",
        with_census,
        "-H",
        "H1",
        "--severity",
        "LOW",
        "--title",
        title,
        "--description",
        "d",
        "--evidence",
        evidence(bad),
    )
    assert "5-8 words" in message


def test_issue_evidence_must_already_be_linked(cli: CliRunner, store: Store, with_census: str) -> None:
    bad, other = failed_ids(store)[:2]
    hypothesis(cli, with_census)
    cli.ok(
        "insights",
        "update-hypothesis",
        "-r",
        with_census,
        "-H",
        "H1",
        "--status",
        "VALIDATED",
        "--evidence",
        evidence(bad),
    )
    message = cli.refused(
        "insights",
        "create-issue",
        "-r",
        with_census,
        "-H",
        "H1",
        "--severity",
        "LOW",
        "--title",
        "Order lookup tool times out often",
        "--description",
        "d",
        "--evidence",
        evidence(other),
    )
    assert "already be linked" in message and other in message
    assert cli.ok("insights", "list-issues", "-r", with_census, "-o", "json").json() == []


def test_severity_must_be_one_of_four(cli: CliRunner, with_census: str) -> None:
    message = cli.refused(
        "insights",
        "create-issue",
        "-r",
        with_census,
        "-H",
        "H1",
        "--severity",
        "URGENT",
        "--title",
        "t",
        "--description",
        "d",
    )
    assert "URGENT" in message and "CRITICAL" in message


def test_completed_analysis_is_read_only_until_reopened(cli: CliRunner, with_census: str) -> None:
    cli.ok("insights", "update-analysis", "-r", with_census, "--status", "COMPLETED")
    message = cli.refused(
        "insights",
        "create-hypothesis",
        "-r",
        with_census,
        "--statement",
        "s",
        "--rationale",
        "r",
        "--testing-plan",
        "p",
    )
    assert "COMPLETED" in message and "--status ACTIVE" in message
    cli.refused("insights", "update-analysis", "-r", with_census, "--name", "renamed")
    cli.ok("insights", "update-analysis", "-r", with_census, "--status", "ACTIVE", "--reason", "more to do")
    assert hypothesis(cli, with_census)["id"] == "H1"


def test_stale_expected_version_is_refused(cli: CliRunner, with_census: str) -> None:
    hypothesis(cli, with_census)
    cli.ok("insights", "update-hypothesis", "-r", with_census, "-H", "H1", "--rationale", "sharper")
    message = cli.refused(
        "insights",
        "update-hypothesis",
        "-r",
        with_census,
        "-H",
        "H1",
        "--rationale",
        "stale edit",
        "--expected-version",
        "1",
    )
    assert "version 2" in message
    current = cli.ok("insights", "get-hypothesis", "-r", with_census, "-H", "H1", "-o", "json").json()
    assert current["rationale"] == "sharper"


def test_bad_json_is_refused_with_an_example(cli: CliRunner, with_census: str) -> None:
    hypothesis(cli, with_census)
    message = cli.refused("insights", "update-hypothesis", "-r", with_census, "-H", "H1", "--evidence", "{oops")
    assert "not valid JSON" in message and "trace_id" in message
    message = cli.refused(
        "insights", "update-hypothesis", "-r", with_census, "-H", "H1", "--evidence", '{"trace_id": "tr-1"}'
    )
    assert "rationale" in message


def test_sql_query_ids_cannot_change_meaning(cli: CliRunner, with_census: str) -> None:
    hypothesis(cli, with_census)
    message = cli.refused(
        "insights",
        "update-hypothesis",
        "-r",
        with_census,
        "-H",
        "H1",
        "--sql-query",
        '{"id": "Q1", "query": "SELECT 2"}',
    )
    assert "Q1" in message and "new id" in message


def test_unknown_objects_and_runs(cli: CliRunner, store: Store, with_census: str) -> None:
    assert "no hypothesis H9" in cli.refused("insights", "get-hypothesis", "-r", with_census, "-H", "H9")
    assert "does not exist" in cli.refused("insights", "get-analysis", "-r", "0" * 32)
    plain_run = store.client().create_run(store.experiment_id).info.run_id
    assert "not an analysis run" in cli.refused("insights", "get-analysis", "-r", plain_run)
    assert "does not exist" in cli.refused("insights", "list-analyses", "--experiment-id", "424242")


def test_json_errors_for_scripts(cli: CliRunner, run_id: str) -> None:
    result = cli("insights", "get-hypothesis", "-r", run_id, "-H", "H3", "-o", "json")
    assert result.exit_code == 2
    assert result.json()["error"]["kind"] == "not_found"


def test_link_traces_refuses_unknown_ids_and_links_nothing(cli: CliRunner, store: Store, run_id: str) -> None:
    real = ok_ids(store)[:2]
    message = cli.refused(
        "runs", "link-traces", "-r", run_id, "-t", real[0], "-t", "tr-ffffffffffffffffffffffffffffffff"
    )
    assert "tr-ffffffffffffffffffffffffffffffff" in message and "nothing was linked" in message
    assert len(store.client().search_traces(locations=[store.experiment_id], run_id=run_id)) == 0
    cli.ok("runs", "link-traces", "-r", run_id, "-t", real[0], "-t", real[1])
    linked = store.client().search_traces(locations=[store.experiment_id], run_id=run_id)
    assert {t.info.trace_id for t in linked} == set(real)


def test_status_tags_mirror_documents(cli: CliRunner, store: Store, with_census: str) -> None:
    hypothesis(cli, with_census)
    tags = store.client().get_run(with_census).data.tags
    assert tags["insights.analysis"] == "true"
    assert tags["insights.hypothesis.H1.status"] == "TESTING"


def test_hypothesis_behind_an_open_issue_keeps_its_status(cli: CliRunner, store: Store, with_census: str) -> None:
    bad, fine = failed_ids(store)[0], ok_ids(store)[0]
    hypothesis(cli, with_census)
    cli.ok(
        "insights",
        "update-hypothesis",
        "-r",
        with_census,
        "-H",
        "H1",
        "--status",
        "VALIDATED",
        "--evidence",
        evidence(bad),
    )
    cli.ok(
        "insights",
        "create-issue",
        "-r",
        with_census,
        "-H",
        "H1",
        "--severity",
        "LOW",
        "--title",
        "Order lookup tool times out often",
        "--description",
        "d",
        "--evidence",
        evidence(bad),
    )
    message = cli.refused(
        "insights",
        "update-hypothesis",
        "-r",
        with_census,
        "-H",
        "H1",
        "--status",
        "REJECTED",
        "--evidence",
        evidence(fine, supports=False),
    )
    assert "open issue(s) I1" in message
    cli.ok("insights", "update-issue", "-r", with_census, "-I", "I1", "--status", "REJECTED", "--reason", "dup")
    cli.ok(
        "insights",
        "update-hypothesis",
        "-r",
        with_census,
        "-H",
        "H1",
        "--status",
        "REJECTED",
        "--evidence",
        evidence(fine, supports=False),
    )
