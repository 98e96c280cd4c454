import os
import signal
import subprocess
import sys
import textwrap

import orjson
import pytest

from asr_flywheel import io as fio


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "metrics.json"
    fio.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), fio.atomic_open(target) as fh:
        fh.write('{"v": 2, "half": ')
        raise RuntimeError("crash mid-write")
    assert orjson.loads(target.read_bytes()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_killed_writer_never_leaves_a_complete_looking_file(tmp_path):
    """SIGKILL mid-write (no cleanup runs): the target must not exist, only a dot-temp file may."""
    target = tmp_path / "per_sample.jsonl"
    code = textwrap.dedent(f"""
        import os, sys, time
        from asr_flywheel import io as fio
        with fio.atomic_open({str(target)!r}) as fh:
            fh.write("x" * 1000)
            fh.flush()
            print("writing", flush=True)
            time.sleep(30)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not target.exists()
    assert all(p.name.startswith(".") for p in tmp_path.iterdir())


def test_jsonl_fast_path_and_fallback_agree(tmp_path):
    tricky = [{"a": "},{"}, {"b": [{"c": 1}, {"d": 2}]}, {"e": "x"}]  # forces the per-row fallback
    plain = [{"a": i, "s": "text"} for i in range(5)]
    for rows in (tricky, plain):
        lines = fio.jsonl_bytes(rows).splitlines()
        assert [orjson.loads(x) for x in lines] == rows


def test_atomic_dir_replaces_only_when_complete(tmp_path):
    target = tmp_path / "model"
    with fio.atomic_dir(target) as d:
        (d / "config.json").write_text("{}")
    with pytest.raises(RuntimeError), fio.atomic_dir(target) as d:
        (d / "partial").write_text("x")
        raise RuntimeError("crash")
    assert sorted(p.name for p in target.iterdir()) == ["config.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
