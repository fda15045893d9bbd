"""Previews of hypotheses and issues: each item with excerpts of its evidence traces."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from analyze_experiment.agent.core.insights.models import Evidence
from analyze_experiment.agent.core.traces.links import TraceLinks
from analyze_experiment.agent.core.traces.views import truncate

EXCERPT_CHARS = 200


class EvidencePreview(BaseModel):
    trace_id: str
    supports: bool
    rationale: str
    state: str | None = None
    request_excerpt: str | None = None
    response_excerpt: str | None = None


class ItemHeader(BaseModel):
    kind: str
    id: str
    run_id: str
    title: str
    status: str


class ItemPreview(ItemHeader):
    evidence: list[EvidencePreview]
    evidence_not_shown: int = 0


class PreviewItem(ItemHeader):
    """What a preview needs of a hypothesis or an issue."""

    evidence: list[Evidence]


def build_previews(
    links: TraceLinks, experiment_id: str, items: Sequence[PreviewItem], max_traces: int
) -> list[ItemPreview]:
    """Show evidence in item order until `max_traces` traces have been shown in all."""
    budget = max_traces
    shown: list[tuple[PreviewItem, list[Evidence]]] = []
    for item in items:
        take = item.evidence[: max(budget, 0)]
        budget -= len(take)
        shown.append((item, take))
    infos = links.infos(experiment_id, {e.trace_id for _, take in shown for e in take})
    previews = []
    for item, take in shown:
        evidence = []
        for entry in take:
            info = infos.get(entry.trace_id)
            evidence.append(
                EvidencePreview(
                    trace_id=entry.trace_id,
                    supports=entry.supports,
                    rationale=entry.rationale,
                    state=None if info is None else str(getattr(info.state, "value", info.state)),
                    request_excerpt=None if info is None else truncate(info.request_preview, EXCERPT_CHARS),
                    response_excerpt=None if info is None else truncate(info.response_preview, EXCERPT_CHARS),
                )
            )
        previews.append(
            ItemPreview(
                **item.model_dump(exclude={"evidence"}),
                evidence=evidence,
                evidence_not_shown=len(item.evidence) - len(take),
            )
        )
    return previews
