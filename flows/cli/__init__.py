"""`flywheel` — the human entry point. Every verb is a thin call into the step functions the flows use.

The CLI lives in `flows/` because it is the outermost layer (it may call core, plugins and flows). Each verb
group is one module holding its parsers and commands together; Prefect, torch, NeMo and transformers are imported
only inside the verbs that need them, so `flywheel --help`, `validate`, `score`, `gate`, `split` and `decide`
start fast.

Exit codes: 0 success, 2 bad input (every problem listed), 1 any other failure.
"""

from __future__ import annotations

import argparse
import sys

from asr_flywheel.errors import FlywheelError, InputError
from asr_flywheel.flows.cli import cycle, manifests, models, scoring, server

#: Verb groups, in the order `flywheel --help` lists them.
GROUPS = (manifests, scoring, models, cycle, server)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flywheel", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="TOML configuration (default: $FLYWHEEL_CONFIG or ./flywheel.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as err:
        print(err.render(limit=None), file=sys.stderr)
        return err.exit_code
    except FlywheelError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
