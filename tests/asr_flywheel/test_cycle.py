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


def _claim_version(root, q):
    c = Workspace(root).claim_version("v1", "m.jsonl")
    q.put((c.cycle.number, c.status))


def test_one_manifest_version_claims_one_cycle_even_under_concurrency(tmp_path):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_claim_version, args=(tmp_path, q)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    results = [q.get() for _ in procs]
    assert {n for n, _ in results} == {1}
    assert sorted(s for _, s in results).count("new") == 1
    assert [c.number for c in Workspace(tmp_path).cycles()] == [1]  # losers gave their numbers back


def test_claim_reports_resume_until_the_cycle_completes(tmp_path):
    ws = Workspace(tmp_path)
    first = ws.claim_version("v1", "m.jsonl")
    assert first.status == "new"
    assert ws.claim_version("v1", "m.jsonl").status == "resume"
    first.cycle.update_record(status="complete")
    assert ws.claim_version("v1", "m.jsonl").status == "done"
    assert ws.claim_version("v2", "m.jsonl").cycle.number == 2
