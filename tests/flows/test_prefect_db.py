"""A new workspace's Prefect database starts from a migrated copy, made once per Prefect version; real servers."""

from __future__ import annotations

import sqlite3

import pytest

from asr_flywheel.flows import prefect_db, server

pytestmark = pytest.mark.slow


def _tables(db) -> set[str]:
    with sqlite3.connect(db) as con:
        return {r[0] for r in con.execute("select name from sqlite_master where type = 'table'")}


def test_a_fresh_server_starts_on_a_copy_of_the_empty_migrated_template_made_once(tmp_path, monkeypatch):
    """`server.start` (what `flywheel server up`, every CLI command's temporary server and the tests use) makes the
    template in the cache on first use and starts the new workspace's database from it. A cache of its own, so that
    another test worker making the shared template at the same moment cannot confuse the checks."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    home = tmp_path / "ws" / "prefect"
    srv = server.start(home)
    try:
        server.prepare(srv.api_url)  # the GPU slot, the pool and the automation are written to the copy
    finally:
        server.stop(home)
    made = list(prefect_db.template_dir().iterdir())
    assert len(made) == 1 and made[0].name.startswith("prefect-") and made[0].suffix == ".db"  # no half-made one
    assert {"flow_run", "alembic_version", "concurrency_limit_v2"} <= _tables(made[0])
    with sqlite3.connect(made[0]) as con:  # empty: nothing one workspace wrote reaches another
        assert con.execute("select count(*) from flow_run").fetchone() == (0,)
        assert con.execute("select count(*) from concurrency_limit_v2").fetchone() == (0,)
    with sqlite3.connect(home / "prefect.db") as con:
        assert con.execute("select count(*) from concurrency_limit_v2").fetchone()[0] >= 1
    assert not [p for p in home.iterdir() if p.name.endswith(".tmp")]


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
