"""A decision being assembled from clicks, kept on disk until "Approve and continue" submits it.

Several clicks (and several `slack serve` worker threads) touch one draft, so every change is a
read-modify-write under a lock, written atomically. `submitted` turns a second click on "continue"
into "already decided" even while the first is still resuming the analysis.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from analyze_experiment.agent.core.approvals import ApprovalDecision, ApprovalRequest

_LOCK = threading.Lock()


class Draft(BaseModel):
    request: ApprovalRequest
    decision: ApprovalDecision
    channel: str
    ts: str
    root_ts: str
    submitted: bool = False


class Drafts:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def save(self, draft: Draft) -> None:
        with _LOCK:
            self._write(draft)

    def get(self, thread: str, stage: str) -> Draft | None:
        path = self._path(thread, stage)
        return Draft.model_validate_json(path.read_text()) if path.exists() else None

    def change(self, thread: str, stage: str, edit: Callable[[Draft], bool]) -> Draft | None:
        """Apply `edit` (which returns False to refuse) atomically; None when there is no such draft."""
        with _LOCK:
            draft = self.get(thread, stage)
            if draft is None or not edit(draft):
                return None
            self._write(draft)
            return draft

    def root(self, thread: str) -> tuple[str, str] | None:
        """The channel and the first message of a thread's approvals, where progress is posted."""
        latest = sorted(self.directory.glob(f"{thread}--*.json"), key=lambda p: p.stat().st_mtime)
        if not latest:
            return None
        draft = Draft.model_validate_json(latest[0].read_text())
        return draft.channel, draft.root_ts

    def _write(self, draft: Draft) -> None:
        path = self._path(draft.request.thread_id, draft.request.stage)
        scratch = path.with_suffix(".tmp")
        scratch.write_text(json.dumps(draft.model_dump(mode="json")))
        scratch.replace(path)

    def _path(self, thread: str, stage: str) -> Path:
        return self.directory / f"{thread}--{stage}.json"
