"""`ToolSource`, one per process: opens analyses and binds toolboxes, which share the synced traces table."""

from __future__ import annotations

import threading
from collections.abc import Callable

from analyze_experiment.agent.core.errors import NotFoundError
from analyze_experiment.agent.core.insights.models import Analysis
from analyze_experiment.agent.core.services import Services
from analyze_experiment.agent.core.traces.engine import SqlEngine
from analyze_experiment.tools.budget import Budget
from analyze_experiment.tools.events import EventSink, ToolEvent, ignore
from analyze_experiment.tools.toolbox import Toolbox


class Workbench:
    def __init__(
        self, services: Services, engine: str | None = None, on_sync: Callable[[int], None] | None = None
    ) -> None:
        self._services = services
        self._engine = engine
        self._on_sync = on_sync
        self._tables: dict[str, SqlEngine] = {}
        self._lock = threading.Lock()

    def table(self, experiment_id: str, refresh: bool = False) -> SqlEngine:
        """Synced once per process: the census and every test see the same snapshot of the traces."""
        with self._lock:
            if refresh or experiment_id not in self._tables:
                self._tables[experiment_id] = self._services.traces_table(
                    experiment_id, on_traces=self._on_sync, engine=self._engine
                )
            return self._tables[experiment_id]

    def tools_for(
        self,
        experiment_id: str,
        run_id: str,
        *,
        on_event: EventSink = ignore,
        budget: Budget | None = None,
        hypothesis_id: str | None = None,
    ) -> Toolbox:
        return Toolbox(
            self._services,
            experiment_id,
            run_id,
            lambda: self.table(experiment_id),
            on_event=on_event,
            budget=budget,
            hypothesis_id=hypothesis_id,
        )

    def require_traces(self, experiment_id: str) -> None:
        if not self._services.traces.search(experiment_id, max_results=1).traces:
            raise NotFoundError(
                f"experiment {experiment_id} has no traces to analyse; check --experiment-id "
                "(`analyze-experiment traces search --experiment-id ...`) or try `run --demo`"
            )

    def open_analysis(
        self,
        experiment_id: str,
        thread_id: str,
        name: str,
        focus: list[str],
        on_event: EventSink = ignore,
        outcomes: dict[str, str] | None = None,
    ) -> Analysis:
        """Find the thread's analysis or create it; checks first that the experiment has traces."""
        insights = self._services.insights
        existing = insights.find_analysis(experiment_id, thread_id)
        if existing is not None:
            return existing
        self.require_traces(experiment_id)
        on_event(ToolEvent(kind="write", text=f"create analysis run in experiment {experiment_id}"))
        return insights.create_analysis(experiment_id, name, thread_id=thread_id, focus=focus, outcomes=outcomes)
