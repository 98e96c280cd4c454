"""The GPU slot: one training per GPU, never stuck behind a dead holder, never waiting in silence.

The slot is a strict Prefect global concurrency limit (limit 1) taken with a lease that a background thread renews.
Prefect alone does not free a slot whose holder died with its server: a temporary server keeps leases in memory, so
the leases vanish with it while the limit's `active_slots` (in the database) stays at 1 (PrefectHQ/prefect#17415,
#20090). So the product does three things:

- servers it starts keep leases on disk (`LEASE_STORAGE`), so a restarted server's repossessor revokes them;
- the holder is recorded in a Prefect Variable (`flywheel-slot-<name>`: flow run, cycle, process, lease, since);
- a waiter checks the holder every `WAIT_REPORT_S`: when its flow run is terminal or missing, its process is gone
  (same host), or its run stopped heart-beating (`PREFECT_FLOWS_HEARTBEAT_FREQUENCY`), the lease is released, the
  counter reset if no lease is left, a still-"Running" run is marked Crashed, and the reclaim is logged. Otherwise
  it logs who holds the slot, since when, and how to free it, and puts the same line in the run's state message.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from uuid import UUID

from asr_flywheel.flows.artifacts import set_state_message
from asr_flywheel.processes import alive

#: Module Prefect's server uses to keep concurrency leases; on disk they survive a server restart.
LEASE_STORAGE = "prefect.server.concurrency.lease_storage.filesystem"
#: Seconds between flow-run heartbeats (Prefect's own events, read by the zombie automation and `holder_alive`).
HEARTBEAT_S = 30
#: A waiter reports (and re-checks the holder) this often.
WAIT_REPORT_S = 30.0
_TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def variable_name(slot: str) -> str:
    return f"flywheel-slot-{slot}".lower().replace("_", "-")


def release_hint(slot: str) -> str:
    return f"`flywheel server slots --release {slot}` frees it once you are sure the holder is gone"


@dataclass(frozen=True)
class SlotHolder:
    """Who holds a slot: enough to find the run in the UI, the process on its host, and the lease to release."""

    slot: str
    flow_run_id: str
    flow_run_name: str
    cycle: str
    pid: int
    host: str
    since: float
    lease_id: str = ""

    def describe(self) -> str:
        when = datetime.fromtimestamp(self.since, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return (
            f"flow run {self.flow_run_name or '?'} ({self.flow_run_id}), cycle {self.cycle or '?'}, "
            f"pid {self.pid} on {self.host}, since {when}"
        )

    @classmethod
    def from_value(cls, value: object) -> SlotHolder | None:
        if isinstance(value, str):
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        if not isinstance(value, dict):
            return None
        try:
            return cls(**{k: value[k] for k in cls.__dataclass_fields__ if k in value})
        except TypeError:
            return None


@dataclass(frozen=True)
class SlotState:
    """A slot as `flywheel server slots` shows it."""

    name: str
    limit: int
    active: int
    holder: SlotHolder | None

    def describe(self) -> str:
        if self.active < self.limit:
            return f"{self.name}: free ({self.active}/{self.limit} in use)"
        who = self.holder.describe() if self.holder else "holder not recorded"
        return f"{self.name}: held ({self.active}/{self.limit}) by {who}"


def _client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def ensure_slot(name: str) -> None:
    """Create the global concurrency limit (limit 1) if missing: strict mode refuses unknown limits."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with _client() as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


def read_holder(slot: str) -> SlotHolder | None:
    from prefect.variables import Variable

    return SlotHolder.from_value(Variable.get(variable_name(slot), default=None))


def _write_holder(holder: SlotHolder | None, slot: str) -> None:
    from prefect.variables import Variable

    if holder is None:
        with contextlib.suppress(Exception):
            Variable.unset(variable_name(slot))
        return
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    for attempt in range(3):  # a record cleared between Prefect's read and its update answers 404: write it again
        try:
            Variable.set(variable_name(slot), json.dumps(asdict(holder)), overwrite=True)
            return
        except (ObjectNotFound, PrefectHTTPStatusError) as exc:
            status = getattr(getattr(exc, "response", None), "status_code", 404)
            if status != 404 or attempt == 2:
                raise


def slot_state(name: str) -> SlotState:
    from prefect.exceptions import ObjectNotFound

    with _client() as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            return SlotState(name, 1, 0, None)
    return SlotState(name, limit.limit, limit.active_slots, read_holder(name))


def all_slots() -> list[SlotState]:
    with _client() as client:
        limits = client.read_global_concurrency_limits(limit=200)
    return [SlotState(lim.name, lim.limit, lim.active_slots, read_holder(lim.name)) for lim in limits]


def holder_alive(holder: SlotHolder, stale_after_s: float) -> tuple[bool, str]:
    """Whether the holder still runs, and why we think so or not (terminal or missing flow run, dead process on
    this host, or no flow-run heartbeat for `stale_after_s`)."""
    from prefect.exceptions import ObjectNotFound

    with _client() as client:
        try:
            run = client.read_flow_run(UUID(holder.flow_run_id))
        except (ObjectNotFound, ValueError):
            return False, f"its flow run {holder.flow_run_id} does not exist on this server"
        state = run.state.type.value if run.state else "UNKNOWN"
        if state in _TERMINAL:
            return False, f"its flow run {run.name} is {state.title()}"
        if holder.host == socket.gethostname() and not alive(holder.pid):
            return False, f"its process (pid {holder.pid} on {holder.host}) is gone; the run still says {state.title()}"
        beat = _last_heartbeat(client, holder.flow_run_id)
        if beat is not None and time.time() - beat > stale_after_s:
            return False, f"its flow run {run.name} sent no heartbeat for {time.time() - beat:.0f} s"
        return True, f"its flow run {run.name} is {state.title()}"


def _last_heartbeat(client, flow_run_id: str) -> float | None:
    """The time of the flow run's newest `prefect.flow-run.heartbeat` event, or None (none yet, or unreadable)."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    with contextlib.suppress(Exception):
        page = client.read_events(
            filter=EventFilter(
                event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
                resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
            ),
            limit=1,
        )
        if page.events:
            return max(e.occurred.timestamp() for e in page.events)
    return None


def release(name: str, *, reason: str, log: Callable[[str], None]) -> SlotHolder | None:
    """Free a slot held by a dead (or, from the CLI, a given-up) holder: release its lease if the server still has
    it, else reset the counter; mark a still-running holder run Crashed so the UI agrees; forget the holder."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    from prefect.states import Crashed

    holder = read_holder(name)
    with _client() as client:
        if holder and holder.lease_id:
            with contextlib.suppress(Exception):
                client.release_concurrency_slots_with_lease(UUID(holder.lease_id))
        limit = client.read_global_concurrency_limit_by_name(name)
        if limit.active_slots > 0:
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))
        if holder is not None:
            with contextlib.suppress(Exception):
                run = client.read_flow_run(UUID(holder.flow_run_id))
                if run.state is None or run.state.type.value not in _TERMINAL:
                    client.set_flow_run_state(
                        UUID(holder.flow_run_id), Crashed(message=f"GPU slot {name} reclaimed: {reason}"), force=True
                    )
    _write_holder(None, name)
    who = holder.describe() if holder else "an unrecorded holder"
    log(f"GPU slot {name}: reclaimed from {who}: {reason}")
    return holder


@dataclass
class _Waiting:
    """What a waiter has seen: when it first found the slot full with no recorded holder."""

    unrecorded_since: float | None = None


def _check_holder(name: str, lease_s: float, seen: _Waiting, log: Callable[[str], None]) -> str | None:
    """Reclaim the slot from a dead holder (returns None), or the line saying whom we wait for."""
    state = slot_state(name)
    if state.active < state.limit:
        return None
    if state.holder is None:
        seen.unrecorded_since = seen.unrecorded_since or time.time()
        # A live holder records itself within seconds of acquiring; a slot full and unrecorded past its lease was
        # left by a holder that died before recording itself (or by something outside the flywheel).
        if time.time() - seen.unrecorded_since > lease_s:
            release(name, reason=f"full with no recorded holder for over {lease_s:.0f} s", log=log)
            return None
        return f"waiting for GPU slot {name}: held by an unrecorded holder; {release_hint(name)}"
    seen.unrecorded_since = None
    alive, why = holder_alive(state.holder, stale_after_s=max(lease_s, 3 * HEARTBEAT_S))
    if not alive:
        release(name, reason=why, log=log)
        return None
    return f"waiting for GPU slot {name}: held by {state.holder.describe()} ({why}); {release_hint(name)}"


def _acquire(name: str, lease_s: float, flow_run_id: str) -> str | None:
    """One attempt: the lease id, or None when the slot is full."""
    from prefect.client.schemas.objects import ConcurrencyLeaseHolder
    from prefect.exceptions import PrefectHTTPStatusError

    holder = ConcurrencyLeaseHolder(type="flow_run", id=UUID(flow_run_id)) if flow_run_id else None
    with _client() as client:
        try:
            response = client.increment_concurrency_slots_with_lease(
                names=[name], slots=1, mode="concurrency", lease_duration=lease_s, holder=holder
            )
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code == 423:
                return None
            raise
    return str(response.json()["lease_id"])


@contextlib.contextmanager
def hold(
    name: str,
    *,
    lease_s: float,
    flow_run_id: str,
    flow_run_name: str,
    cycle: str,
    log: Callable[[str], None],
    report_every_s: float = WAIT_REPORT_S,
) -> Iterator[SlotHolder]:
    """Hold the GPU slot for the duration of the block, waiting (and saying so) while a live holder has it."""
    ensure_slot(name)
    seen = _Waiting()
    lease_id = _acquire(name, lease_s, flow_run_id)
    while lease_id is None:
        message = _check_holder(name, lease_s, seen, log)
        if message is not None:
            log(message)
            if flow_run_id:
                set_state_message(flow_run_id, message)
            deadline = time.monotonic() + report_every_s
            while lease_id is None and time.monotonic() < deadline:
                time.sleep(min(2.0, report_every_s))
                lease_id = _acquire(name, lease_s, flow_run_id)
        else:
            lease_id = _acquire(name, lease_s, flow_run_id)
    holder = SlotHolder(
        name, flow_run_id, flow_run_name, cycle, os.getpid(), socket.gethostname(), time.time(), lease_id
    )
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(lease_id, lease_s, stop, log), daemon=True, name=f"slot-{name}")
    try:
        _write_holder(holder, name)
        renewer.start()
        if flow_run_id:
            set_state_message(flow_run_id, f"training on GPU slot {name}")
        yield holder
    finally:
        stop.set()
        if api_reachable():  # a dead server (killed with this run's process group) is not retried for minutes
            # The holder record goes first, while the slot is still ours: once released, the next holder writes its
            # own record, which a late clear would delete (or race with, failing its write).
            with contextlib.suppress(Exception):
                if (current := read_holder(name)) is not None and current.lease_id == lease_id:
                    _write_holder(None, name)
            with contextlib.suppress(Exception), _client() as client:
                client.release_concurrency_slots_with_lease(UUID(lease_id))


def api_reachable(timeout_s: float = 2.0) -> bool:
    """Whether the Prefect API answers its health check right now (one quick try, no retries)."""
    import httpx
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        return False
    try:
        return httpx.get(f"{url.rstrip('/')}/health", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def _renew(lease_id: str, lease_s: float, stop: threading.Event, log: Callable[[str], None]) -> None:
    """Renew the lease at a third of its duration; a failed renewal is said, not swallowed."""
    while not stop.wait(lease_s / 3):
        try:
            with _client() as client:
                client.renew_concurrency_lease(UUID(lease_id), lease_duration=lease_s)
        except Exception as exc:  # the server restarting, or the slot reclaimed by hand
            log(f"could not renew the GPU slot lease {lease_id}: {type(exc).__name__}: {exc}")
