"""The judge's cost next to synthesis: the same build with and without PocketSphinx hearing every clip.

    python bench/judge_bench.py [--terms examples/clinical/terms.csv] [--rows-per-term 4] [--repeats 3]

Each repeat builds the same manifest twice into fresh folders, `--no-judge` and judged, alternating which goes
first, and prints the wall times, the judge's own time (its thread's busy time, overlapped with synthesis), and
the ratio judged / unjudged of the same repeat (these machines are noisy: compare ratios, not absolute times).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from asr_flywheel.build.options import BuildOptions
from asr_flywheel.flows.building import build_manifest

ROOT = Path(__file__).resolve().parents[1]


def one(terms: Path, options: BuildOptions) -> tuple[float, float, float, int]:
    with tempfile.TemporaryDirectory(prefix="judge-bench-") as tmp:
        start = time.perf_counter()
        report = build_manifest(terms, Path(tmp) / "m.jsonl", options)
        wall = time.perf_counter() - start
    judge = report.judge.seconds if report.judge else 0.0
    clips = report.judge.rows if report.judge else report.rows_added
    return wall, report.synthesis_seconds, judge, clips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--terms", type=Path, default=ROOT / "examples" / "clinical" / "terms.csv")
    ap.add_argument("--rows-per-term", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    judged = BuildOptions(rows_per_term=args.rows_per_term, progress=False)
    plain = dataclasses.replace(judged, judge=None)
    one(args.terms, dataclasses.replace(plain, rows_per_term=1))  # warm-up: engines, caches, the judge's imports
    ratios = []
    for k in range(args.repeats):
        order = [("no judge", plain), ("judged", judged)]
        results = {}
        for name, opts in order if k % 2 == 0 else order[::-1]:
            results[name] = one(args.terms, opts)
        (w0, s0, _, n), (w1, s1, j1, _) = results["no judge"], results["judged"]
        ratios.append(w1 / w0)
        print(
            f"repeat {k + 1}: {n} clips; no judge {w0:.1f}s (synthesis {s0:.1f}s); judged {w1:.1f}s "
            f"(synthesis {s1:.1f}s, judge busy {j1:.1f}s); judged/unjudged {w1 / w0:.2f}x"
        )
    print(f"median judged/unjudged wall-time ratio: {statistics.median(ratios):.2f}x over {len(ratios)} repeats")


if __name__ == "__main__":
    main()
