"""The files of one scoring (docs/design.md#cycle-artifacts): `per_sample.jsonl`, `results.csv`, `metrics.json` and
the leaderboard, written as one set; and reading `per_sample.jsonl` back for paired comparisons.

Apart from `scoring` (which computes the record) so that computing never depends on rendering: this module is the
one place both meet.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np

from asr_flywheel import io as fio
from asr_flywheel.errors import InputError
from asr_flywheel.leaderboard import render_leaderboard
from asr_flywheel.scoring import RESULTS_COLUMNS, ScoreReport


def per_sample_rows(report: ScoreReport) -> list[dict]:
    """Every manifest field (audio path resolved) plus ref, hyp and per-row scores.

    The normalised forms are not stored: normalisation is deterministic (`asr_flywheel.normalize`), and leaving
    them out keeps the file about a quarter smaller."""
    s = report.scores
    m = report.manifest
    ker = [None if k != k else int(k) for k in s.ker.tolist()]  # NaN != NaN: rows without a term
    rows = [
        {
            **row,
            "audio_filepath": audio,
            "ref": row["text"],
            "hyp": hyp,
            "wer": w,
            "cer": c,
            "ker": k,
            "ser": se,
            "word_errors": we,
            "ref_words": rw,
            "char_errors": ce,
            "ref_chars": rc,
        }
        for row, audio, hyp, w, c, k, se, we, rw, ce, rc in zip(
            m.rows,
            m.audio_paths,
            report.hyps,
            np.round(s.wer, 6).tolist(),
            np.round(s.cer, 6).tolist(),
            ker,
            s.ser.astype(np.int64).tolist(),
            s.word_errors.tolist(),
            s.ref_words.tolist(),
            s.char_errors.tolist(),
            s.ref_chars.tolist(),
            strict=True,
        )
    ]
    if (
        report.seen is not None
    ):  # the decision pairs rows by audio and decides on seen terms only (docs/design.md#decision)
        for row, seen in zip(rows, report.seen, strict=True):
            row["seen_term"] = seen
    if report.seen_voice is not None:
        for row, heard in zip(rows, report.seen_voice, strict=True):
            row["seen_voice"] = heard
    return rows


_CSV_SPECIAL = re.compile(r'[",\r\n]')


def results_csv(report: ScoreReport) -> str:
    """results.csv. Text columns are checked once for characters that need CSV quoting; only if one does is the
    csv module used (row by row), else rows are joined directly."""
    s = report.scores
    m = report.manifest
    terms = ["" if t is None else t for t in m.column("term")]
    cats = ["" if c is None else c for c in m.column("entity_category")]
    wer, cer = np.round(s.wer, 6).tolist(), np.round(s.cer, 6).tolist()
    ker = ["" if k != k else str(int(k)) for k in s.ker.tolist()]
    ser = s.ser.astype(np.int64).tolist()
    columns = (m.audio_paths, terms, cats, wer, cer, ker, ser)
    if any(_CSV_SPECIAL.search("\x1f".join(col)) for col in columns[:3]):
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(RESULTS_COLUMNS)
        w.writerows(zip(*columns, strict=True))
        return buf.getvalue()
    header = ",".join(RESULTS_COLUMNS) + "\n"
    return header + "".join(
        [f"{a},{t},{c},{w},{ce},{k},{se}\n" for a, t, c, w, ce, k, se in zip(*columns, strict=True)]
    )


def write_score_outputs(
    report: ScoreReport, out_dir: str | Path, *, leaderboard: bool = True, files: fio.FileSet | None = None
) -> dict[str, Path]:
    """Write the per-cycle scoring files as one set (`fio.FileSet`: all or none, metrics.json last); returns
    {kind: path}. With `files`, they join the caller's set, which the caller commits."""
    if files is None:
        with fio.file_set() as own:
            return write_score_outputs(report, out_dir, leaderboard=leaderboard, files=own)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "per_sample": files.write_jsonl(out / "per_sample.jsonl", per_sample_rows(report)),
        "results": files.write_text(out / "results.csv", results_csv(report)),
    }
    if leaderboard:
        paths["leaderboard"] = files.write_text(
            out / f"leaderboard_cycle{report.metrics.cycle}.md", render_leaderboard(report.metrics)
        )
    paths["metrics"] = files.write_json(
        out / "metrics.json", report.metrics.to_dict()
    )  # last: readers take it as "done"
    return paths


def per_sample_path(metrics_path: str | Path) -> Path:
    return Path(metrics_path).parent / "per_sample.jsonl"


def load_per_sample(metrics_path: str | Path) -> list[dict]:
    """The per_sample.jsonl written next to a metrics.json (needed for paired comparisons)."""
    p = per_sample_path(metrics_path)
    if not p.is_file():
        raise InputError(f"{p} not found: paired comparisons need the per_sample.jsonl written next to {metrics_path}")
    return fio.read_jsonl(p)
