"""API keys (`api_keys`): only a SHA-256 of each key is kept, so a stolen database file lets nobody in."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from outbound_pipeline.store.warehouse import insert_new


def add_key(con: duckdb.DuckDBPyConnection, key_id: str, name: str, role: str, key_hash: str, now: datetime) -> None:
    """Record a new key by its hash; a name already in use (even revoked) is refused, so audit names stay unambiguous."""
    if con.execute("SELECT 1 FROM api_keys WHERE name = ?", [name]).fetchall():
        raise ValueError(f"an API key named {name!r} exists already; pick another name")
    insert_new(con, "api_keys", pd.DataFrame([{"key_id": key_id, "name": name, "role": role, "key_hash": key_hash,
                                               "created_at": now, "revoked_at": None}]))


def key_by_id(con: duckdb.DuckDBPyConnection, key_id: str) -> dict[str, object] | None:
    """The live (not revoked) key with this public id: name, role and hash; None when unknown or revoked."""
    rows = con.execute("SELECT key_id, name, role, key_hash FROM api_keys WHERE key_id = ? AND revoked_at IS NULL",
                       [key_id]).fetchall()
    if not rows:
        return None
    key_id, name, role, key_hash = rows[0]
    return {"key_id": key_id, "name": name, "role": role, "key_hash": key_hash}


def list_keys(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every key without its hash: id, name, role, when created and revoked."""
    return con.execute("SELECT key_id, name, role, created_at, revoked_at FROM api_keys ORDER BY created_at, name").df()


def revoke(con: duckdb.DuckDBPyConnection, name: str, now: datetime) -> bool:
    """Revoke the named key at once; False when there is no live key of that name."""
    found = con.execute("SELECT 1 FROM api_keys WHERE name = ? AND revoked_at IS NULL", [name]).fetchall()
    if not found:
        return False
    con.execute("UPDATE api_keys SET revoked_at = ? WHERE name = ?", [now, name])
    return True
