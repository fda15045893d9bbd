"""Run cases: each in a fresh store (a copy of one migrated template), the whole graph with automatic
approval, then scores. Results are printed, written as JSON and logged as MLflow runs to compare."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analyze_experiment.agent.core.services import Services
from analyze_experiment.agent.core.settings import Settings
from analyze_experiment.evals.cases import Case, Expected, Problem
from analyze_experiment.evals.scorers import Scores, score
from analyze_experiment.evals.summary import Summary

EVAL_EXPERIMENT = "analyze-experiment-evals"


class CaseRunner:
    def __init__(
        self,
        settings: Settings,
        workdir: Path,
        model: str = "offline",
        *,
        record: Path | None = None,
        replay: Path | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.workdir = workdir
        self.model = model
        self.record, self.replay = record, replay
        self.on_event = on_event
        self._template: Path | None = None
        _unsynced_sqlite(workdir)

    def run_all(
        self, cases: list[Case], jobs: int = 1, on_done: Callable[[Scores], None] | None = None
    ) -> list[Scores]:
        """Cases are independent (a store each), so they run in parallel processes; results keep case order."""
        if jobs <= 1 or len(cases) <= 1:
            results = []
            for case in cases:
                results.append(self.run(case))
                if on_done:
                    on_done(results[-1])
            return results
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        self._ensure_template()
        spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked MLflow or SQLite state
        with ProcessPoolExecutor(max_workers=jobs, mp_context=spawn) as pool:
            futures = {
                pool.submit(
                    _run_one, self.settings, self.workdir, self.model, self.record, self.replay, self._template, case
                ): i
                for i, case in enumerate(cases)
            }
            done: dict[int, Scores] = {}
            for future in as_completed(futures):
                done[futures[future]] = future.result()
                if on_done:
                    on_done(done[futures[future]])
        return [done[i] for i in range(len(cases))]

    def run(self, case: Case) -> Scores:
        if case.source == "experiment":
            services = Services(self.settings)
            experiment_id, expected = str(case.experiment_id), case.expected or Expected()
            case_dir = self.workdir / _slug(case.name)
        else:
            case_dir = self.workdir / _slug(case.name)
            services = self._fresh_runtime(case_dir)
            experiment_id, expected = self._load(services, case)
        started = time.perf_counter()
        run_id, report = self._analyse(services, experiment_id, case_dir / "report.md", _slug(case.name))
        return score(
            services,
            run_id,
            expected,
            case=case.name,
            model=self.model,
            wall_s=time.perf_counter() - started,
            report=report,
            source=case.source,
        )

    def _analyse(self, services: Services, experiment_id: str, report: Path, name: str) -> tuple[str, Path | None]:
        from analyze_experiment.agent.app.session import AnalysisSession, RunOptions
        from analyze_experiment.agent.core.approvals import ApprovalDecision
        from analyze_experiment.agent.core.errors import UserError
        from analyze_experiment.agent.core.llm_replay import ReplayTransport, http_client

        client = http_client(
            self.record / name if self.record else None, self.replay / name if self.replay else None, services.redact
        )
        session = AnalysisSession(services, on_event=self.on_event, llm_http_client=client)
        try:
            outcome = session.start(RunOptions(experiment_id=experiment_id, model=self.model, report_path=str(report)))
            while outcome.pending is not None:
                outcome = session.resume(outcome.thread_id, ApprovalDecision(by="eval"))
        except Exception as failed:
            transport = getattr(client, "_transport", None)
            if isinstance(transport, ReplayTransport) and transport.misses:
                raise UserError(transport.misses[0]) from failed  # say which request, not "404"
            raise
        assert outcome.run_id is not None
        return outcome.run_id, Path(outcome.report) if outcome.report else None

    def _load(self, services: Services, case: Case) -> tuple[str, Expected]:
        from analyze_experiment.agent.simulation.recordings import load_recording
        from analyze_experiment.agent.simulation.scenarios import log_scenario

        if case.source in {"random", "control"}:
            return self._load_draw(services, case)
        assert case.scenario is not None
        if case.source == "recording":
            assert case.expected is not None
            return load_recording(services.client, case.scenario), case.expected
        experiment_id = services.client.create_experiment(f"held-out-{_slug(case.name)}")
        run = log_scenario(services.client, experiment_id, case.scenario, case.traces or 200, case.seed or 0)
        truth = run.expected()
        problems = [
            Problem(kind=p["kind"], strength=p["strength"], affected_trace_ids=p["affected_trace_ids"])
            for p in truth["problems"]
        ]
        return experiment_id, Expected(traces=len(run.trace_ids()), errors=len(run.failed_ids()), problems=problems)

    def _load_draw(self, services: Services, case: Case) -> tuple[str, Expected]:
        from analyze_experiment.evals.cases import RANDOM_TRACES
        from analyze_experiment.evals.generators.random_agents import log_draw

        assert case.seed is not None
        experiment_id = services.client.create_experiment(_slug(case.name))
        made = log_draw(
            services.client, experiment_id, case.seed, case.traces or RANDOM_TRACES, control=case.source == "control"
        )
        return experiment_id, Expected.model_validate(made.expected())

    def _fresh_runtime(self, case_dir: Path) -> Services:
        """A store of its own per case; MLflow's migrations run once, for the template."""
        from analyze_experiment.agent.core.settings import load_settings

        template = self._ensure_template()
        case_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, case_dir / "mlflow.db")
        environ = {
            "ANALYZE_EXPERIMENT_HOME": str(case_dir),
            "MLFLOW_TRACKING_URI": f"sqlite:///{case_dir / 'mlflow.db'}",
        }
        if self.settings.openai_api_key:
            environ["OPENAI_API_KEY"] = self.settings.openai_api_key.get_secret_value()
        if self.settings.openai_base_url:
            environ["OPENAI_BASE_URL"] = self.settings.openai_base_url
        return Services(load_settings(environ))

    def _ensure_template(self) -> Path:
        if self._template is None:
            from mlflow import MlflowClient

            self._template = self.workdir / "template.db"
            self.workdir.mkdir(parents=True, exist_ok=True)
            MlflowClient(f"sqlite:///{self._template}").search_experiments()
        return self._template


def _run_one(
    settings: Settings,
    workdir: Path,
    model: str,
    record: Path | None,
    replay: Path | None,
    template: Path | None,
    case: Case,
) -> Scores:
    runner = CaseRunner(settings, workdir, model, record=record, replay=replay)
    runner._template = template
    return runner.run(case)


_UNSYNCED: set[Path] = set()


def _unsynced_sqlite(workdir: Path) -> None:
    """The case stores are copies thrown away after the run, so SQLite need not wait for the disk at each
    commit there (MLflow commits once per assessment, hypothesis, link...): a draw loads several times
    faster. Stores anywhere else, the user's own included, keep SQLite's defaults."""
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not _UNSYNCED:

        @event.listens_for(Engine, "connect")
        def _connect(connection: Any, _record: Any) -> None:
            if not isinstance(connection, sqlite3.Connection):
                return
            files = [
                Path(row[2]).resolve()
                for row in connection.execute("PRAGMA database_list")
                if row[1] == "main" and row[2]
            ]
            if any(file.is_relative_to(root) for file in files for root in _UNSYNCED):
                connection.execute("PRAGMA synchronous=OFF")

    _UNSYNCED.add(workdir.resolve())


def log_scores(services: Services, results: list[Scores], version: str, summary: Summary | None = None) -> str:
    """One MLflow run per case in the eval experiment, plus one for the pooled scores of the random draws
    and controls (case `pooled`), so analyst versions compare side by side."""
    client = services.client
    existing = client.get_experiment_by_name(EVAL_EXPERIMENT)
    experiment_id = existing.experiment_id if existing else client.create_experiment(EVAL_EXPERIMENT)
    for result in results:
        run = client.create_run(
            experiment_id,
            run_name=f"{result.case} {result.model}",
            tags={"eval.case": result.case, "eval.model": result.model, "eval.version": version},
        )
        for key, value in _metrics(result).items():
            client.log_metric(run.info.run_id, key, value)
        client.log_dict(run.info.run_id, result.model_dump(mode="json"), "scores.json")
        client.set_terminated(run.info.run_id)
    if summary is not None and (summary.random_draws or summary.controls):
        model = results[0].model if results else ""
        run = client.create_run(
            experiment_id,
            run_name=f"pooled {model}",
            tags={"eval.case": "pooled", "eval.model": model, "eval.version": version},
        )
        for key, value in _pooled_metrics(summary).items():
            client.log_metric(run.info.run_id, key, value)
        client.log_dict(run.info.run_id, summary.model_dump(mode="json"), "summary.json")
        client.set_terminated(run.info.run_id)
    return experiment_id


def _pooled_metrics(summary: Summary) -> dict[str, float]:
    values: dict[str, float | None] = {
        "pooled_recall": summary.recall,
        "pooled_precision": summary.precision,
        "pooled_evidence_precision": summary.evidence_precision,
        "weak_found": float(summary.weak_found),
        "weak": float(summary.weak),
        "false_issues_per_control": summary.false_issues_per_control,
        "violations": float(summary.violations),
        **{f"recall.{row.family}": row.recall for row in summary.by_outcome + summary.by_cause},
        **{f"precision.{row.family}": row.precision for row in summary.by_outcome + summary.by_cause},
    }
    return {_metric_name(k): float(v) for k, v in values.items() if v is not None}


def _metric_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-/ ]+", "_", key)


def _metrics(result: Scores) -> dict[str, float]:
    values: dict[str, float | None] = {
        "issue_recall": result.issue_recall,
        "issue_precision": result.issue_precision,
        "evidence_precision": result.evidence_precision,
        "violations": float(len(result.violations)),
        "census_exact": None if result.census_exact is None else float(result.census_exact),
        "llm_calls": float(result.llm_calls),
        "tokens": float(result.tokens),
        "cost_usd": result.cost_usd,
        "wall_s": result.wall_s,
        **{f"hypotheses_{k}": float(v) for k, v in result.hypotheses.items()},
    }
    return {k: float(v) for k, v in values.items() if v is not None}


def analyst_version() -> str:
    import subprocess
    from importlib.metadata import version

    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        sha = ""
    return version("analyze-experiment") + (f"+{sha}" if sha else "")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
