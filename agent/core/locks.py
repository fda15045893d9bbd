"""Cross-process locks on files: one process at a time per analysis thread, and per traces table sync.

Two people resuming the same paused thread at once would both read the same pending approval and
both apply a decision; the second would answer an approval that was no longer open. An exclusive,
non-blocking `flock` on a file per thread makes the second one stop with a plain message. The kernel
drops the lock when its process dies, so a killed process never leaves a thread locked.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from analyze_experiment.agent.core.errors import UserError


class ThreadBusy(UserError):
    kind = "thread_busy"


@contextmanager
def file_lock(path: Path, *, wait: bool = True) -> Iterator[None]:
    """An exclusive `flock` on `path`; without `wait`, BlockingIOError when another holder has it.

    Each call opens the file afresh, so two threads of one process exclude each other as well."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)


@contextmanager
def thread_lock(home: Path, thread_id: str) -> Iterator[None]:
    with ExitStack() as held:
        try:
            held.enter_context(file_lock(home / "locks" / f"{thread_id}.lock", wait=False))
        except BlockingIOError:
            raise ThreadBusy(
                f"thread {thread_id} is being carried on by another process right now; wait for it to pause "
                f"(`analyze-experiment list`), then `analyze-experiment resume {thread_id}`"
            ) from None
        yield
