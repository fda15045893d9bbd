"""Named points where the reliability tests make this process die or wait, at an exact step.

Off unless `ANALYZE_EXPERIMENT_FAILPOINTS` names some: a comma-separated list of
`point[@node][#hit]=action`, for example `documents.claim@record_hypotheses#2=kill` (the second time
a document is about to be claimed while the record_hypotheses node runs: SIGKILL, the same as an
outside `kill -9`). Actions: `kill`, and `pause`, which creates `<point>.reached` in
`ANALYZE_EXPERIMENT_FAILPOINT_DIR` and waits until `<point>.go` appears there (a test stops the
tracking server in between). Reaching a point costs one environment lookup when none are set.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

ENV = "ANALYZE_EXPERIMENT_FAILPOINTS"
DIR_ENV = "ANALYZE_EXPERIMENT_FAILPOINT_DIR"
PAUSE_LIMIT_S = 600.0

_node: ContextVar[str] = ContextVar("failpoint_node", default="")
_hits: Counter[str] = Counter()
_lock = threading.Lock()


def reach(point: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    node = _node.get()
    for entry in spec.split(","):
        target, _, action = entry.strip().partition("=")
        where, _, nth = target.partition("#")
        name, _, in_node = where.partition("@")
        if name != point or (in_node and in_node != node):
            continue
        with _lock:
            _hits[target] += 1
            due = _hits[target] == int(nth or 1)
        if due:
            _act(point, action)


@contextmanager
def inside(node: str) -> Iterator[None]:
    """Mark the graph node running on this thread, so points can be aimed at one phase."""
    token = _node.set(node)
    try:
        reach(f"node.{node}")
        yield
    finally:
        _node.reset(token)


def _act(point: str, action: str) -> None:
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "pause":
        folder = Path(os.environ.get(DIR_ENV, "."))
        (folder / f"{point}.reached").touch()
        deadline = time.monotonic() + PAUSE_LIMIT_S
        while not (folder / f"{point}.go").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
