"""Instructions aimed at an analysing agent, inside trace content: reported, never obeyed.

The discovery engine compares outcomes across slices; text that tries to steer whoever reads the
traces is no outcome of the traced agent, so it needs a question of its own (docs/architecture.md).
"""

from __future__ import annotations

from analyze_experiment.agent.core.insights.models import Category, Census
from analyze_experiment.graphs.analysts.base import HypothesisDraft
from analyze_experiment.tools.protocols import AnalysisTools

MIN_TRACES = 3
# Phrases that address a model rather than the user: the common prompt-injection openers.
PATTERN = (
    "(?i)((ignore|disregard|forget) (all |any )?(the )?(previous|prior|above|earlier) instructions|"
    "(any|an|the) (ai|llm|model|assistant|agent) (analy[sz]ing|reading|reviewing))"
)
SQL = (
    f"SELECT trace_id FROM traces WHERE request rlike '{PATTERN}' OR response rlike '{PATTERN}' "
    f"OR exists(spans, s -> s.attributes['mlflow.spanOutputs'] rlike '{PATTERN}')"
)


def injection_draft(tools: AnalysisTools, census: Census) -> HypothesisDraft | None:
    found = tools.execute_sql(f"SELECT count(*) AS n FROM ({SQL}) hits", record=False).rows[0][0]
    if int(found or 0) < MIN_TRACES:
        return None
    return HypothesisDraft(
        statement="Traces carry instructions aimed at AI agents that read them",
        rationale=(
            f"Signal: prompt_injection. {found} of {census.trace_count} traces contain text addressed to a "
            "model (ignore previous instructions, ...) in the request, the response or a span's output; "
            "census Q1 counts the traces."
        ),
        testing_plan=(
            "1. Q1 selects the traces whose request, response or span outputs carry injection phrases. "
            "2. Read three of them and quote where the text sits. Validate when three or more match."
        ),
        sql=SQL,
        category=Category.QUALITY,
    )
