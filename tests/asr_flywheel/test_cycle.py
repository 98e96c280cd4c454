import multiprocessing as mp

import pytest

from asr_flywheel.cycle import CycleBusyError, Workspace


def _claim(root, q):
    q.put(Workspace(root).new_cycle().number)


def test_concurrent_claims_get_distinct_cycle_numbers(tmp_path):
    q = mp.get_context("fork").Queue()
    procs = [mp.get_context("fork").Process(target=_claim, args=(tmp_path, q)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert sorted(q.get() for _ in procs) == [1, 2, 3, 4, 5, 6]


def test_a_locked_cycle_cannot_be_written_by_another_run(tmp_path):
    c = Workspace(tmp_path).new_cycle()
    # flock locks are per open file description, so a second open in this process conflicts too
    with c.lock(), pytest.raises(CycleBusyError, match="being written by another run"), c.lock():
        pass
    with c.lock():  # released after the first run ends
        pass


def test_steps_are_recorded_for_resume(tmp_path):
    ws = Workspace(tmp_path)
    c = ws.new_cycle()
    assert c.step("score") is None
    c.finish_step("score", {"metrics": "baseline/metrics.json"})
    c.update_record(manifest_version="abc")
    again = ws.cycle(c.number)
    assert again.step("score")["metrics"] == "baseline/metrics.json"
    assert again.read_record()["manifest_version"] == "abc"
    assert [x.number for x in ws.cycles()] == [1]
