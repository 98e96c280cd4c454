"""Manifest growth events: publish `flywheel.manifest.grown` so the event-triggered deployment starts a cycle.

Delivery is confirmed: the event is POSTed to the Prefect API (`/events`, 204 expected) rather than sent with
`emit_event`, which returns None on a bad event and silently drops events when the server is unreachable.

Idempotency, in three layers: a version already published is not published again (workspace record); the
event id is derived from (manifest, version), so a replay is the same event; the version is a resource label
the trigger debounces on (`for_each`); and, the guarantee, the cycle claims its version in the workspace, so
a second run for the same version finishes as a no-op.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.cycle import Workspace
from asr_flywheel.errors import FlywheelError, InputError, Problem
from asr_flywheel.flows.server import NoServerError, require_api
from asr_flywheel.validation import load_manifest

EVENT = "flywheel.manifest.grown"
_NAMESPACE = uuid.UUID("6f0d2c1e-3a5b-4c8d-9e7f-1a2b3c4d5e6f")


class PublishError(FlywheelError):
    """The event was not accepted by the Prefect API."""


@dataclass
class Publication:
    manifest: str
    resource_id: str
    version: str
    rows: int
    added_rows: int
    event_id: str | None
    status: str  # "published" | "unchanged"


def resource_id(manifest: str | Path) -> str:
    """`flywheel.manifest.<stem>-<hash of the absolute path>`: stable per manifest file, readable in the UI."""
    p = Path(manifest).resolve()
    stem = "".join(c if c.isalnum() else "-" for c in p.stem.lower()).strip("-") or "manifest"
    return f"flywheel.manifest.{stem}-{hashlib.sha1(str(p).encode()).hexdigest()[:8]}"


def api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise NoServerError("no Prefect API to publish to: set PREFECT_API_URL (e.g. after `flywheel server up`)")
    return url.rstrip("/")


def growth_event(manifest: Path, version: str, rows: int, added_rows: int, *, forced: bool = False) -> dict:
    """The event for one manifest version. The trigger debounces on (manifest, publication): a normal publication
    is the version itself, so replays and bursts start one run; a forced one is a fresh publication (own label,
    own event id, `forced` in the payload), so it really starts a new run, which cycles the version again."""
    rid = resource_id(manifest)
    nonce = uuid.uuid4().hex[:12] if forced else ""
    publication = f"{version}-forced-{nonce}" if forced else version
    return {
        "id": str(uuid.uuid5(_NAMESPACE, f"{rid}@{publication}")),
        "occurred": datetime.now(UTC).isoformat(),
        "event": EVENT,
        "resource": {
            "prefect.resource.id": rid,
            "prefect.resource.name": manifest.name,
            "flywheel.manifest.hash": version,
            "flywheel.manifest.path": str(manifest),
            "flywheel.manifest.publication": publication,
        },
        "payload": {
            "rows": rows,
            "added_rows": added_rows,
            "content_hash": version,
            "manifest": str(manifest),
            "forced": forced,
        },
        "related": [],
    }


def post_events(events: list[dict], url: str | None = None, timeout: float = 10.0) -> None:
    import httpx

    target = f"{url or api_url()}/events"
    try:
        resp = httpx.post(target, json=events, timeout=timeout)
    except httpx.HTTPError as exc:
        raise PublishError(f"could not reach the Prefect API at {target}: {exc}") from exc
    if resp.status_code != 204:
        raise PublishError(f"the Prefect API refused the event ({resp.status_code}): {resp.text[:300]}")


def publish(
    manifest: str | Path, config: FlywheelConfig | None = None, *, force: bool = False, url: str | None = None
) -> Publication:
    """Validate the manifest and publish its growth event, once per version."""
    cfg = config or FlywheelConfig()
    path = Path(manifest).resolve()
    m = load_manifest_or_explain(path, cfg)  # never announce a manifest a cycle would reject
    rid = resource_id(path)
    record_path = Workspace(cfg.workspace).root / "published" / f"{rid}.json"
    last = fio.read_json(record_path) if record_path.exists() else {}
    if last.get("version") == m.version and not force:
        return Publication(str(path), rid, m.version, len(m), 0, last.get("event_id"), "unchanged")
    added = max(0, len(m) - int(last.get("rows", 0)))
    event = growth_event(path, m.version, len(m), added, forced=force)
    post_events([event], url)
    fio.write_json(
        record_path,
        {
            "version": m.version,
            "rows": len(m),
            "event_id": event["id"],
            "published_at": event["occurred"],
            "resource_id": rid,
        },
    )
    return Publication(str(path), rid, m.version, len(m), added, event["id"], "published")


AUDIO_HINT = (
    "the manifest names audio files that do not exist yet: synthesise them with "
    "`flywheel build TERMS.csv --out {manifest}` (espeak-ng; `--append` to grow an existing manifest), or record "
    "them, then publish again"
)


def load_manifest_or_explain(path: Path, cfg: FlywheelConfig):
    """The validated manifest; when audio is missing, the error says how to make it."""
    try:
        return load_manifest(path, cfg)
    except InputError as err:
        if any(p.field == "audio_filepath" and "not found" in p.reason for p in err.problems):
            raise InputError(f"{err.summary}\n{AUDIO_HINT.format(manifest=path)}", err.problems) from None
        raise


def watch(
    manifests: list[str],
    config: FlywheelConfig | None = None,
    *,
    interval: float = 30.0,
    once: bool = False,
    on_publish=print,
) -> None:
    """Poll manifests and publish a growth event whenever one's content changes (and is valid). Bad input (a
    missing manifest, an interval that is not a positive number, no API to publish to) is refused before the
    first poll, never reported as "not published" with success."""
    import math

    problems = [Problem(0, "manifest", f"not found: {m}") for m in manifests if not Path(m).is_file()]
    if not (math.isfinite(interval) and interval > 0):
        problems.append(Problem(0, "--interval", f"must be a positive number of seconds, got {interval!r}"))
    if problems:
        raise InputError("cannot watch", problems)
    require_api(api_url())  # refuses now when there is no server to publish to
    seen: dict[str, tuple[float, int]] = {}
    while True:
        for m in manifests:
            if not Path(m).is_file():
                on_publish(f"{m}: not published: file not found")
                continue
            st = Path(m).stat()
            stamp = (st.st_mtime, st.st_size)
            if seen.get(m) == stamp:
                continue
            seen[m] = stamp
            try:
                pub = publish(m, config)
            except FlywheelError as exc:
                on_publish(f"{m}: not published: {exc}")
                continue
            if pub.status == "published":
                on_publish(f"{m}: published {EVENT} (rows {pub.rows}, +{pub.added_rows}, version {pub.version[:12]})")
        if once:
            return
        time.sleep(interval)
