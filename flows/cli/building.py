"""Manifest growth by synthesis: `flywheel build TERMS.csv --out MANIFEST [--append]`."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from asr_flywheel.errors import InputError
from asr_flywheel.flows.cli._common import config_from, print_problems


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build",
        help="synthesise (or --append to) a manifest from a term CSV (term,entity_category); exit 2 lists bad terms",
    )
    p.add_argument("terms", help="CSV with columns term,entity_category")
    p.add_argument("--out", required=True, help="manifest to write (JSONL); WAVs go to <its dir>/--audio-dir")
    p.add_argument(
        "--voices",
        type=_csv,
        help="comma-separated voice ids engine:voice (default: flite:rms,flite:awb,flite:kal16,festival:kal,"
        "festival:slt_hts); a bare id belongs to --synthesizer's engine",
    )
    p.add_argument("--noise", type=_csv, help="comma-separated levels: clean,snr_15db,snr_5db (default: clean)")
    p.add_argument("--noise-kinds", type=_csv, help="comma-separated noise kinds: pink,babble (default: both)")
    p.add_argument("--contexts", type=_csv, help="comma-separated context types (default: all shipped templates)")
    p.add_argument(
        "--rows-per-term", type=int, help="sample N distinct (context, sentence, voice, noise) rows per term"
    )
    p.add_argument(
        "--overrides", type=Path, help="verified pronunciations CSV: term,phonemes[,alphabet ipa|arpabet|espeak]"
    )
    p.add_argument(
        "--lexicon",
        type=Path,
        help="lexicon pronunciations CSV (same columns), below overrides; `cmudict`: the CMU dictionary",
    )
    p.add_argument("--append", action="store_true", help="add rows for new terms; existing rows are never rewritten")
    p.add_argument("--synthesizer", help="the engine of voice ids given without engine: (default: espeak-ng)")
    p.add_argument("--no-judge", action="store_true", help="do not have the judge (PocketSphinx) hear every clip")
    p.add_argument("--judge-max", type=float, help="reject rows whose judged carrier-word WER is above this (0.5)")
    p.add_argument("--babble-voices", type=_csv, help="comma-separated voices that speak the babble noise")
    p.add_argument("--workers", type=int, help="parallel syntheses (default: all cores)")
    p.add_argument("--seed", type=int, help="seed for sentence choice and noise (default: 0)")
    p.add_argument("--audio-dir", help="WAV folder relative to the manifest (default: audio)")
    p.add_argument("--json", action="store_true", help="print the build report (or the problems) as JSON")
    p.set_defaults(func=cmd_build)


def _options(args):
    from asr_flywheel.build.options import BuildOptions

    given = {
        "voices": args.voices,
        "noise": args.noise,
        "noise_kinds": args.noise_kinds,
        "contexts": args.contexts,
        "rows_per_term": args.rows_per_term,
        "overrides": args.overrides,
        "lexicon": args.lexicon,
        "synthesizer": args.synthesizer,
        "babble_voices": args.babble_voices,
        "workers": args.workers,
        "seed": args.seed,
        "audio_dir": args.audio_dir,
        "judge_max": args.judge_max,
    }
    options = BuildOptions(**{k: v for k, v in given.items() if v is not None}, progress=not args.json)
    return dataclasses.replace(options, judge=None) if args.no_judge else options


def cmd_build(args) -> int:
    from asr_flywheel.flows.building import build_manifest

    try:
        report = build_manifest(args.terms, args.out, _options(args), args.append, config=config_from(args))
    except InputError as err:
        print_problems(err, args.json)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    if report.terms_present:
        print(f"kept {len(report.terms_present)} term(s) already in {args.out} as they are")
    if not report.rows_added:
        print(f"{args.out}: nothing to add; version {(report.version or '')[:12]} unchanged")
        if report.judge is not None:
            print_judge(report)
        return 0
    sources = ", ".join(f"{k} {v}" for k, v in sorted(report.by_ipa_source.items()))
    noise = ", ".join(f"{k} {v}" for k, v in sorted(report.by_noise_kind.items()))
    snr = "" if report.max_snr_error_db is None else f"; measured SNR within {report.max_snr_error_db:.3f} dB of labels"
    print(
        f"{args.out}: +{report.rows_added} rows ({len(report.terms_added)} terms) = {report.rows_total} rows, "
        f"version {report.version[:12]} in {report.seconds:.1f}s\n  ipa_source: {sources}; noise: {noise}{snr}"
    )
    if report.judge is not None:
        print_judge(report)
    if args.append and report.version_before:
        print(f"  grown from version {report.version_before[:12]}: announce it with `flywheel publish {args.out}`")
    return 0


def print_judge(report) -> None:
    j = report.judge
    print(
        f"  judge {j.model}: carrier-word WER of {j.rows} new clip(s) in {j.seconds:.1f}s "
        f"(synthesis {report.synthesis_seconds:.1f}s, overlapped)"
    )
    rows = (("all", {"": j.overall}),) if j.overall else ()
    for title, table in (*rows, ("voice", j.by_voice), ("noise", j.by_noise)):
        for key, st in table.items():
            print(f"    {title} {key:<22} median {st['median']:.3f}  mean {st['mean']:.3f}  n={st['n']}")
    if j.rejected:
        print(f"  {j.rejected} row(s) above --judge-max {j.limit:g} were not appended: listed in {j.rejects_file}")
    for voice in j.voices_over_limit:
        print(f"  voice {voice}: median carrier WER above {j.limit:g}; a recogniser trained on people cannot follow it")
    if report.terms_without_rows:
        print(f"  terms left without rows (all rejected): {', '.join(report.terms_without_rows)}")
