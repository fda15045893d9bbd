"""One SQL dialect everywhere: Databricks SQL in, checked, and translated for the engine that runs it.

User and LLM SQL is untrusted. `prepare` admits exactly one query over the traces table (and its
CTEs), refuses what could touch anything else, refuses constructs that would not mean the same on
DuckDB, and fixes the translations sqlglot is known to get wrong.
"""

from __future__ import annotations

import logging
import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from analyze_experiment.agent.core.errors import UserError
from analyze_experiment.agent.core.traces.table import TABLE

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its parse warnings would break one-line refusals

ALLOWED = f"exactly one SELECT (WITH ... SELECT allowed) over the `{TABLE}` table"
_DENIED_FUNCTIONS = re.compile(
    r"^(read_\w+|sniff_\w+|parquet_\w+|iceberg_\w+|delta_scan|glob|getenv|getvariable|query|query_table|"
    r"current_setting|duckdb_\w+|pragma_\w+|http_\w+|load_\w+|install_\w+|system|shell|java_method|reflect)$",
    re.IGNORECASE,
)
_UNIT_DATEDIFF = re.compile(
    r"\b(datediff|timestampdiff|date_diff)\s*\(\s*(year|quarter|month|week|day|hour|"
    r"minute|second|millisecond|microsecond)\b",
    re.IGNORECASE,
)
_MAP_COLUMNS = {"tags", "trace_metadata", "attributes", "metadata"}
MAX_GENERATED = 100_000
# unknown-to-sqlglot functions whose argument at this position sets the size of what they build
_SIZED_FUNCTIONS = {
    "array_repeat": 1,
    "array_fill": 1,
    "list_resize": 1,
    "array_resize": 1,
    "string_repeat": 1,
    "bar": 3,
}


class SqlRefused(UserError):
    kind = "sql_refused"


def parse(sql: str) -> exp.Query:
    """The single query in `sql`, or a refusal that says what is allowed."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="databricks") if s is not None]
    except (ParseError, TokenError) as error:
        first = str(error).splitlines()[0]
        raise SqlRefused(f"could not parse the SQL ({first}); write {ALLOWED}") from error
    if len(statements) != 1:
        raise SqlRefused(f"found {len(statements)} statements; write {ALLOWED}")
    (tree,) = statements
    if not isinstance(tree, exp.Select | exp.SetOperation):
        raise SqlRefused(f"{type(tree).__name__.upper()} statements are not allowed; write {ALLOWED}")
    _check_sources(tree)
    return tree


def _check_sources(tree: exp.Query) -> None:
    if tree.find(exp.Into):
        raise SqlRefused(f"SELECT ... INTO writes a table; write {ALLOWED}")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise SqlRefused(
                f"table functions such as {table.this.sql('databricks')[:40]} are not allowed; write {ALLOWED}"
            )
        if table.args.get("db") or table.args.get("catalog"):
            raise SqlRefused(f"qualified table names ({table.sql('databricks')}) are not allowed; use `{TABLE}`")
        if table.name.lower() not in ctes | {TABLE}:
            raise SqlRefused(f"unknown table `{table.name}`; the only table is `{TABLE}` (plus your CTEs)")
    for function in tree.find_all(exp.Func):
        name = function.name if isinstance(function, exp.Anonymous) else function.sql_name()
        if _DENIED_FUNCTIONS.match(name or ""):
            raise SqlRefused(f"function {name} is not allowed; only the `{TABLE}` table can be read")
        _check_generated_size(function, (name or "").lower())


def _check_generated_size(function: exp.Func, name: str) -> None:
    """Functions that build a value as large as an argument says allocate it outside DuckDB's memory
    limit and cannot be interrupted (`repeat('x', 2e9)` took 4 GB and 10 s past a 0.5 s timeout), so
    their sizes must be literal numbers within a bound."""
    if isinstance(function, exp.GenerateSeries) or name == "range":
        _check_series(function, name or "sequence")
    elif isinstance(function, exp.Format) or name == "printf":
        pattern = function.this
        if not isinstance(pattern, exp.Literal) or re.search(r"\d{5,}|\*", str(pattern.this)):
            raise SqlRefused(f"{name}() needs a literal format with widths under 10000")
    else:
        size = _size_argument(function, name)
        number = _literal_number(size) if size is not None else 0.0
        if number is None or abs(number) > MAX_GENERATED:
            raise SqlRefused(
                f"{name}() builds a value as large as its size argument; give the size as a "
                f"literal number up to {MAX_GENERATED:,}"
            )


def _check_series(function: exp.Func, name: str) -> None:
    if isinstance(function, exp.GenerateSeries):
        bounds = [function.args.get("start"), function.args.get("end"), function.args.get("step")]
    else:
        bounds = list(function.expressions)
    numbers = [_literal_number(b) for b in bounds if b is not None]
    known = [n for n in numbers if n is not None]
    if len(known) != len(numbers) or len(known) < 2:
        raise SqlRefused(f"{name}() needs literal numbers; write e.g. sequence(1, 10)")
    start, end, step = [*known, 1.0][:3]
    if abs(end - start) > MAX_GENERATED * max(abs(step), 1e-9):
        raise SqlRefused(f"{name}() may make at most {MAX_GENERATED:,} items")


def _size_argument(function: exp.Func, name: str) -> exp.Expression | None:
    keys = {exp.Repeat: "times", exp.Pad: "expression", exp.Space: "this"}
    key = next((k for kind, k in keys.items() if isinstance(function, kind)), None)
    if key is not None:
        found: exp.Expression | None = function.args.get(key)
        return found
    position = _SIZED_FUNCTIONS.get(name) if isinstance(function, exp.Anonymous) else None
    if position is None or len(function.expressions) <= position:
        return None
    chosen: exp.Expression = function.expressions[position]
    return chosen


def _literal_number(node: exp.Expression | None) -> float | None:
    negative = isinstance(node, exp.Neg)
    if negative and node is not None:
        node = node.this
    if isinstance(node, exp.Paren):
        return _literal_number(node.this)
    if not isinstance(node, exp.Literal) or not node.is_number:
        return None
    value = float(node.this)
    return -value if negative else value


def check_translatable(sql: str, tree: exp.Query) -> None:
    """Refuse what DuckDB would run with silently different results, naming the alternative."""
    if _UNIT_DATEDIFF.search(sql):
        raise SqlRefused(
            "datediff/timestampdiff with a unit counts boundaries differently across engines; "
            "use datediff(end, start) for calendar days, or compare timestamps directly"
        )
    _check_explodes(tree)
    for lateral in tree.find_all(exp.Lateral):
        if not lateral.args.get("view"):
            raise SqlRefused("LATERAL explode(...) AS t(x) is not supported; use LATERAL VIEW explode(arr) t AS x")
    for node in tree.walk():
        if type(node).__name__ in {"FromJson", "JSONToStruct"} or (
            isinstance(node, exp.Anonymous) and node.name.lower() == "from_json"
        ):
            raise SqlRefused("from_json is not supported; use get_json_object(col, '$.path') or col:path")


def _check_explodes(tree: exp.Query) -> None:
    for explode in tree.find_all(exp.Explode):
        if isinstance(explode, exp.ExplodeOuter):
            raise SqlRefused(
                "explode_outer is not supported; use LATERAL VIEW explode(...) and handle empty "
                "arrays with size(...) = 0 in a UNION"
            )
        if isinstance(explode, exp.Posexplode):
            raise SqlRefused("posexplode is not supported; use LATERAL VIEW explode(...)")
        target = explode.this
        if isinstance(target, exp.Column | exp.Dot) and target.name.lower() in _MAP_COLUMNS:
            raise SqlRefused(
                f"exploding the map {target.name} is not supported; use map_keys({target.name}), "
                f"map_values({target.name}) or {target.name}['key']"
            )


def rewrite_for_duckdb(tree: exp.Query) -> exp.Query:
    """Fix sqlglot's known mistranslations (see docs/sql.md) and the slow struct-unnest filter."""
    fixed = tree.transform(_fix_node).transform(_zero_count_if)  # second pass: children are fixed by now
    assert isinstance(fixed, exp.Query)
    return _unnest_in_subquery(fixed)


def _zero_count_if(node: exp.Expression) -> exp.Expression:
    """Spark's count_if of no true rows is 0; DuckDB's is NULL when every input is NULL."""
    if isinstance(node, exp.CountIf) and not isinstance(node.parent, exp.Coalesce | exp.Filter | exp.Window):
        return exp.Coalesce(this=node.copy(), expressions=[exp.Literal.number(0)])
    return node


def _fix_node(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Exists) and isinstance(node.expression, exp.Lambda):
        # exists(arr, x -> p)  ==  size(filter(arr, x -> p)) > 0   (sqlglot drops the lambda)
        matches = exp.ArrayFilter(this=node.this, expression=node.expression)
        return exp.GT(this=exp.ArraySize(this=matches), expression=exp.Literal.number(0))
    if isinstance(node, exp.Anonymous) and node.name.lower() == "forall" and len(node.expressions) == 2:
        array, predicate = node.expressions
        negated = exp.Lambda(this=exp.Not(this=exp.Paren(this=predicate.this)), expressions=predicate.expressions)
        failures = exp.ArrayFilter(this=array, expression=negated)
        return exp.EQ(this=exp.ArraySize(this=failures), expression=exp.Literal.number(0))
    if isinstance(node, exp.Quantile):
        # Spark's percentile interpolates; DuckDB's QUANTILE is discrete
        return exp.Anonymous(this="quantile_cont", expressions=[node.this, node.args["quantile"]])
    if isinstance(node, exp.DayOfWeek):
        # Spark counts Sunday as 1, DuckDB as 0
        return exp.Paren(this=exp.Add(this=node.copy(), expression=exp.Literal.number(1)))
    if isinstance(node, exp.MapContainsKey):
        # sqlglot swaps map and key for DuckDB
        return exp.Anonymous(this="map_contains", expressions=[node.this, node.args["key"]])
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.JSONExtract) and node.is_type(*exp.DataType.TEXT_TYPES):
        return _scalar(node.this)
    if isinstance(node, exp.JSONExtract) and node.args.get("variant_extract"):
        # Databricks' col:path returns the JSON value as text, without quotes for strings
        return _scalar(node)
    return node


def _scalar(extract: exp.JSONExtract) -> exp.Expression:
    return exp.JSONExtractScalar(this=extract.this, expression=extract.expression)


def _unnest_in_subquery(tree: exp.Query) -> exp.Query:
    """`traces LATERAL VIEW explode(spans) t AS s` becomes `traces CROSS JOIN UNNEST(spans)`, which
    DuckDB runs 20-50x slower than `(SELECT *, UNNEST(spans) AS s FROM traces)` once s.* is filtered.
    Rewrite the simple shape: one table, one lateral view, one output column, no joins."""
    for select in list(tree.find_all(exp.Select)):
        laterals = select.args.get("laterals") or []
        source = select.args.get("from_")
        if len(laterals) != 1 or select.args.get("joins") or source is None or not isinstance(source.this, exp.Table):
            continue
        view = laterals[0]
        alias = view.args.get("alias")
        columns = alias.columns if alias is not None else []
        if not isinstance(view.this, exp.Explode) or type(view.this) is not exp.Explode or len(columns) != 1:
            continue
        table = source.this
        inner = exp.select(exp.Star(), exp.alias_(view.this.copy(), columns[0].name)).from_(table.copy())
        select.set("laterals", None)
        select.set(
            "from_",
            exp.From(this=exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(table.alias_or_name)))),
        )
    return tree


def to_duckdb(sql: str) -> str:
    tree = parse(sql)
    check_translatable(sql, tree)
    return rewrite_for_duckdb(tree).sql(dialect="duckdb")
