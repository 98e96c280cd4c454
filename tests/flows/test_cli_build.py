"""`flywheel build` as users run it: bad terms exit 2 with every line, a built manifest validates, and an
appended one is announced by `flywheel publish` (real Prefect server from the session fixture)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asr_flywheel.flows.cli import main

FLYWHEEL = Path(sys.executable).with_name("flywheel")
FAST = ["--voices", "flite:rms", "--contexts", "handoff", "--workers", "2"]


def _csv(path: Path, body: str) -> Path:
    path.write_text("term,entity_category\n" + body)
    return path


def test_bad_terms_exit_2_listing_every_line_and_nothing_is_built(tmp_path):
    terms = _csv(tmp_path / "bad.csv", "cefazolin,drug\n,drug\nsepsis,vitals\nCefazolin,drug\n头孢唑林,drug\n")
    out = tmp_path / "m.jsonl"
    res = subprocess.run([str(FLYWHEEL), "build", str(terms), "--out", str(out), *FAST], capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    for line, what in (
        (3, "empty term"),
        (4, "'vitals' is not in the vocabulary"),
        (5, "duplicate of line 2"),
        (6, "cannot speak"),
    ):
        assert f"line {line}: " in res.stderr and what in res.stderr
    assert "Traceback" not in res.stderr and not out.exists()
    res = subprocess.run(
        [str(FLYWHEEL), "build", str(terms), "--out", str(out), "--json", *FAST], capture_output=True, text=True
    )
    assert res.returncode == 2 and [p["line"] for p in json.loads(res.stdout)] == [3, 4, 5, 6]


def test_built_manifest_passes_validate(tmp_path, capsys):
    out = tmp_path / "data" / "m.jsonl"
    terms = _csv(tmp_path / "t.csv", "troponin,lab\n")
    assert main(["build", str(terms), "--out", str(out), "--noise", "clean,snr_15db", "--no-judge", *FAST]) == 0
    assert "+2 rows" in capsys.readouterr().out
    assert main(["validate", str(out)]) == 0
    assert "2 rows valid (audio checked)" in capsys.readouterr().out


@pytest.mark.slow
def test_append_then_publish_announces_the_grown_version(tmp_path, capsys, prefect_server):
    config = tmp_path / "flywheel.toml"
    config.write_text(f'workspace = "{tmp_path / "ws"}"\n')
    out = tmp_path / "m.jsonl"
    common = ["--config", str(config)]
    assert main([*common, "build", str(_csv(tmp_path / "a.csv", "sepsis,condition\n")), "--out", str(out), *FAST]) == 0
    assert main([*common, "publish", str(out)]) == 0
    grown = _csv(tmp_path / "b.csv", "sepsis,condition\nlactate,lab\n")
    capsys.readouterr()
    assert main([*common, "build", str(grown), "--out", str(out), "--append", *FAST]) == 0
    said = capsys.readouterr().out
    assert "kept 1 term(s)" in said and "+1 rows" in said and "flywheel publish" in said
    assert main([*common, "publish", str(out)]) == 0
    assert "2 rows (+1)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("out", "message"),
    [("{dir}", "is a directory; give the manifest file"), ("/proc/flywheel/m.jsonl", "is not writable")],
)
def test_an_unusable_out_is_refused_before_any_clip_is_synthesised(out, message, tmp_path, capsys):
    if out.startswith("/proc") and not Path("/proc/self").is_dir():
        pytest.skip("needs Linux /proc")
    terms = _csv(tmp_path / "t.csv", "cefazolin,drug\n")
    assert main(["build", str(terms), "--out", out.format(dir=tmp_path), *FAST]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "audio").exists()


def test_an_snr_out_of_range_is_refused_before_any_synthesis(tmp_path, capsys):
    terms = _csv(tmp_path / "t.csv", "cefazolin,drug\n")
    out = tmp_path / "m.jsonl"
    assert main(["build", str(terms), "--out", str(out), *FAST, "--noise", "clean,snr_999db"]) == 2
    err = capsys.readouterr().err
    assert "snr_999db" in err and "between -20 and 60 dB" in err
    assert not out.exists() and not (tmp_path / "audio").exists()


def test_built_wavs_follow_the_umask_so_other_users_can_read_them(tmp_path, capsys):
    import os
    import stat

    terms = _csv(tmp_path / "t.csv", "cefazolin,drug\n")
    previous = os.umask(0o022)
    try:
        assert main(["build", str(terms), "--out", str(tmp_path / "m.jsonl"), *FAST, "--rows-per-term", "2"]) == 0
    finally:
        os.umask(previous)
    wavs = list(tmp_path.rglob("*.wav"))
    assert wavs and all(stat.S_IMODE(w.stat().st_mode) == 0o644 for w in wavs)


def test_build_on_a_full_disk_says_so_and_leaves_no_partial_clip_or_manifest(tmp_path, capsys):
    from helpers import small_filesystem

    terms = _csv(tmp_path / "t.csv", "cefazolin,drug\nvancomycin,drug\n")
    with small_filesystem(tmp_path / "disk", free_bytes=64 * 1024) as disk:
        code = main(["build", str(terms), "--out", str(disk / "m.jsonl"), *FAST, "--rows-per-term", "3"])
        err = capsys.readouterr().err
        assert code != 0 and "no space left on the device" in err and "Format not recognised" not in err
        assert f"device holding {disk}" in err and ".synth-" not in err.partition("device holding")[2].split()[0]
        assert not (disk / "m.jsonl").exists()
        assert not [p for p in disk.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]
