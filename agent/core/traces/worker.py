"""The process that runs checked SQL on DuckDB, apart from the analysis (see `analyze_experiment.agent.core.traces.sandbox`).

It imports only DuckDB and the standard library, so it starts in a fraction of a second. Its heap is
capped with RLIMIT_DATA: a query that would need more fails with DuckDB's out-of-memory error instead
of swapping the machine (`repeat('x', 2e9)` allocates outside DuckDB's own memory limit). Requests and
replies are length-prefixed pickles on stdin/stdout; both ends are this package's code.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import pickle
import resource
import struct
import sys
import threading
import uuid
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

MAX_CELL_CHARS = 20_000
MAX_CELL_ITEMS = 1_000
_COUNT_BATCH = 10_000
_HEADER = struct.Struct("!Q")
# DuckDB splits a table scan among threads by the row group size its database was attached with, not
# by the groups in the file, and keeps no such setting in the file: every connection that writes or
# reads a traces table attaches it with this size (analyze_experiment.agent.core.traces.sync.writable, `_connect`). DuckDB's
# default of 122,880 rows makes a table of 100k traces one group read by one thread; in groups of
# 16,384 both cores work from about 30k traces (discovery at 100k traces: each query about 2x faster;
# 8,192 gains nothing more).
ROW_GROUP_SIZE = 16_384
_LOCKING = ("enable_external_access", "lock_configuration")  # set once the tables are attached


def send(stream: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the other end closed the pipe")
    size = _HEADER.unpack(header)[0]
    return pickle.loads(stream.read(size))  # both ends are this module


def run_query(path: str, config: dict[str, Any], sql: str, row_cap: int, timeout_s: float) -> dict[str, Any]:
    """One query on a fresh read-only connection; a reply dict with rows, or with an error kind."""

    def fetch(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        rows = cursor.fetchmany(row_cap)
        cut = _count_rest(cursor)
        return {"columns": columns, "rows": [[bounded(json_safe(v)) for v in row] for row in rows], "rows_cut": cut}

    return _guarded(lambda: _connect(path, config), fetch, timeout_s)


def derive_table(path: str, target: str, config: dict[str, Any], sql: str, timeout_s: float) -> dict[str, Any]:
    """A new database at `target` whose `traces` table holds the rows of `sql` over the table at `path`.
    The connection is locked down exactly as a query's, so the SQL runs with the same restrictions and
    can write nothing but the new table."""

    def create(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        table = "derived.main.traces"
        con.execute(f"CREATE TABLE {table} AS {sql}")
        count = con.execute(f"SELECT count(*) FROM {table}").fetchone()
        return {"rows": count[0] if count else 0}

    return _guarded(lambda: _connect(path, config, target), create, timeout_s)


def _connect(path: str, config: dict[str, Any], target: str | None = None) -> duckdb.DuckDBPyConnection:
    """The table at `path` attached read-only as the current database (and `target` writable as
    `derived`), both in ROW_GROUP_SIZE groups, then locked down: no other file can be read, written or
    attached."""
    import duckdb

    con = duckdb.connect(config={k: v for k, v in config.items() if k not in _LOCKING})
    try:
        if target is not None:
            con.execute(attach_sql(target, "derived"))
        con.execute(attach_sql(path, "source", read_only=True))
        for name in _LOCKING:
            con.execute(f"SET {name} = {config[name]}")
        con.execute("USE source")
    except BaseException:
        con.close()
        raise
    return con


def attach_sql(path: str, alias: str, *, read_only: bool = False) -> str:
    """ATTACH for a traces database, in ROW_GROUP_SIZE groups."""
    return f"ATTACH {_literal(path)} AS {alias} ({'READ_ONLY, ' if read_only else ''}ROW_GROUP_SIZE {ROW_GROUP_SIZE})"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _guarded(
    connect: Callable[[], duckdb.DuckDBPyConnection],
    work: Callable[[duckdb.DuckDBPyConnection], dict[str, Any]],
    timeout_s: float,
) -> dict[str, Any]:
    """`work` on a connection, interrupted at the deadline; DuckDB's errors become reply kinds."""
    import duckdb

    try:
        with connect() as con:
            timer = threading.Timer(timeout_s, con.interrupt)
            timer.start()
            try:
                return work(con)
            finally:
                timer.cancel()
    except duckdb.InterruptException:
        return {"error": "timeout"}
    except duckdb.PermissionException as error:
        return {"error": "permission", "message": _first_line(error)}
    except (duckdb.Error, MemoryError) as error:
        return {"error": "failed", "message": _first_line(error)}


def _count_rest(cursor: Any) -> int:
    cut = 0
    while batch := cursor.fetchmany(_COUNT_BATCH):
        cut += len(batch)
    return cut


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def bounded(value: Any) -> Any:
    """One cell of a result, cut to a size a person or a model can read (`array_agg` over a cross
    join makes one row of hundreds of thousands of items); the cut is said in the value."""
    if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
        return value[:MAX_CELL_CHARS] + f"... [{len(value) - MAX_CELL_CHARS:,} more characters cut]"
    if isinstance(value, list) and len(value) > MAX_CELL_ITEMS:
        return [bounded(v) for v in value[:MAX_CELL_ITEMS]] + [f"... [{len(value) - MAX_CELL_ITEMS:,} more items cut]"]
    return value


def json_safe(value: Any) -> Any:
    """JSON-safe Python values, keeping structure (lists, maps as dicts, structs as dicts)."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID | bytes):
        return str(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    return value


def serve(heap_bytes: int) -> None:
    """Answer requests until the parent closes stdin (or dies: the pipe closes with it)."""
    # not every kernel enforces it (macOS); DuckDB's own limit and the kill at the deadline remain
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_DATA, (heap_bytes, heap_bytes))
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the reply stream
    while True:
        try:
            request = receive(requests)
        except EOFError:
            return
        try:
            reply = derive_table(**request["derive"]) if "derive" in request else run_query(**request)
        except MemoryError:
            reply = {"error": "failed", "message": "out of memory"}
        send(replies, reply)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
