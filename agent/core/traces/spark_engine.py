"""The same Databricks SQL on Spark SQL, over a Parquet export of the traces table.

For experiments that outgrow one machine, and as the reference engine: Databricks runs Spark, so
local Spark is the oracle our DuckDB translation is checked against. Needs the `spark` extra and Java.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from analyze_experiment.agent.core.errors import ConfigurationError, UserError
from analyze_experiment.agent.core.traces.engine import DEFAULT_ROW_CAP, DEFAULT_TIMEOUT_S, QueryResult, SqlTimeout
from analyze_experiment.agent.core.traces.sql import check_translatable, parse
from analyze_experiment.agent.core.traces.worker import json_safe

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

T = TypeVar("T")


def export_parquet(duckdb_path: Path, parquet_path: Path) -> Path:
    """Write the traces table as Parquet (atomically: Spark never sees a half-written file)."""
    # two processes may export the same table at once; each writes its own file before the rename
    partial = parquet_path.with_name(f"{parquet_path.name}.{uuid.uuid4().hex}.partial")
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        con.execute(f"COPY traces TO '{partial}' (FORMAT parquet)")
    partial.replace(parquet_path)
    return parquet_path


@cache
def spark_session() -> SparkSession:
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:
        raise ConfigurationError(
            "--engine spark needs pyspark and Java 17+; install the extra: uv tool install 'analyze-experiment[spark]'"
        ) from error
    return (
        SparkSession.builder.master("local[2]")
        .appName("analyze-experiment")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )


class SparkEngine:
    name = "spark"

    def __init__(self, parquet: Path, *, timeout_s: float = DEFAULT_TIMEOUT_S, row_cap: int = DEFAULT_ROW_CAP) -> None:
        self.parquet = parquet
        self.timeout_s = timeout_s
        self.row_cap = row_cap

    def execute(self, sql: str) -> QueryResult:
        translated = self._translate(sql)
        frame, rows, cut = self._guarded(lambda session: self._fetch(session.sql(translated)))
        kept = rows[: self.row_cap]
        return QueryResult(
            columns=list(frame.columns),
            rows=[[_plain(v) for v in row] for row in kept],
            row_count=len(kept),
            rows_cut=cut,
            engine=self.name,
            executed_sql=translated,
        )

    @contextmanager
    def derived(self, sql: str) -> Iterator[SparkEngine]:
        """The rows written as Parquet in a scratch directory, read as `traces` by a new engine."""
        translated = self._translate(sql)
        with tempfile.TemporaryDirectory(prefix="analyze-experiment-") as scratch:
            target = Path(scratch) / "derived.parquet"
            self._guarded(lambda session: session.sql(translated).write.parquet(str(target)))
            yield SparkEngine(target, timeout_s=self.timeout_s, row_cap=self.row_cap)

    @staticmethod
    def _translate(sql: str) -> str:
        tree = parse(sql)
        check_translatable(sql, tree)
        return tree.sql(dialect="spark")  # OSS Spark has no col:path on strings; this writes get_json_object

    def _fetch(self, frame: DataFrame) -> tuple[DataFrame, list[Row], int]:
        rows = frame.take(self.row_cap + 1)
        cut = frame.count() - self.row_cap if len(rows) > self.row_cap else 0
        return frame, rows, cut

    def _guarded(self, work: Callable[[SparkSession], T]) -> T:
        """`work` with this engine's Parquet as `traces`, cancelled at the deadline; errors become one line."""
        session = spark_session()
        session.read.parquet(str(self.parquet)).createOrReplaceTempView("traces")
        stopped = threading.Event()

        def cancel() -> None:
            stopped.set()
            session.sparkContext.cancelAllJobs()

        timer = threading.Timer(self.timeout_s, cancel)
        timer.start()
        try:
            return work(session)
        except Exception as error:
            if stopped.is_set():
                raise SqlTimeout(f"the query was stopped after {self.timeout_s:g} s; narrow it") from error
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserError(f"the query failed on Spark: {first[:300]}") from error
        finally:
            timer.cancel()


def _plain(value: Any) -> Any:
    """Spark rows become dicts; everything else is made JSON-safe as on DuckDB."""
    from pyspark.sql import Row

    if isinstance(value, Row):
        return {k: _plain(v) for k, v in value.asDict().items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return json_safe(value)
