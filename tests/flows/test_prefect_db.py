"""A new workspace's Prefect database starts from a migrated copy, made once per Prefect version; real servers."""

from __future__ import annotations

import sqlite3

import pytest

from asr_flywheel.flows import prefect_db, server

pytestmark = pytest.mark.slow


def _tables(db) -> set[str]:
    with sqlite3.connect(db) as con:
        return {r[0] for r in con.execute("select name from sqlite_master where type = 'table'")}


def test_a_fresh_workspace_server_starts_on_a_copy_of_the_migrated_template(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    home = tmp_path / "ws" / "prefect"
    srv = server.start(home)
    try:
        server.prepare(srv.api_url)  # the server works on it: the GPU slot, the pool, the automation
    finally:
        server.stop(home)
    made = list((tmp_path / "cache" / "asr-flywheel" / "prefect-db").iterdir())
    assert len(made) == 1 and made[0].name.startswith("prefect-") and made[0].suffix == ".db"  # no temp left
    assert {"flow_run", "alembic_version", "concurrency_limit_v2"} <= _tables(made[0])
    assert "concurrency_limit_v2" in _tables(home / "prefect.db")
    with sqlite3.connect(made[0]) as con:  # the template stays empty: what one workspace wrote is not in it
        assert con.execute("select count(*) from concurrency_limit_v2").fetchone() == (0,)


def test_an_existing_database_is_never_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    db = tmp_path / "prefect.db"
    db.write_bytes(b"theirs")
    assert prefect_db.seed(db, server.prefect_bin(), {}) is False
    assert db.read_bytes() == b"theirs"


def test_without_a_usable_cache_the_database_is_left_to_the_server(tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert prefect_db.seed(tmp_path / "prefect.db", server.prefect_bin(), {}) is False
    assert not (tmp_path / "prefect.db").exists()  # the server creates and migrates it, as without a template
