"""Records and interfaces that cross the plugin boundary.

Plugins return these from their hooks; the core and the flows only ever talk to plugins through them.
Everything here is light (dataclasses and Protocols): importing it never loads torch or NeMo.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from asr_flywheel.boost import BoostList
    from asr_flywheel.config import FlywheelConfig


class SftViability(StrEnum):
    RECOMMENDED = "recommended"
    ALLOWED = "allowed"
    REFUSED = "refused"


class Decoder(StrEnum):
    CTC = "ctc"
    RNNT = "rnnt"
    TDT = "tdt"
    #: Any other decoder (an HMM recogniser, an attention decoder, a vendor's API): evaluated like any model, but
    #: the NeMo-specific paths (Riva build flags, TDT/RNNT adapter refusals) do not apply to it.
    OTHER = "other"


@dataclass(frozen=True)
class BaseModel:
    """A catalogue entry: a base model the flywheel knows how (or refuses) to fine-tune."""

    name: str
    family: str
    decoder: Decoder
    backend: str
    sft: SftViability
    notes: str = ""
    #: Why SFT is refused (required when sft is REFUSED).
    refusal_reason: str | None = None
    #: What to use instead when refused.
    suggested: str | None = None
    #: Gated on the Hugging Face Hub: loading needs a token (HF_TOKEN).
    gated: bool = False
    #: Where the weights come from: None means the hub id `name`; otherwise a local .nemo file or HF directory.
    source: str | None = None
    #: Which plugin contributed this entry (filled by the plugin manager).
    plugin: str = ""

    @property
    def weights(self) -> str:
        """What the backend should load: the local source if any, else the hub id."""
        return self.source or self.name

    def to_dict(self) -> dict:
        d = asdict(self)
        d["decoder"] = str(self.decoder)
        d["sft"] = str(self.sft)
        return d


ProgressFn = Callable[[int, int], None]
"""progress(done, total): called by long-running plugin work so flows can report progress."""


@dataclass
class TrainRequest:
    """What a trainer needs, resolved by the caller: trainers never query the plugin manager again."""

    #: The base model reference as the user gave it (catalogue name, .nemo file, HF directory): recorded as is.
    base: str
    train_manifest: Path
    validation_manifest: Path
    out_dir: Path
    #: The resolved catalogue entry (or description of a local model): decoder, family, weights, viability.
    base_model: BaseModel
    #: "sft" (full fine-tune, the stock recipe) or "adapter" (refused for TDT/RNNT: NaN tensors).
    method: str = "sft"
    #: Overrides of the backend's defaults (lr, epochs, batch_size, precision, ...).
    hyperparameters: dict = field(default_factory=dict)
    #: Lightning scale-out knobs (ignored by backends that cannot use them).
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    accelerator: str = "auto"
    progress: ProgressFn | None = None


@dataclass
class TrainResult:
    model_path: Path
    run_info_path: Path
    run_info: dict
    #: Container command equivalent to this run (when the backend has one), e.g. NeMo's docker line.
    container_command: str | None = None


@runtime_checkable
class Trainer(Protocol):
    name: str

    def claims(self, model_ref: str) -> bool:
        """True when `model_ref` is a local model this backend can fine-tune (e.g. a .nemo file)."""
        ...

    def describe(self, model_ref: str) -> BaseModel:
        """Read the architecture of a local model (decoder, family, SFT viability) without training it."""
        ...

    def train(self, request: TrainRequest) -> TrainResult: ...


@runtime_checkable
class LoadedModel(Protocol):
    """A model ready to transcribe, returned by `Transcriber.load`. `name` labels it in logs; `decoder` is read
    from the model itself, never guessed (`Decoder.OTHER` when it is none of CTC/RNNT/TDT).

    `transcribe` must return a `list[str]`, one transcript per path, in order ("" for silence, never None); the
    flywheel checks the first batch against this before it transcribes the rest."""

    name: str
    decoder: Decoder

    def transcribe(
        self, audio_paths: Sequence[str], *, batch_size: int = 16, progress: ProgressFn | None = None
    ) -> list[str]: ...


@runtime_checkable
class Transcriber(Protocol):
    name: str

    def claims(self, model_ref: str) -> bool:
        """True when this backend can load `model_ref` (a path it recognises or a catalogue name)."""
        ...

    def load(self, model_ref: str) -> LoadedModel:
        """Load `model_ref` exactly as the user gave it: a catalogue name (look its weights up with
        `Plugins().weights(model_ref)`), a local path this transcriber `claims`, or an endpoint URL. Return an
        instance with `name`, `decoder` and `transcribe`; raise `InputError` for a model that cannot load."""
        ...


@runtime_checkable
class BoostingTranscriber(Transcriber, Protocol):
    """Optional for a transcriber: decoding biased toward a list of phrases (context biasing, word boosting).

    `load_boosted(model_ref, boost)` returns a model that decodes with `boost` (`asr_flywheel.boost.BoostList`:
    phrases, weights `alpha`/`context_score`/`depth_scaling`, `hash`); it must be a separate instance, since the
    flywheel scores the same model plain and boosted in one process. A transcriber without it is refused by name
    when a boost list is asked for (`flywheel eval --boost`, `[cycle] boost`): a list is never silently ignored."""

    def load_boosted(self, model_ref: str, boost: BoostList) -> LoadedModel: ...


@dataclass
class DeployRecord:
    """One deploy or rollback: what shipped, where it answers (None when the deployer only writes build files)."""

    deployer: str
    model_path: str
    endpoint: str | None
    version: str | None
    #: The version that served before this one: what the cycle rolls back to when served parity fails (None: the
    #: first version, or a deployer without versions).
    previous_version: str | None = None
    #: Anything else the deployer wants on record (shown to users, never read by the flows).
    details: dict = field(default_factory=dict)


@dataclass
class ServedVersions:
    """What a deployer holds under one served name: the version answering now and those a rollback can pick."""

    deployer: str
    name: str
    served: str | None
    versions: list[str] = field(default_factory=list)
    endpoint: str | None = None


@runtime_checkable
class Deployer(Protocol):
    """Ships models to serving. Flows and the CLI reach a deploy backend only through these methods, so a
    deployer plugin owns every rule about its target (URL forms, names, versions, rollback).

    `options` are the deployer's own target and serving knobs as plain keywords (None = not given). The flows
    always pass `backend` (the offline backend that loads the model) to `deploy`; a deployer ignores what it
    does not use. Anything a deployer cannot do raises `InputError` saying why (the CLI exits 2)."""

    name: str

    def check_target(self, config: FlywheelConfig | None = None, **options) -> dict:
        """The options this deployer will use: `options` over the `[deploy]` section of `config` (None: the
        configuration file), validated. Raises one InputError naming every bad field; ships and contacts nothing."""
        ...

    def deploy(self, model_path: str, *, decoder: Decoder, out_dir: Path, **options) -> DeployRecord: ...

    def rollback(self, name: str, *, to_version: int | str | None = None, **options) -> DeployRecord:
        """Serve an earlier version of `name` (default: the one served before the current one)."""
        ...

    def versions(self, name: str, **options) -> ServedVersions: ...


@dataclass(frozen=True)
class LocalServer:
    """A serving process this host runs for a deployer (`flywheel serve`)."""

    pid: int
    repo: str
    http_url: str
    grpc_url: str
    log: str


@runtime_checkable
class Server(Protocol):
    """Optional for a deployer that can run its serving process on this host (`flywheel serve start|stop|status`).
    `serve_start` checks its ports before starting anything (InputError)."""

    def serve_start(self, repo: Path, *, host: str, http_port: int, grpc_port: int) -> LocalServer: ...

    def serve_stop(self, repo: Path) -> bool: ...

    def serve_status(self, repo: Path) -> LocalServer | None: ...


@runtime_checkable
class Synthesizer(Protocol):
    """Turns text into a mono WAV at `sample_rate`; grows manifests with synthetic audio.

    Voice ids name the engine (`flite:rms`): the build routes each id to the synthesizer whose `engine` attribute
    (default: `name`) is its prefix and passes the bare voice (`rms`). `pronunciations` (optional for plugins;
    `flywheel build` passes it only for terms with an override or lexicon entry) says given phrases of `text` with
    given phonemes (`asr_flywheel.build.Pronunciation`: IPA, ARPAbet or espeak); `prosody`
    (`asr_flywheel.build.voices.Prosody`: duration stretch and pitch scale) is passed only to a `synthesize` that
    accepts it. Optional extras the build uses when present: `voices()` (installed voice names, listed when an id
    is unknown), `check_voice(voice)`, `unspeakable(text, voice)`, `check_pronunciation(p)` (each returns a reason
    or None), `term_phones(term, voice, pronunciation)` (the phones the engine says, recorded per row),
    `engine`, `g2p_source` and `babble_voices` attributes.
    """

    name: str

    def synthesize(
        self,
        text: str,
        out_path: Path,
        *,
        voice: str | None = None,
        phonemes: str | None = None,
        sample_rate: int = 16000,
        pronunciations: Sequence = (),
    ) -> Path: ...


@dataclass(frozen=True)
class MadeBase:
    """A base model made from scratch by a `BaseModelRecipe`, and the record of how it was made.

    `record` is the recipe record as written next to the model (corpus hash, seed, steps, versions, held-out
    WER); the typed fields are the parts the flows read.
    """

    model_path: Path
    record_path: Path
    recipe: str
    recipe_hash: str
    #: Word error rate on the recipe's held-out general-English rows (never trained on).
    heldout_wer: float
    record: dict = field(default_factory=dict, repr=False)
    #: True when a model of the same recipe hash was already there (nothing was made now).
    cached: bool = False


@dataclass(frozen=True)
class GeneralRows:
    """General-English rows from a base recipe's own corpus, for fine-tuning from that base."""

    #: The recipe's held-out rows (never trained on): the control set of the forgetting guard.
    control: Path
    #: General rows for replay (mixed into fine-tuning against forgetting; never the control rows).
    replay: Path


@runtime_checkable
class BaseModelRecipe(Protocol):
    """Makes a base model from scratch where no model hub is reachable: corpus, tokenizer, pretraining, and the
    held-out WER, all recorded. Same recipe and overrides ⇒ same model; `make` caches by recipe hash.

    `overrides` change named recipe settings (e.g. `seed`, `max_steps`, `n_train`); `check_overrides` raises
    an `InputError` naming every bad key or value, without compute, so entry points reject bad input first.
    """

    name: str

    def check_overrides(self, overrides: dict) -> None: ...

    def make(self, workspace: Path, *, overrides: dict | None = None, workers: int = 2, log=print) -> MadeBase: ...

    def export(self, made: MadeBase, directory: Path) -> MadeBase:
        """Copy the model and its record into `directory` (what `exported` reads back)."""
        ...

    def exported(self, directory: Path) -> MadeBase | None:
        """The model `export` wrote into `directory`, with its record; None when there is none."""
        ...

    def general_rows(self, made: MadeBase, root: Path, *, replay_rows: int, workers: int = 2) -> GeneralRows: ...
