import pytest

from asr_flywheel.errors import InputError
from asr_flywheel.registry import Registry


def reg(r, cycle, parent=None):
    return r.register(
        path=f"/m/{cycle}.nemo",
        backend="nemo",
        base_model="nvidia/parakeet-tdt-0.6b-v2",
        parent=parent,
        manifest_version="v",
        manifest_family="f",
        cycle=cycle,
        hyperparameters={"lr": 3e-4},
        metrics={"ker": 0.1},
    )


def test_register_promote_and_lineage(tmp_path):
    r = Registry(tmp_path)
    assert r.champion() is None
    a = reg(r, 1)
    b = reg(r, 2, parent=a.model_id)
    r.promote(a.model_id, "KEEP in cycle 1")
    r.promote(b.model_id, "KEEP in cycle 2")
    assert r.champion().model_id == b.model_id
    assert r.get(b.model_id).parent == a.model_id
    assert [h["model_id"] for h in r.champion_history()] == [a.model_id, b.model_id]
    assert len(Registry(tmp_path).models()) == 2  # persisted


def test_unknown_and_duplicate_ids_are_errors(tmp_path):
    r = Registry(tmp_path)
    a = reg(r, 1)
    with pytest.raises(InputError, match="no model"):
        r.promote("nope", "x")
    with pytest.raises(InputError, match="already registered"):
        r.register(
            model_id=a.model_id,
            path="",
            backend="nemo",
            base_model="",
            parent=None,
            manifest_version="",
            manifest_family="",
            cycle=1,
        )
