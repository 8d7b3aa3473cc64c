"""The same SQL on DuckLake: what the lake cannot do, done another way, in one place.

DuckLake tables have no PRIMARY KEY or UNIQUE constraints, so `CREATE TABLE` loses them
and `INSERT ... ON CONFLICT` has nothing to conflict with. Every statement of `store/` goes
through `LakeConnection`, which rewrites:

- `CREATE TABLE` without its key constraints (the keys are remembered, from the DDL);
- `INSERT ... ON CONFLICT DO NOTHING` into an insert of the rows whose key is absent;
- `INSERT ... ON CONFLICT (k) DO UPDATE SET ... [WHERE ...]` into `UPDATE ... FROM` the incoming
  rows, then that insert of the absent ones, in one transaction.

Keys are then kept by the writers: each such insert first bumps its table's row in
`lake_write_guard`, so two transactions adding rows to one table at once both rewrite the same
row and DuckLake refuses the later commit as a conflict; it is retried on the new snapshot,
where the key check sees the other's rows. A statement run on its own is retried here; one inside
an explicit transaction fails the transaction, and the step that ran it is retried by its run
(every write is idempotent).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import duckdb
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from outbound_pipeline.store.migrations import LEDGER
from outbound_pipeline.store.schema import TABLES

log = logging.getLogger(__name__)
GUARD_TABLE = "lake_write_guard"
_T = TypeVar("_T")

_CONSTRAINT_LINE = re.compile(r",?\s*\b(PRIMARY\s+KEY|UNIQUE)\s*\(([^)]*)\)", re.IGNORECASE)
_INLINE_KEY = re.compile(r"\b(PRIMARY\s+KEY|UNIQUE)\b", re.IGNORECASE)
_CREATE = re.compile(r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s*\((.*)\)\s*;?\s*$", re.IGNORECASE | re.DOTALL)
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)\s*(\([^)]*\))?\s*(.*?)\s+ON\s+CONFLICT\s*(\([^)]*\))?\s*DO\s+(NOTHING|UPDATE\s+SET\s+(.*?))\s*;?\s*$",
                     re.IGNORECASE | re.DOTALL)
_UPDATE_RETURNING = re.compile(r"^\s*UPDATE\s+(\w+)\s+SET\s+(.*?)\s+(?:FROM\s+(.*?)\s+)?WHERE\s+(.*?)\s+RETURNING\s+(.*?)\s*;?\s*$",
                               re.IGNORECASE | re.DOTALL)
_TXN = re.compile(r"^\s*(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT)\b", re.IGNORECASE)


def _split_columns(body: str) -> list[str]:
    """Top-level comma-separated parts of a column list or table body."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in body:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def keys_from_ddl(body: str) -> list[tuple[str, ...]]:
    """Every key a table body declares: its PRIMARY KEY and each UNIQUE, inline or as a table constraint."""
    keys: list[tuple[str, ...]] = []
    for part in _split_columns(_strip_comments(body)):
        match = re.match(r"^(PRIMARY\s+KEY|UNIQUE)\s*\(([^)]*)\)", part, re.IGNORECASE)
        if match:
            keys.append(tuple(c.strip() for c in match.group(2).split(",")))
        elif _INLINE_KEY.search(part):
            keys.append((part.split()[0],))
    return keys


def without_keys(body: str) -> str:
    """A table body with its PRIMARY KEY and UNIQUE constraints removed (DuckLake has none); NOT NULL stays."""
    body = _CONSTRAINT_LINE.sub("", _strip_comments(body))
    return ", ".join(_INLINE_KEY.sub("", part).strip() for part in _split_columns(body) if part.strip())


KEYS: dict[str, list[tuple[str, ...]]] = {name: keys_from_ddl(body) for name, body in TABLES.items()}
KEYS["schema_migrations"] = keys_from_ddl(LEDGER[LEDGER.index("(") + 1: LEDGER.rindex(")")])


def is_conflict(exc: BaseException) -> bool:
    """A commit DuckLake refused because another transaction changed the same data or catalog entry first."""
    return isinstance(exc, duckdb.Error) and "conflict" in str(exc).lower()


def _retrying() -> Retrying:
    return Retrying(retry=retry_if_exception(is_conflict), wait=wait_random_exponential(multiplier=0.05, max=2.0),
                    stop=stop_after_attempt(12), reraise=True,
                    before_sleep=lambda s: log.info("DuckLake commit conflict; retrying (attempt %d)", s.attempt_number))


def retry_conflicts(fn: Callable[[], _T]) -> _T:
    """Run `fn` again, with jittered backoff, while DuckLake refuses its commit as a conflict."""
    return _retrying()(fn)


def _key_match(keys: Sequence[str], table: str) -> str:
    return " AND ".join(f"{table}.{k} IS NOT DISTINCT FROM excluded.{k}" for k in keys)


class LakeConnection:
    """A DuckDB connection to an attached DuckLake that rewrites what DuckLake cannot run (see the module docstring)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._in_transaction = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def _columns(self, table: str) -> list[str]:
        return [row[0] for row in self._con.execute(f"DESCRIBE {table}").fetchall()]

    def _plan(self, sql: str, params: Any) -> tuple[list[tuple[str, Any]], str | None]:
        """The statements to run for `sql` (each with its parameters) and the table whose keys they must keep, if any."""
        create = _CREATE.match(_strip_comments(sql))
        if create and _INLINE_KEY.search(create.group(2)):
            KEYS.setdefault(create.group(1).lower(), keys_from_ddl(create.group(2)))
            head = create.string[: create.start(2)]
            return [(f"{head}{without_keys(create.group(2))})", params)], None
        returning = _UPDATE_RETURNING.match(sql)
        if returning:
            return self._update_returning(returning, params), None
        insert = _INSERT.match(sql)
        if not insert:
            return [(sql, params)], None
        table, cols_sql, source, target, action, assignments = insert.groups()
        cols = [c.strip() for c in cols_sql.strip("()").split(",")] if cols_sql else self._columns(table)
        key_sets = [tuple(k.strip() for k in target.strip("()").split(","))] if target else KEYS.get(table.lower()) or []
        if not key_sets:
            raise ValueError(f"{table} has no key to resolve ON CONFLICT against on DuckLake")
        incoming = f"({source}) AS excluded({', '.join(cols)})"
        absent = " AND ".join(f"NOT EXISTS (SELECT 1 FROM {table} WHERE {_key_match(keys, table)})" for keys in key_sets)
        insert_sql = f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(cols)} FROM {incoming} WHERE {absent}"
        statements: list[tuple[str, Any]] = []
        if action.upper().startswith("UPDATE"):
            assignments, condition = _split_where(assignments)
            where = _key_match(key_sets[0], table) + (f" AND ({condition})" if condition else "")
            statements.append((f"UPDATE {table} SET {assignments} FROM {incoming} WHERE {where}", params))
        statements.append((insert_sql, params))
        return statements, table

    def _update_returning(self, match: re.Match[str], params: Any) -> list[tuple[str, Any]]:
        """UPDATE ... RETURNING (DuckLake has no RETURNING on updates): note the keys of the rows to change, change them,
        then select the returned expressions from those rows."""
        table, assignments, source, condition, returned = match.groups()
        keys = (KEYS.get(table.lower()) or [()])[0]
        if not keys:
            raise ValueError(f"{table} has no key to return updated rows by on DuckLake")
        where_params = list(params or [])[assignments.count("?"):]
        key_cols = ", ".join(f"{table}.{k}" for k in keys)
        sources = f"{table}, {source}" if source else table
        return [
            (f"CREATE OR REPLACE TEMP TABLE _lake_returning AS SELECT DISTINCT {key_cols} FROM {sources} WHERE {condition}",
             where_params or None),
            (f"UPDATE {table} SET {assignments}" + (f" FROM {source}" if source else "") + f" WHERE {condition}", params),
            (f"SELECT {returned} FROM {table} WHERE EXISTS (SELECT 1 FROM _lake_returning r WHERE "
             + " AND ".join(f"r.{k} = {table}.{k}" for k in keys) + ")", None),
        ]

    def _guard(self, table: str) -> None:
        self._con.execute(f"UPDATE {GUARD_TABLE} SET writes = writes + 1 WHERE table_name = ?", [table.lower()])

    def _run(self, statements: list[tuple[str, Any]], guarded: str | None) -> duckdb.DuckDBPyConnection:
        result = self._con
        if guarded:
            self._guard(guarded)
        for statement, params in statements:
            result = self._con.execute(numbered(statement), params) if params is not None else self._con.execute(statement)
        return result

    def execute(self, query: str, parameters: Any = None) -> duckdb.DuckDBPyConnection:
        txn = _TXN.match(query)
        if txn:
            opening = txn.group(1).upper().startswith(("BEGIN", "START"))
            self._in_transaction = opening  # a COMMIT that fails still ends the transaction
            try:
                return self._con.execute(query)
            except duckdb.TransactionException as exc:
                if opening or "no transaction is active" not in str(exc):
                    raise
                return self._con  # rolling back after a refused commit: that commit already ended it
        statements, guarded = self._plan(query, parameters)
        if self._in_transaction:
            return self._run(statements, guarded)
        if not guarded and len(statements) == 1:
            return retry_conflicts(lambda: self._run(statements, None))
        if statements[-1][0].lstrip().upper().startswith("SELECT"):  # rows to return: read after the commit, not before it
            changes, returned = statements[:-1], statements[-1:]
            retry_conflicts(lambda: self._atomically(changes, guarded))
            return self._run(returned, None)
        return retry_conflicts(lambda: self._atomically(statements, guarded))

    def _atomically(self, statements: list[tuple[str, Any]], guarded: str | None) -> duckdb.DuckDBPyConnection:
        self._con.execute("BEGIN")
        try:
            result = self._run(statements, guarded)
            self._con.execute("COMMIT")
            return result
        except Exception:
            with contextlib.suppress(duckdb.Error):  # a refused COMMIT already ended the transaction
                self._con.execute("ROLLBACK")
            raise

    def executemany(self, query: str, parameters: Any = None) -> duckdb.DuckDBPyConnection:
        for row in parameters or []:
            self.execute(query, row)
        return self._con

    def sql(self, query: str, **kwargs: Any) -> Any:
        statements, guarded = self._plan(query, kwargs.get("params"))
        if guarded or len(statements) > 1:
            self.execute(query, kwargs.get("params"))
            return None
        return self._con.sql(statements[0][0], **kwargs)


def numbered(sql: str) -> str:
    """`?` placeholders as `$1, $2, ...` in reading order: DuckDB 1.4 binds `?` in an UPDATE's FROM before its SET."""
    out, n, quoted = [], 0, False
    for char in sql:
        if char == "'":
            quoted = not quoted
        if char == "?" and not quoted:
            n += 1
            out.append(f"${n}")
        else:
            out.append(char)
    return "".join(out)


class NumberedParams:
    """A DuckDB 1.x file connection whose `?` placeholders are sent numbered (see `numbered`); nothing else changes."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def execute(self, query: str, parameters: Any = None) -> duckdb.DuckDBPyConnection:
        return self._con.execute(numbered(query), parameters) if parameters is not None else self._con.execute(query)


def _split_where(assignments: str) -> tuple[str, str | None]:
    """`SET a = x, b = y WHERE cond` → ("a = x, b = y", "cond"); a WHERE inside parentheses is left alone."""
    depth = 0
    for match in re.finditer(r"\(|\)|\bWHERE\b", assignments, re.IGNORECASE):
        token = match.group(0)
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif depth == 0:
            return assignments[: match.start()].strip(), assignments[match.end():].strip()
    return assignments.strip(), None


def ensure_guard(con: duckdb.DuckDBPyConnection) -> None:
    """Create `lake_write_guard` with a row per keyed table, once per lake, safe against writers doing the same at once."""

    def attempt() -> None:
        exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND table_name = ?",
                             [GUARD_TABLE]).fetchall()[0][0]
        con.execute("BEGIN")
        try:
            if exists:
                con.execute(f"UPDATE {GUARD_TABLE} SET writes = writes + 1 WHERE table_name = '*'")
            else:
                con.execute(f"CREATE TABLE {GUARD_TABLE} (table_name VARCHAR NOT NULL, writes BIGINT NOT NULL)")
            names = ["*", *sorted(KEYS)]
            values = ", ".join("(?)" for _ in names)
            con.execute(f"INSERT INTO {GUARD_TABLE} SELECT name, 0 FROM (VALUES {values}) v(name) "
                        f"WHERE NOT EXISTS (SELECT 1 FROM {GUARD_TABLE} g WHERE g.table_name = v.name)", names)
            con.execute("COMMIT")
        except Exception:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise

    retry_conflicts(attempt)
