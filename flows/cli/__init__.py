"""`flywheel` — the human entry point. Every verb is a thin call into the step functions the flows use.

The CLI lives in `flows/` because it is the outermost layer (it may call core, plugins and flows). Each verb
group is one module holding its parsers and commands together; Prefect, torch, NeMo and transformers are imported
only inside the verbs that need them, so `flywheel --help`, `validate`, `score`, `gate`, `split` and `decide`
start fast.

Exit codes: 0 success, 2 bad input (every problem listed), 1 any other failure (one `error:` line; the traceback
with FLYWHEEL_DEBUG=1), 130 interrupted by SIGINT, 143 terminated by SIGTERM. Error text is passed through
`secrets.redact`: an exception that quotes a token never prints it.
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
from asr_flywheel.flows.cli._signals import Interrupted, interrupts_raise, signal_of, stop_temporary_prefect_server
from asr_flywheel.secrets import redact

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


#: Environment a verb may set for Prefect (`prefect_env_defaults`); restored when `main` returns, so an in-process
#: call (tests, an embedding application) does not leave a stopped server's URL behind for what runs next.
_PREFECT_ENV = ("PREFECT_HOME", "PREFECT_API_URL")


def main(argv: list[str] | None = None) -> int:
    saved = {k: os.environ.get(k) for k in _PREFECT_ENV}
    try:
        return _main(argv)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    failure: BaseException | None = None
    with interrupts_raise(hard_exit=argv is None, verb=args.command) as received:
        try:
            code = int(args.func(args) or 0)
        except BaseException as exc:
            code, failure = 1, exc
    stop_temporary_prefect_server()  # the server this command started for itself, however the verb ended
    signum = received.signum or (signal_of(failure) if failure else None)
    if signum:  # a signal arrived: never report success, whatever the interrupted code made of it
        return _interrupted(Interrupted(signum), args.command, hard_exit=argv is None)
    return _failure(failure, args) if failure else code


def _failure(exc: BaseException, args: argparse.Namespace) -> int:
    if isinstance(exc, InputError):
        print_problems(exc, as_json=False, json_flag=hasattr(args, "json"))
        return exc.exit_code
    if isinstance(exc, FlywheelError):
        print(redact(f"error: {exc}"), file=sys.stderr)
        return exc.exit_code
    if isinstance(exc, Exception):
        return _unexpected(exc)
    raise exc  # SystemExit and the like from a verb keep their meaning


def _interrupted(sig: Interrupted, verb: str, *, hard_exit: bool) -> int:
    print(sig.message(verb), file=sys.stderr)
    if hard_exit:  # a real process: do not wait for worker threads still busy with the stopped work
        _exit_now_if_threads(sig.exit_code)
    return sig.exit_code


def _unexpected(err: Exception) -> int:
    """Last resort: one line instead of a traceback (which FLYWHEEL_DEBUG=1 shows), and never exit 0."""
    if os.environ.get("FLYWHEEL_DEBUG", "") not in ("", "0"):
        print(redact("".join(traceback.format_exception(err))), end="", file=sys.stderr)
    else:
        print(redact(f"error: {type(err).__name__}: {err}"), file=sys.stderr)
        print("rerun with FLYWHEEL_DEBUG=1 for the traceback", file=sys.stderr)
    return 1


def _exit_now_if_threads(code: int) -> None:
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.stdout.flush()
        sys.stderr.flush()
        stop_temporary_prefect_server()  # os._exit skips the atexit hook that would
        os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
