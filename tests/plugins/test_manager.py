import os
import subprocess
import sys
from pathlib import Path

import pytest

from asr_flywheel import hookimpl
from asr_flywheel.errors import InputError, RefusedError
from asr_flywheel.plugins import hookspecs
from asr_flywheel.plugins.catalogue import check_sft_request
from asr_flywheel.plugins.contracts import BaseModel, Decoder, SftViability
from asr_flywheel.plugins.manager import (
    PluginError,
    Plugins,
    contract_of,
    get_plugin_manager,
    new_plugin_manager,
    reset_plugin_manager,
)


def entry(name, **kw):
    return BaseModel(name=name, family="x", decoder=Decoder.CTC, backend="nemo", sft=SftViability.ALLOWED, **kw)


class ThirdParty:
    @hookimpl
    def register_base_models(self):
        return [entry("acme/asr-1b")]


def test_builtins_are_loaded_through_the_entry_point_group_like_third_party_plugins():
    pm = new_plugin_manager()
    names = {pm.get_name(p) for p in pm.get_plugins()}
    assert {"catalogue", "espeak", "example"} <= names
    models = Plugins(pm).base_models()
    assert models["nvidia/parakeet-tdt-0.6b-v2"].plugin == "catalogue"
    assert models["example/tiny-ctc"].plugin == "example"


def test_a_registered_plugin_extends_the_catalogue():
    pm = new_plugin_manager(load_entry_points=False)
    pm.register(ThirdParty(), name="acme")
    assert list(Plugins(pm).base_models()) == ["acme/asr-1b"]


def test_duplicate_names_across_plugins_are_an_error_naming_both():
    pm = new_plugin_manager(load_entry_points=False)
    pm.register(ThirdParty(), name="acme")
    pm.register(ThirdParty(), name="acme-fork")
    with pytest.raises(PluginError, match="registered by both 'acme' and 'acme-fork'"):
        Plugins(pm).base_models()


def test_hooks_are_called_through_pluggy_so_wrappers_and_tracing_see_every_call():
    seen: list[str] = []

    class Wrapping:
        @hookimpl(wrapper=True)
        def register_base_models(self):
            models = yield
            seen.append(f"wrapped {len(models)} result(s)")
            return models

    pm = new_plugin_manager(load_entry_points=False)
    pm.register(ThirdParty(), name="acme")
    pm.register(Wrapping(), name="wrapper")
    traced: list[str] = []
    pm.trace.root.setwriter(traced.append)
    undo = pm.enable_tracing()
    try:
        assert list(Plugins(pm).base_models()) == ["acme/asr-1b"]
    finally:
        undo()
    assert seen == ["wrapped 1 result(s)"]
    assert any("register_base_models" in line for line in traced)


def test_every_hookspec_is_typed_and_names_its_contract():
    from asr_flywheel.plugins import contracts

    specs = [n for n in dir(hookspecs) if n.startswith("register_")]
    assert len(specs) == 6
    for name in specs:
        assert contract_of(name).__module__ == contracts.__name__, name


def test_one_plugin_manager_per_process_until_reset():
    first = get_plugin_manager()
    assert get_plugin_manager() is first and Plugins().pm is first
    reset_plugin_manager()
    try:
        assert get_plugin_manager() is not first
    finally:
        reset_plugin_manager()


class GoodTranscriber:
    name = "good"

    def claims(self, model_ref):
        return False

    def load(self, model_ref):
        raise NotImplementedError


@pytest.mark.parametrize(
    "returned, why",
    [
        (["not a model"], "register_base_models() returned 'not a model', not a BaseModel"),
        (entry("acme/bare"), "register_base_models() returned a BaseModel, not a list of BaseModel"),
    ],
)
def test_a_wrong_hook_return_names_the_plugin_and_isolates_it(returned, why):
    class Broken:
        @hookimpl
        def register_base_models(self):
            return returned

    pm = new_plugin_manager(load_entry_points=False)
    pm.register(Broken(), name="broken")
    pm.register(ThirdParty(), name="acme")
    plugins = Plugins(pm)
    assert list(plugins.base_models()) == ["acme/asr-1b"]  # nothing of the broken plugin is used
    assert [str(b) for b in plugins.broken()] == [f"broken (hook register_base_models): PluginError: {why}"]
    with pytest.raises(InputError, match="failed to load: broken"):
        plugins.trainer("acme")


def test_a_transcriber_class_instead_of_an_instance_is_named_not_called():
    class ClassNotInstance:
        @hookimpl
        def register_transcribers(self):
            return [GoodTranscriber]

    pm = new_plugin_manager(load_entry_points=False)
    pm.register(ClassNotInstance(), name="sphinxish")
    plugins = Plugins(pm)
    assert plugins.transcribers() == {}
    (broken,) = plugins.broken()
    assert broken.name == "sphinxish"
    assert "returned the class GoodTranscriber; return an instance (GoodTranscriber())" in broken.error


def test_without_the_flywheel_manager_a_wrong_return_still_raises_naming_the_plugin():
    import pluggy

    from asr_flywheel.plugins import hookspecs

    class Broken:
        @hookimpl
        def register_base_models(self):
            return ["not a model"]

    pm = pluggy.PluginManager("asr_flywheel")
    pm.add_hookspecs(hookspecs)
    pm.register(Broken(), name="broken")
    with pytest.raises(PluginError, match="plugin 'broken'"):
        Plugins(pm).base_models()


def test_unknown_backend_lists_what_is_installed():
    pm = new_plugin_manager(load_entry_points=False)
    with pytest.raises(InputError, match=r"unknown trainer backend 'nemo' \(available: none installed\)"):
        Plugins(pm).trainer("nemo")


def test_streaming_base_is_refused_with_reason_and_alternative():
    catalogue = Plugins().base_models()
    name = "nvidia/nemotron-speech-streaming-en-0.6b"
    with pytest.raises(RefusedError) as exc:
        check_sft_request(name, Decoder.RNNT, "sft", catalogue[name])
    assert "all-UNK" in str(exc.value) and "nvidia/parakeet-tdt-0.6b-v2" in str(exc.value)


@pytest.mark.parametrize("decoder", [Decoder.TDT, Decoder.RNNT])
@pytest.mark.parametrize("method", ["adapter", "LinearAdapter", "linear-adapter"])
def test_adapter_sft_of_tdt_and_rnnt_is_refused(decoder, method):
    with pytest.raises(RefusedError, match="NaN tensors at any learning rate"):
        check_sft_request("nvidia/parakeet-tdt-0.6b-v2", decoder, method)


def test_stock_sft_is_allowed_and_unknown_methods_are_refused():
    check_sft_request("nvidia/parakeet-tdt-0.6b-v2", Decoder.TDT, "sft")
    with pytest.raises(RefusedError, match="stock SFT only"):
        check_sft_request("nvidia/parakeet-ctc-0.6b", Decoder.CTC, "adapter")
    with pytest.raises(RefusedError, match="unknown fine-tuning method"):
        check_sft_request("nvidia/parakeet-ctc-0.6b", Decoder.CTC, "distill")


def install_broken_plugin(site, name: str = "acme-broken") -> None:
    """A real installed distribution (dist-info with an entry point) whose module fails to import."""
    pkg = site / "acme_broken_plugin"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("import acme_dependency_that_is_not_installed\n")
    info = site / "acme_broken_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[asr_flywheel]\n{name} = acme_broken_plugin\n")


def test_a_plugin_that_fails_to_import_is_recorded_by_name_and_the_others_still_load(tmp_path, monkeypatch):
    install_broken_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = new_plugin_manager()
    plugins = Plugins(pm)
    (broken,) = plugins.broken()
    assert broken.name == "acme-broken" and broken.target == "acme_broken_plugin"
    assert "ModuleNotFoundError" in broken.error and "acme_dependency_that_is_not_installed" in broken.error
    assert "nvidia/parakeet-tdt-0.6b-v2" in plugins.base_models()  # unrelated plugins are unaffected
    assert plugins.trainer("nemo").name == "nemo"
    with pytest.raises(InputError, match=r"unknown deployer .acme.*failed to load: acme-broken \(acme_broken_plugin"):
        plugins.deployer("acme")


def test_a_hook_that_raises_is_recorded_and_skipped():
    class Raising:
        @hookimpl
        def register_base_models(self):
            raise RuntimeError("catalogue server unreachable")

    pm = new_plugin_manager(load_entry_points=False)
    pm.register(Raising(), name="flaky")
    pm.register(ThirdParty(), name="acme")
    plugins = Plugins(pm)
    assert list(plugins.base_models()) == ["acme/asr-1b"]
    assert [str(b) for b in plugins.broken()] == [
        "flaky (hook register_base_models): RuntimeError: catalogue server unreachable"
    ]


def test_a_broken_plugin_does_not_break_unrelated_verbs_and_models_names_it(tmp_path, clinical_manifest):
    """Real processes: the broken distribution is on PYTHONPATH like any installed package."""
    site = tmp_path / "site"
    install_broken_plugin(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    flywheel = Path(sys.executable).with_name("flywheel")
    models = subprocess.run([str(flywheel), "models"], env=env, capture_output=True, text=True, timeout=120)
    assert models.returncode == 0, models.stderr
    assert "nvidia/parakeet-tdt-0.6b-v2" in models.stdout
    assert "warning: plugin acme-broken (acme_broken_plugin): ModuleNotFoundError" in models.stderr
    validate = subprocess.run(
        [str(flywheel), "validate", str(clinical_manifest)], env=env, capture_output=True, text=True, timeout=120
    )
    assert validate.returncode == 0 and "8 rows valid" in validate.stdout
    assert "Traceback" not in models.stderr + validate.stderr
