"""Materialise an experiment's traces into a local DuckDB file, and keep it in step incrementally.

The file lives in the cache directory, keyed by tracking URI and experiment. A sync compares the
store's list of traces with the table's (one grouped query on SQL stores; a metadata scan elsewhere):
it adds traces it has not seen, whatever their timestamps, re-reads traces that were still in progress
or whose assessments changed, and drops traces deleted from the store.

DuckDB lets one process write a file or many read it, never both, and every command of every process
on a home reads this file (a second `run`, `slack serve`, `traces execute-sql`). So the file at the
cache path is never written: a sync copies it, changes the copy and renames the copy over it, one
sync at a time under a lock file. Readers open it read-only whenever they like; a connection that was
open across the rename keeps reading the old file (its inode lives on), the next one sees the new one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from analyze_experiment.agent.core.locks import file_lock
from analyze_experiment.agent.core.traces.links import batches, id_filter
from analyze_experiment.agent.core.traces.table import TABLE, to_arrow
from analyze_experiment.agent.core.traces.worker import attach_sql
from analyze_experiment.agent.core.tracking import retry_transient

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Trace

PAGE = 500
SCHEMA_VERSION = "1"
Fingerprints = dict[str, tuple[int, int]]


@dataclass(frozen=True)
class SyncReport:
    path: Path
    added: int
    refreshed: int
    total: int
    full_rebuild: bool
    removed: int = 0

    @property
    def changed(self) -> bool:
        return self.full_rebuild or bool(self.added or self.refreshed or self.removed)


def cache_path(cache_dir: Path, tracking_uri: str, experiment_id: str) -> Path:
    key = hashlib.sha256(f"{tracking_uri}\n{experiment_id}".encode()).hexdigest()[:16]
    return cache_dir / "traces" / f"{experiment_id}-{key}.duckdb"


class TraceTableSync:
    def __init__(self, client: MlflowClient, experiment_id: str, path: Path) -> None:
        self._client = client
        self._experiment_id = experiment_id
        self.path = path

    def sync(self, refresh: bool = False, on_traces: Callable[[int], None] | None = None) -> SyncReport:
        tick = on_traces or (lambda _n: None)
        with file_lock(_beside(self.path, ".lock")):  # another process's sync ends before ours reads the table
            previous = None if refresh else _previous(self.path)
            full = previous is None
            known, recorded = previous or ({}, {})
            snapshot = self._snapshot()
            if not known:
                added = [t for page in self._pages(None, include_spans=True) for t in _ticked(page, tick)]
                refreshed: list[Trace] = []
            else:
                added = self._fetch_ids([tid for tid in snapshot if tid not in known], tick)
                refreshed = self._fetch_ids(_stale_ids(known, recorded, snapshot), tick)
            gone = [tid for tid in known if tid not in snapshot]
            if not (full or added or refreshed or gone):
                return SyncReport(self.path, 0, 0, len(known), False)
            partial = _beside(self.path, ".partial")
            for leftover in (partial, _beside(partial, ".wal")):  # from a sync that was killed
                leftover.unlink(missing_ok=True)
            if not full:
                shutil.copyfile(self.path, partial)
            with writable(partial) as con:
                if full:
                    _create(con)
                _upsert(con, added + refreshed, snapshot)
                _delete(con, gone)
                total = int(con.execute("SELECT count(*) FROM traces").fetchone()[0])  # type: ignore[index]
                con.execute("CHECKPOINT cache")  # the rename moves one file: nothing may stay behind in its WAL
            # a WAL at the cache path (an in-place writer before this one died) would be replayed onto ours
            _beside(self.path, ".wal").unlink(missing_ok=True)
            os.replace(partial, self.path)
        return SyncReport(self.path, len(added), len(refreshed), total, full, len(gone))

    def _fetch_ids(self, trace_ids: list[str], tick: Callable[[int], None]) -> list[Trace]:
        found: list[Trace] = []
        for chunk in batches(trace_ids):
            for page in self._pages(id_filter(chunk), include_spans=True):
                found.extend(page)
                tick(len(page))
        return found

    def _pages(self, filter_string: str | None, include_spans: bool) -> Iterator[list[Trace]]:
        token = None
        search = retry_transient(self._client.search_traces)
        while True:
            page = search(
                locations=[self._experiment_id],
                filter_string=filter_string,
                max_results=PAGE,
                page_token=token,
                include_spans=include_spans,
            )
            yield list(page)
            token = page.token
            if not token:
                return

    def _snapshot(self) -> Fingerprints:
        """Every trace of the experiment with its (assessment count, latest assessment update), by the
        cheapest means the store has: one grouped query on SQL stores, a metadata scan elsewhere."""
        fast = _sql_store_snapshot(self._client, self._experiment_id)
        if fast is not None:
            return fast
        return {
            trace.info.trace_id: _fingerprint(trace.info.assessments or [])
            for page in self._pages(None, include_spans=False)
            for trace in page
        }


def _beside(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _previous(path: Path) -> tuple[dict[str, str], Fingerprints] | None:
    """Each synced trace's state and assessment fingerprint, or None when the table must be built
    afresh: no file yet, an older schema, or a WAL (an in-place writer before this one died there)."""
    if not path.exists() or _beside(path, ".wal").exists():
        return None
    with duckdb.connect(str(path), read_only=True) as con:
        if not _initialised(con):
            return None
        known = dict(con.execute("SELECT trace_id, state FROM traces").fetchall())
        rows = con.execute("SELECT trace_id, n_assessments, assessed_ms FROM _sync_traces").fetchall()
    return known, {tid: (count, stamp) for tid, count, stamp in rows}


def _stale_ids(known: dict[str, str], recorded: Fingerprints, current: Fingerprints) -> list[str]:
    """Traces still running at the last sync, and traces whose assessments changed since."""
    in_progress = [tid for tid, state in known.items() if state == "IN_PROGRESS" and tid in current]
    changed = [tid for tid, fingerprint in current.items() if tid in known and recorded.get(tid) != fingerprint]
    return sorted(set(in_progress) | set(changed))


def _ticked(page: list[Trace], tick: Callable[[int], None]) -> list[Trace]:
    tick(len(page))
    return page


def _fingerprint(assessments: Iterable[Any]) -> tuple[int, int]:
    items = list(assessments)
    stamps = [int(getattr(a, "last_update_time_ms", 0) or 0) for a in items]
    return len(items), max(stamps, default=0)


def _sql_store_snapshot(client: MlflowClient, experiment_id: str) -> Fingerprints | None:
    store = client._tracking_client.store
    if not hasattr(store, "ManagedSessionMaker"):
        return None
    from mlflow.store.tracking.dbmodels.models import SqlAssessments, SqlTraceInfo
    from sqlalchemy import func

    with store.ManagedSessionMaker() as session:
        rows = (
            session.query(
                SqlTraceInfo.request_id,
                func.count(SqlAssessments.assessment_id),
                func.max(SqlAssessments.last_updated_timestamp),
            )
            .outerjoin(SqlAssessments, SqlAssessments.trace_id == SqlTraceInfo.request_id)
            .filter(SqlTraceInfo.experiment_id == int(experiment_id))
            .group_by(SqlTraceInfo.request_id)
            .all()
        )
    return {tid: (int(count), int(stamp or 0)) for tid, count, stamp in rows}


def _initialised(con: duckdb.DuckDBPyConnection) -> bool:
    tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if not {"traces", "_sync_traces", "_sync_meta"} <= tables:
        return False
    version = con.execute("SELECT value FROM _sync_meta WHERE key = 'schema'").fetchone()
    return version is not None and version[0] == SCHEMA_VERSION


def writable(path: Path) -> duckdb.DuckDBPyConnection:
    """A connection whose current database is the file at `path`, which it writes in row groups of
    ROW_GROUP_SIZE (a setting of the attachment, not of the file)."""
    con = duckdb.connect()
    try:
        con.execute(attach_sql(str(path), "cache"))
        con.execute("USE cache")
    except BaseException:
        con.close()
        raise
    return con


def _create(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP TABLE IF EXISTS traces; DROP TABLE IF EXISTS _sync_traces; DROP TABLE IF EXISTS _sync_meta")
    con.register("empty_rows", to_arrow([]))
    con.execute("CREATE TABLE traces AS SELECT * FROM empty_rows")
    con.unregister("empty_rows")
    con.execute(
        "CREATE TABLE _sync_traces (trace_id VARCHAR PRIMARY KEY, request_time_ms BIGINT, "
        "n_assessments INTEGER, assessed_ms BIGINT)"
    )
    con.execute("CREATE TABLE _sync_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("INSERT INTO _sync_meta VALUES ('schema', ?)", [SCHEMA_VERSION])


def _delete(con: duckdb.DuckDBPyConnection, trace_ids: list[str]) -> None:
    """Traces deleted from the store leave the table too."""
    if trace_ids:
        con.executemany("DELETE FROM traces WHERE trace_id = ?", [[tid] for tid in trace_ids])
        con.executemany("DELETE FROM _sync_traces WHERE trace_id = ?", [[tid] for tid in trace_ids])


def _upsert(con: duckdb.DuckDBPyConnection, traces: list[Trace], fingerprints: Fingerprints) -> None:
    """Replace the rows of these traces and remember what they looked like, in one transaction."""
    if not traces:
        return
    con.register("rows", to_arrow(traces))
    con.register(
        "seen",
        pa.table(
            {
                "trace_id": [t.info.trace_id for t in traces],
                "request_time_ms": [t.info.request_time for t in traces],
                "n_assessments": [fingerprints.get(t.info.trace_id, (0, 0))[0] for t in traces],
                "assessed_ms": [fingerprints.get(t.info.trace_id, (0, 0))[1] for t in traces],
            }
        ),
    )
    con.execute("BEGIN")
    con.execute("DELETE FROM traces WHERE trace_id IN (SELECT trace_id FROM rows)")
    con.execute(f"INSERT INTO {TABLE} SELECT * FROM rows")
    con.execute("DELETE FROM _sync_traces WHERE trace_id IN (SELECT trace_id FROM seen)")
    con.execute("INSERT INTO _sync_traces SELECT * FROM seen")
    con.execute("COMMIT")
    con.unregister("rows")
    con.unregister("seen")
