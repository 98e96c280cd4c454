"""`flywheel` — the human entry point. Every verb is a thin call into the step functions the flows use.

The CLI lives in `flows/` because it is the outermost layer (it may call core, plugins and flows). Each verb
group is one module holding its parsers and commands together; Prefect, torch, NeMo and transformers are imported
only inside the verbs that need them, so `flywheel --help`, `validate`, `score`, `gate`, `split` and `decide`
start fast.

Exit codes: 0 success, 2 bad input (every problem listed), 1 any other failure (one `error:` line; the traceback
with FLYWHEEL_DEBUG=1), 130 interrupted by SIGINT, 143 terminated by SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import traceback

from asr_flywheel.errors import FlywheelError, InputError
from asr_flywheel.flows.cli import building, cycle, manifests, models, recipes, scoring, server, serving
from asr_flywheel.flows.cli._common import print_problems
from asr_flywheel.flows.cli._signals import Interrupted, interrupts_raise

#: Verb groups, in the order `flywheel --help` lists them.
GROUPS = (manifests, building, scoring, models, recipes, cycle, server, serving)

CONFIG_HELP = "TOML configuration (default: $FLYWHEEL_CONFIG or ./flywheel.toml)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flywheel", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--config", help=CONFIG_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    for verb in sub.choices.values():  # `flywheel train --config x.toml ...` works as well as before the verb
        if not any("--config" in a.option_strings for a in verb._actions):
            verb.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with interrupts_raise():
            return int(args.func(args) or 0)
    except (Interrupted, KeyboardInterrupt) as exc:
        sig = exc if isinstance(exc, Interrupted) else Interrupted(2)
        print(sig.message(args.command), file=sys.stderr)
        if argv is None:  # a real process: do not wait for worker threads still busy with the stopped work
            _exit_now_if_threads(sig.exit_code)
        return sig.exit_code
    except SystemExit as exc:
        if type(exc).__name__ == "SIGTERMException":  # Lightning's SIGTERM path exits 0: never report success
            print(Interrupted(15).message(args.command), file=sys.stderr)
            return 143
        raise
    except InputError as err:
        print_problems(err, as_json=False, json_flag=hasattr(args, "json"))
        return err.exit_code
    except FlywheelError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except Exception as err:
        return _unexpected(err)


def _unexpected(err: Exception) -> int:
    """Last resort: one line instead of a traceback (which FLYWHEEL_DEBUG=1 shows), and never exit 0."""
    if os.environ.get("FLYWHEEL_DEBUG", "") not in ("", "0"):
        traceback.print_exc()
    else:
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        print("rerun with FLYWHEEL_DEBUG=1 for the traceback", file=sys.stderr)
    return 1


def _exit_now_if_threads(code: int) -> None:
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
