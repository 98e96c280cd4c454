"""The GPU slot against the session's real Prefect server: a dead holder is reclaimed (and its run marked Crashed),
a live one is waited for out loud, and `flywheel server slots` shows and releases holders. Each test uses its own
slot name, so they stay independent of the cycles that train on `gpu-0`."""

from __future__ import annotations

import contextvars
import subprocess
import threading
import time
import uuid
from uuid import UUID

import pytest

from asr_flywheel.flows import gpu_slot


@pytest.fixture
def slot_name() -> str:
    return f"gpu-test-{uuid.uuid4().hex[:8]}"


def running_flow_run(prefect_client, name: str) -> str:
    from prefect import flow
    from prefect.states import Running

    @flow(name="slot-holder")
    def holder_flow():  # never called: only its run record matters
        pass

    run = prefect_client.create_flow_run(holder_flow, name=name, state=Running())
    return str(run.id)


def take_slot(prefect_client, slot: str, run_id: str, pid: int, name: str) -> gpu_slot.SlotHolder:
    """What `gpu_slot.hold` records when it acquires, for a holder that then stops existing (or not)."""
    gpu_slot.ensure_slot(slot)
    lease = gpu_slot._acquire(slot, 60, run_id)
    assert lease is not None
    holder = gpu_slot.SlotHolder(
        slot, run_id, name, "/ws/cycles/cycle-0009", pid, __import__("socket").gethostname(), time.time(), lease
    )
    gpu_slot._write_holder(holder, slot)
    return holder


def dead_pid() -> int:
    proc = subprocess.Popen(["sleep", "60"])
    proc.kill()
    proc.wait()
    return proc.pid


def test_a_holder_whose_process_died_is_reclaimed_at_once_and_its_run_marked_crashed(
    prefect_server, prefect_client, slot_name
):
    dead_run = running_flow_run(prefect_client, "killed-cycle")
    take_slot(prefect_client, slot_name, dead_run, dead_pid(), "killed-cycle")
    said: list[str] = []
    started = time.monotonic()
    with gpu_slot.hold(slot_name, lease_s=60, flow_run_id="", flow_run_name="", cycle="c", log=said.append) as me:
        assert gpu_slot.slot_state(slot_name).holder.lease_id == me.lease_id
        assert time.monotonic() - started < 20
    assert any("reclaimed from flow run killed-cycle" in s and "is gone" in s for s in said), said
    state = prefect_client.read_flow_run(UUID(dead_run)).state
    assert state.type.value == "CRASHED" and slot_name in state.message
    after = gpu_slot.slot_state(slot_name)
    assert after.active == 0 and after.holder is None


def test_a_live_holder_is_waited_for_and_every_report_names_it_and_how_to_free_it(
    prefect_server, prefect_client, slot_name
):
    live_run = running_flow_run(prefect_client, "busy-cycle")
    sleeper = subprocess.Popen(["sleep", "120"])
    try:
        first = take_slot(prefect_client, slot_name, live_run, sleeper.pid, "busy-cycle")
        said: list[str] = []
        got = threading.Event()

        def second():
            with gpu_slot.hold(
                slot_name, lease_s=60, flow_run_id="", flow_run_name="", cycle="c", log=said.append, report_every_s=1.0
            ):
                got.set()

        t = threading.Thread(target=contextvars.copy_context().run, args=(second,))  # the test's API settings
        t.start()
        time.sleep(4)
        assert not got.is_set()
        waits = [s for s in said if s.startswith(f"waiting for GPU slot {slot_name}")]
        assert len(waits) >= 2, said
        assert "busy-cycle" in waits[-1] and f"pid {sleeper.pid}" in waits[-1] and "--release" in waits[-1]
        with gpu_slot._client() as client:
            client.release_concurrency_slots_with_lease(UUID(first.lease_id))
        t.join(timeout=30)
        assert got.is_set()
    finally:
        sleeper.kill()


def test_server_slots_lists_the_holder_and_release_frees_it_naming_the_holder(
    prefect_server, prefect_client, slot_name, capsys
):
    from asr_flywheel.flows.cli import main

    sleeper = subprocess.Popen(["sleep", "120"])
    try:
        take_slot(
            prefect_client, slot_name, running_flow_run(prefect_client, "stuck-cycle"), sleeper.pid, "stuck-cycle"
        )
        assert main(["server", "slots"]) == 0
        out = capsys.readouterr().out
        assert f"{slot_name}: held (1/1) by flow run stuck-cycle" in out
        assert main(["server", "slots", "--release", slot_name]) == 0
        out = capsys.readouterr().out
        assert f"released {slot_name}; it was held by flow run stuck-cycle" in out
        assert gpu_slot.slot_state(slot_name).active == 0
        assert main(["server", "slots", "--release", "no-such-slot"]) == 2
        assert "no slot 'no-such-slot'" in capsys.readouterr().err
    finally:
        sleeper.kill()
