"""What phrase boosting costs: boosted greedy decoding against plain greedy decoding of the same clips, with 10,
100, 1,000 and 10,000 phrases, and the time to build each boosting tree.

    python bench/boost_bench.py [--model examples/bases/realistic/base.nemo] [--clips 32] [--repeats 3]

The clips are flite speech of the demo's cycle-2 terms (synthesised into a temporary folder); the phrase lists
are those terms followed by words of the CMU dictionary (real English spellings, so the tree has realistic
branching). Each repeat decodes plain and boosted alternately, in alternating order; the printed ratio is boosted ÷
plain of the same repeat (these machines are noisy: compare ratios, not absolute times). The target in the product
notes is at most 1.5x at 1,000 phrases.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from asr_flywheel.boost import boost_list
from asr_flywheel.build.arpabet import cmudict
from asr_flywheel.config import BoostConfig
from asr_flywheel.flows.cli import main as flywheel

ROOT = Path(__file__).resolve().parents[1]
SIZES = (10, 100, 1_000, 10_000)


def clips(folder: Path, rows_per_term: int) -> tuple[list[str], list[str]]:
    """(audio paths, terms) of a small flite manifest of the demo's new terms."""
    from asr_flywheel.validation import load_manifest

    out = folder / "manifest.jsonl"
    terms = ROOT / "examples" / "demo" / "new_terms.csv"
    args = [
        "build",
        str(terms),
        "--out",
        str(out),
        "--voices",
        "flite:rms,flite:awb",
        "--rows-per-term",
        str(rows_per_term),
    ]
    if flywheel([*args, "--no-judge", "--json"]) != 0:
        raise SystemExit("could not synthesise the benchmark clips")
    m = load_manifest(out)
    return m.audio_paths, list(dict.fromkeys(t for t in m.column("term") if t))


def phrases(terms: list[str], n: int) -> list[str]:
    words = [w for w in cmudict() if w.isalpha() and len(w) > 3]
    return (terms + words)[:n]


def decode(model, paths: list[str]) -> float:
    start = time.perf_counter()
    model.transcribe(paths, batch_size=16, verbose=False)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "examples" / "bases" / "realistic" / "base.nemo"))
    ap.add_argument("--rows-per-term", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from asr_flywheel.backends.nemo._runtime import load_asr_model
    from asr_flywheel.backends.nemo.boosting import boosted_decoding

    with tempfile.TemporaryDirectory(prefix="boost-bench-") as tmp:
        paths, terms = clips(Path(tmp), args.rows_per_term)
        model = load_asr_model(args.model).eval()
        plain_cfg = boosted_decoding(model.cfg.decoding, boost_list(["x"], BoostConfig(), "plain"))
        plain_cfg.greedy.pop("boosting_tree")
        plain_cfg.greedy.boosting_tree_alpha = 0.0
        model.change_decoding_strategy(plain_cfg, verbose=False)
        decode(model, paths)  # warm-up
        print(f"{len(paths)} clips, {args.repeats} repeats, model {args.model}")
        for n in SIZES:
            boost = boost_list(phrases(terms, n), BoostConfig(alpha=1.0), f"{n} phrases")
            builds, ratios = [], []
            for k in range(args.repeats):
                start = time.perf_counter()
                model.change_decoding_strategy(boosted_decoding(model.cfg.decoding, boost), verbose=False)
                builds.append(time.perf_counter() - start)
                boosted_cfg = model.cfg.decoding
                times = {}
                for name in ("boosted", "plain") if k % 2 == 0 else ("plain", "boosted"):
                    model.change_decoding_strategy(boosted_cfg if name == "boosted" else plain_cfg, verbose=False)
                    times[name] = decode(model, paths)
                ratios.append(times["boosted"] / times["plain"])
            print(
                f"{n:>6} phrases: boosted/plain decoding {statistics.median(ratios):.2f}x "
                f"(repeats {', '.join(f'{r:.2f}' for r in ratios)}); tree build {statistics.median(builds):.2f} s"
            )


if __name__ == "__main__":
    main()
