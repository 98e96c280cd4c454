"""`watch_manifests`: one pass of the manifest watcher as a Prefect flow (scheduled by `manifest-watch`)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from asr_flywheel.config import load_config
from asr_flywheel.flows.events import publish


@flow(name="manifest-watch", log_prints=True)
def watch_manifests(manifests: list[str] | None = None, config_path: str | None = None) -> list[dict]:
    """Publish a growth event for every watched manifest whose content changed since its last event."""
    cfg = load_config(config_path)
    log = get_run_logger()
    results = []
    for m in manifests or list(cfg.cycle.watch):
        try:
            pub = publish(m, cfg)
        except Exception as exc:  # one bad manifest must not hide the others
            log.error("%s: not published: %s", m, exc)
            results.append({"manifest": m, "status": "error", "error": str(exc)})
            continue
        log.info("%s: %s (version %s…, %d rows, +%d)", m, pub.status, pub.version[:12], pub.rows, pub.added_rows)
        results.append({"manifest": m, "status": pub.status, "version": pub.version})
    return results
