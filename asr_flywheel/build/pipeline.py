"""Synthesis and judging, overlapped: clips are synthesised by a thread pool (each engine is its own process) while
one judge thread transcribes the finished ones in batches (the judge spreads a batch over its own processes).

The judge is any loaded model with `transcribe(paths, batch_size=...) -> list[str]`; the build asks the
eval-only `cmu/pocketsphinx-en-us` by default. Rows above the limit are split off here and never reach the
manifest; the caller writes them to the rejects file.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

from asr_flywheel import io as fio
from asr_flywheel.build.judge import JudgeSummary, Verdict, carrier_wer, summarise
from asr_flywheel.build.options import BuildOptions
from asr_flywheel.build.plan import Utterance
from asr_flywheel.build.render import render
from asr_flywheel.io import jsonl_bytes

#: Clips per judge call: enough to keep every judge process busy, small enough to overlap with synthesis.
JUDGE_BATCH = 16


@dataclass
class Rendered:
    rows: list[dict] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    synthesis_seconds: float = 0.0
    judge_seconds: float = 0.0


def _judge_batch(judge: Any, rows: list[dict], base_dir: Path) -> tuple[list[Verdict], float]:
    start = time.monotonic()
    paths = [str(base_dir / r["audio_filepath"]) for r in rows]
    hyps = judge.transcribe(paths, batch_size=len(paths))
    verdicts = [
        Verdict(r["audio_filepath"], r["voice_id"], r["noise_level"], h, carrier_wer(r["text"], h, r["term"]))
        for r, h in zip(rows, hyps, strict=True)
    ]
    return verdicts, time.monotonic() - start


def render_and_judge(
    utts: list[Utterance], synth, babble, options: BuildOptions, base_dir: Path, workers: int, progress, judge
) -> Rendered:
    """Every utterance's rows (in plan order), each with `judge_carrier_wer` when a judge is given."""
    bar = progress_bar(len(utts), options, progress)
    clips = sum(len(u.rows) for u in utts)
    judge_bar = progress_bar(clips, options, None if progress is None else _quiet, "judging") if judge else _quiet
    rate = cast(int, options.sample_rate)
    judged_clips = [0]

    def heard(n: int, _batch: Future) -> None:  # runs on the judge thread as each batch finishes
        judged_clips[0] += n
        judge_bar(judged_clips[0], clips)

    out = Rendered()
    start = time.monotonic()
    pending: list[dict] = []
    judged: list[Future] = []
    with ThreadPoolExecutor(workers) as pool, ThreadPoolExecutor(1) as judge_thread:
        futures = [pool.submit(render, u, synth, babble, base_dir, rate) for u in utts]
        try:
            for done, fut in enumerate(futures, 1):
                rows = fut.result()
                out.rows += rows
                bar(done, len(utts))
                if judge is not None:
                    pending += rows
                    if len(pending) >= JUDGE_BATCH or done == len(futures):
                        jf = judge_thread.submit(_judge_batch, judge, pending, base_dir)
                        jf.add_done_callback(partial(heard, len(pending)))
                        judged.append(jf)
                        pending = []
            out.synthesis_seconds = time.monotonic() - start
            for jf in judged:
                verdicts, seconds = jf.result()
                out.verdicts += verdicts
                out.judge_seconds += seconds
        except BaseException:
            for f in [*futures, *judged]:
                f.cancel()
            raise
    by_path = {v.audio_filepath: v for v in out.verdicts}
    for row in out.rows:
        if row["audio_filepath"] in by_path:
            row["judge_carrier_wer"] = by_path[row["audio_filepath"]].carrier_wer
    return out


def _quiet(done: int, total: int) -> None:
    return None


def rejects_path(manifest: Path) -> Path:
    return manifest.with_name(manifest.stem + ".rejects.jsonl")


def split_rejects(rendered: Rendered, options: BuildOptions, out: Path, model: str) -> tuple[list[dict], JudgeSummary]:
    """Rows within the judge's limit, and the summary; rejected rows are added to the rejects file with the reason."""
    summary = summarise(rendered.verdicts, model, options.judge_max)
    summary.seconds = round(rendered.judge_seconds, 2)
    kept, rejected = [], []
    hyps = {v.audio_filepath: v.hypothesis for v in rendered.verdicts}
    for row in rendered.rows:
        wer = row.get("judge_carrier_wer")
        if wer is not None and wer > options.judge_max:
            reason = f"judge {model} carrier-word WER {wer:.2f} > --judge-max {options.judge_max:g}"
            rejected.append({**row, "reason": reason, "judge_hypothesis": hyps.get(row["audio_filepath"], "")})
        else:
            kept.append(row)
    if rejected:
        path = rejects_path(out)
        previous = path.read_bytes() if path.exists() else b""
        fio.write_bytes(path, previous + jsonl_bytes(rejected))
        summary.rejects_file = str(path)
    return kept, summary


def progress_bar(total: int, options: BuildOptions, progress, desc: str = "synthesising"):
    if progress is not None:
        return progress
    if not options.progress:
        return _quiet
    from tqdm import tqdm

    unit = "clip" if desc == "judging" else "utt"
    bar = tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, dynamic_ncols=True)

    def update(done: int, total: int) -> None:
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update
