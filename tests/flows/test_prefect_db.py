"""A new workspace's Prefect database starts from a migrated copy, made once per Prefect version; real servers."""

from __future__ import annotations

import sqlite3

import pytest

from asr_flywheel.flows import prefect_db, server

pytestmark = pytest.mark.slow


def _tables(db) -> set[str]:
    with sqlite3.connect(db) as con:
        return {r[0] for r in con.execute("select name from sqlite_master where type = 'table'")}


def test_a_new_database_is_a_copy_of_the_empty_migrated_template_made_once(tmp_path):
    """With the user's cache, as every server start uses it (the session's servers made the template already, or
    this makes it); every other test's server then runs on such a copy."""
    db = tmp_path / "ws" / "prefect" / "prefect.db"
    db.parent.mkdir(parents=True)
    assert prefect_db.seed(db, server.prefect_bin(), {}) is True
    made = list(prefect_db.template_dir().glob("prefect-*.db"))
    assert len(made) >= 1 and not list(prefect_db.template_dir().glob(".making-*"))  # no half-made template left
    assert {"flow_run", "alembic_version", "concurrency_limit_v2"} <= _tables(db)
    with sqlite3.connect(db) as con:  # empty: nothing one workspace wrote reaches another
        assert con.execute("select count(*) from flow_run").fetchone() == (0,)
        assert con.execute("select count(*) from concurrency_limit_v2").fetchone() == (0,)
    assert not [p for p in db.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_server_starts_on_the_copy(tmp_path):
    home = tmp_path / "prefect"
    srv = server.start(home)
    try:
        server.prepare(srv.api_url)  # the GPU slot, the pool and the automation are written to the copy
    finally:
        server.stop(home)
    assert "concurrency_limit_v2" in _tables(home / "prefect.db")


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


def test_a_template_left_half_made_by_a_killed_start_is_never_used_and_is_cleared(tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = prefect_db.template_dir()
    abandoned = folder / ".making-killed"
    abandoned.mkdir(parents=True)
    (abandoned / "prefect.db").write_bytes(b"half a database")
    os.utime(abandoned, (0, 0))  # long ago
    db = tmp_path / "prefect.db"
    assert prefect_db.seed(db, server.prefect_bin(), {}) is True
    assert not abandoned.exists() and "flow_run" in _tables(db)


def test_a_failing_upgrade_leaves_no_template_and_the_database_to_the_server(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert prefect_db.seed(tmp_path / "prefect.db", "/bin/false", {}) is False
    assert not (tmp_path / "prefect.db").exists() and list(prefect_db.template_dir().iterdir()) == []
