"""One process at a time per analysis thread.

Two people resuming the same paused thread at once would both read the same pending approval and
both apply a decision; the second would answer an approval that was no longer open. An exclusive,
non-blocking `flock` on a file per thread makes the second one stop with a plain message. The kernel
drops the lock when its process dies, so a killed process never leaves a thread locked.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent.errors import UserError


class ThreadBusy(UserError):
    kind = "thread_busy"


@contextmanager
def thread_lock(home: Path, thread_id: str) -> Iterator[None]:
    folder = home / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{thread_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ThreadBusy(
                f"thread {thread_id} is being carried on by another process right now; wait for it to pause "
                f"(`analyze-experiment list`), then `analyze-experiment resume {thread_id}`"
            ) from None
        yield
    finally:
        os.close(fd)
