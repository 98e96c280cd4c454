"""Helpers shared by tests and benchmarks (pytest puts tests/support on sys.path; only this folder, so the
test folders that mirror package names never shadow the real packages)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

CLINICAL_SENTENCES = [
    ("give cefazolin two grams before the incision", "cefazolin", "drug"),
    ("start metoprolol tartrate twenty five milligrams", "metoprolol tartrate", "drug"),
    ("hold the vancomycin dose tonight", "vancomycin", "drug"),
    ("the patient is scheduled for laparoscopic cholecystectomy", "laparoscopic cholecystectomy", "procedure"),
    ("there is mild dilation of the left ventricle", "left ventricle", "anatomy"),
    ("history of atrial fibrillation", "atrial fibrillation", "condition"),
    ("repeat troponin in six hours", "troponin", "lab"),
    ("page the anesthesiologist now", "anesthesiologist", "role"),
]


def write_manifest(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


#: Extra sentences so tiny datasets have >= 5 rows in the priority category and some variety.
EXTRA_SENTENCES = [
    ("give cefazolin before surgery", "cefazolin", "drug"),
    ("restart metoprolol tartrate tomorrow", "metoprolol tartrate", "drug"),
    ("vancomycin trough is pending", "vancomycin", "drug"),
    ("the left ventricle looks normal", "left ventricle", "anatomy"),
    ("troponin is rising", "troponin", "lab"),
    ("schedule a laparoscopic cholecystectomy", "laparoscopic cholecystectomy", "procedure"),
    ("new onset atrial fibrillation", "atrial fibrillation", "condition"),
    ("call the anesthesiologist", "anesthesiologist", "role"),
]


def dataset_rows(n_voices: int = 2) -> list[tuple[str, str, str, str]]:
    """(text, term, category, voice) rows: every sentence in every voice (16 sentences x voices)."""
    voices = ["en-us", "en-gb", "en-us+f3"][:n_voices]
    return [(t, term, cat, v) for v in voices for (t, term, cat) in CLINICAL_SENTENCES + EXTRA_SENTENCES]


def start_fake_gated_hub(repo: str = "google/medasr"):
    """A local HTTP server standing in for the Hugging Face Hub (which cannot be reached from these machines).

    Returns (server, url). Stop it with server.shutdown().
    """
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def _reply(self):
            auth = self.headers.get("Authorization")
            if auth:
                code, msg = 403, f"Access to model {repo} is restricted and you are not in the authorized list."
            else:
                code, msg = (
                    401,
                    f"Access to model {repo} is restricted. You must have access to it and be "
                    "authenticated to access it. Please log in.",
                )
            body = json.dumps({"error": msg}).encode()
            self.send_response(code)
            self.send_header("X-Error-Code", "GatedRepo")
            self.send_header("X-Error-Message", msg)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_POST = _reply

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def write_tiny_cycle_config(
    path: Path, workspace: Path, base_model: Path, *, epochs: int = 2, **overrides: dict
) -> Path:
    """flywheel.toml for a tiny cycle: the 32-row test set passes the gate (min_rows lowered), 1-2 epochs.

    `overrides` maps a section name to keys merged over these defaults, e.g. cycle={"deployer": "x"}.
    """
    sections: dict[str, dict] = {
        "gate": {"min_rows": 20},
        "cycle": {"base_model": str(base_model), "shard_size": 16, "gpu_lease_s": 60},
        "hyperparameters": {"epochs": epochs, "batch_size": 8, "warmup_steps": 1},
    }
    for name, body in overrides.items():
        sections.setdefault(name, {}).update(body)
    lines = [f"workspace = {json.dumps(str(workspace))}"]
    for name, body in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in body.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def subprocess_env(server, config: Path, **extra) -> dict:
    """Environment for a `flywheel` subprocess talking to a test Prefect server with a given flywheel.toml."""
    from asr_flywheel.flows.server import clean_env

    return clean_env(server.home, server.api_url, {"FLYWHEEL_CONFIG": str(config), **extra})


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (servers under test bind 127.0.0.1 only)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def small_filesystem(path: Path, free_bytes: int):
    """A real tmpfs mounted at `path` with about `free_bytes` left (the rest taken by a filler file), for full-disk
    tests; a context manager. Needs root (as the test machines and CI run); skips the test otherwise."""
    import contextlib
    import subprocess

    import pytest

    @contextlib.contextmanager
    def mounted():
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        try:
            with open(path / "filler", "wb") as fh:
                fh.write(b"\0" * (1024 * 1024 - free_bytes))
            yield path
        finally:
            subprocess.run(["umount", "-l", str(path)], check=False)

    return mounted()


def cycle_record(workspace: Path, n: int = 1) -> dict:
    """`cycle.json` of the workspace's cycle N ({} until it is written)."""
    p = workspace / "cycles" / f"cycle-{n:04d}" / "cycle.json"
    return json.loads(p.read_text()) if p.exists() else {}


def wait_until(predicate, proc: subprocess.Popen, log: Path, timeout: float = 300.0, poll: float = 0.2):
    """The predicate's first truthy value; fails with the log's tail if `proc` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        assert proc.poll() is None, f"exited early ({proc.returncode}):\n{log.read_text()[-3000:]}"
        time.sleep(poll)
    proc.kill()
    raise AssertionError(f"timed out:\n{log.read_text()[-3000:]}")


#: The committed demo base (a real tiny NeMo CTC model trained here on general English) and the demo's cycle-2
#: terms, which it never heard: the boosting tests' model and words.
REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_BASE = REPO_ROOT / "examples" / "bases" / "espeak" / "base.nemo"
DEMO_NEW_TERMS = REPO_ROOT / "examples" / "demo" / "new_terms.csv"


def build_new_terms(out: Path, voices: str, rows_per_term: int) -> Path:
    """A manifest of the demo's cycle-2 terms in espeak-ng voices like the base's, built with `flywheel build`."""
    from asr_flywheel.flows.cli import main

    args = ["build", str(DEMO_NEW_TERMS), "--out", str(out), "--voices", voices]
    assert main([*args, "--rows-per-term", str(rows_per_term), "--no-judge"]) == 0
    return out
