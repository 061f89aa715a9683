"""What a model family provides so that lora-train and synth can use it: one small interface.

The trainer (`voxlora.train`), the synth core (`voxlora.synth`), the codes cache, checkpoints,
metrics, DDP and resume are written once and talk to a model only through the objects below. A
family (`voxlora.families.<family>`) implements them once per backend it supports ("torch",
"mlx"), and registers a `ModelFamily` in `voxlora.families.registry`. Nothing outside a family
package asks which family or which backend it holds.

The flow, and which member each step calls (``fam = registry.model_family(folder)``)::

    lora-train
        model = fam.load_for_training(config, folder)        # TrainModel: base on config.backend
        cache = CodesCache(dir, model.codec_identity)        # audio -> codes, keyed by codec identity
        clips, stats = model.prepare_clips(records, cache, default_speaker, progress)
        model.check_clip(clip, max_batch_frames)             # too long for the model? (never cut)
        store = model.build_store(clips)                     # every clip laid out, once
        model.release_codec()
        trainable, names = model.make_trainable(adapter)     # LoRA (+ embeddings), or --full
        stepper = model.stepper(trainable, config)           # the loss parts -> StepResult per step
        ... loop.train(trainable, store, ...) uses `stepper`, `iterate_batches` over `store` ...
        model.adapter_from_model(trainable, like=adapter)    # peft layout, whatever the backend
    synth
        model = fam.load_for_synthesis(config)               # SpeakModel on config.backend
        model.adapters.use("runs/a1")
        inputs = model.prompt(turns)                         # text + optional context clips
        codes = model.generate(inputs, max_frames, temperature, top_k, seed)
        codes, ended = model.trim(codes)                     # ended: the model stopped by itself
        wave = model.decode(codes)                           # codec: codes -> float32 samples

Conventions every implementation keeps:

* Codes cross the interface as torch tensors on the CPU, whatever the backend: cached codes are
  (K, F) int16 (K codebooks or latent channels, F frames), generated codes (T, K) int64. A family
  whose codec makes continuous latents (VoxCPM's AudioVAE) stores them the same way in float16
  and says so in its `codec_identity` (so a cache entry is never read by another codec).
* Loss parts are *sums* over targets plus the target counts (`StepResult`): the loop divides by
  the counts of the whole optimizer step, so gradient accumulation equals one big batch and DDP
  can all-reduce sums. The two parts are named ``backbone`` and ``decoder`` in metrics (CSM:
  backbone codebook 0 and depth decoder; Higgs: text and audio heads; VoxCPM: the diffusion and
  stop losses); a family with one loss puts 0 in ``decoder`` and 1 in ``n_decoder``.
* Every error a user can cause is a `voxlora.errors.VoxloraError` with a one-line message naming
  the clip (``clip.where``) or file; nothing prints.
* Random draws come from torch's (and MLX's) global generators, which ``rng_tensors`` saves and
  ``restore_rng`` restores, so a resumed run continues the same run.

A fourth family is a new package ``voxlora/families/<name>/`` with its `layout.Family` (checkpoint
layout, LoRA presets) in ``__init__.py``, a module implementing these classes, and one line in
`voxlora.families.registry.IMPLEMENTATIONS`.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from voxlora.errors import VoxloraError


@dataclass
class StepResult:
    """One optimizer step's gradients, as `Stepper.backward` leaves them (before the update)."""

    backbone: Any  # loss sum of the first part over the step (a 0-d tensor/array, or a float)
    decoder: Any  # loss sum of the second part (0 when the family has one)
    grad_norm: Any  # global gradient norm before clipping
    frames: int  # audio frames in the step (throughput: audio seconds per second)
    n_backbone: int = 1  # targets of the first part in the step (the loss is backbone / n_backbone + ...)
    n_decoder: int = 1  # targets of the second part (at least 1)


@dataclass
class PrepStats:
    """What preparing a manifest's clips did (logged, and written to voxlora-train.json)."""

    clips: int = 0
    encoded: int = 0  # clips the codec encoded (cache misses)
    cached: int = 0  # clips read from the cache
    frames: int = 0


def check_budget(clip, max_batch_frames: int | None) -> None:
    """A `VoxloraError` naming the clip when its ``length`` (positions) exceeds ``--max-batch-frames``:
    the half of `TrainModel.check_clip` that is the same for every family."""
    if max_batch_frames is not None and clip.length > max_batch_frames:
        raise VoxloraError(
            f"{clip.where}: {clip.length} positions do not fit --max-batch-frames {max_batch_frames}; "
            "raise the budget or split the clip"
        )


class Stepper(Protocol):
    """The trainable model's optimizer, one step at a time (made by `TrainModel.stepper`)."""

    optimizer: Any  # state_dict() / load_state_dict() in torch's layout (checkpoints)
    scaler: Any  # torch's fp16 GradScaler, or None

    def backward(self, micro: list) -> StepResult:
        """Gradients of one step over its micro-batches (from `iterate_batches`), clipped to
        ``config.max_grad_norm``; the loss is the family's, over the whole step."""

    def problem(self, result: StepResult) -> str | None:
        """'the loss is nan' / 'the gradient norm is inf' when the step must not be applied, else None.

        A stepper that cannot tell without waiting for the device (torch's) returns None, skips the
        update itself and names the step in ``skipped()`` (called when the loop logs or saves)."""

    def skipped(self) -> tuple[int, str] | None:
        """(step counted from 1 in this stepper's life, what) of the first non-finite step skipped, or None."""

    def update(self, lr: float) -> None:
        """Apply the gradients of the last `backward` at learning rate ``lr``."""

    def evaluate(self, batch) -> tuple[float, float]:
        """(backbone, decoder) loss sums of one batch, without gradients or dropout (validation)."""

    def load_state(self, optimizer_state: dict) -> None:
        """Continue from a checkpoint's {"optimizer": state_dict, "scaler": state_dict | None}."""

    def finish(self) -> None:
        """Training is over: the model goes to eval mode."""


class Clip(Protocol):
    """One training example, prepared: what `TrainModel.build_store` lays out."""

    where: str  # "train.jsonl:3: clips/a.wav", for messages
    text_ids: list[int]  # the text's token ids (part of the data fingerprint)
    codes: Any  # (K, F) cached codes (torch, CPU)

    @property
    def length(self) -> int:
        """Positions the clip takes in a sequence (the batch budget counts these)."""


class TrainModel(Protocol):
    """One family's base model loaded for training on one backend (``config.backend``)."""

    name: str  # the backend: "torch" | "mlx"
    device: str  # where the codec encodes clips (torch device name)
    where: str  # where the model trains, for the log ("cpu", "cuda", "mlx gpu")
    frame_rate: float  # codec frames per second
    max_positions: int  # the model's context: a clip must fit
    codec_identity: str  # a hash of the codec's config and weights (keys the codes cache)

    def prepare_clips(self, records: list[dict], cache, default_speaker: int = 0, progress=None):
        """Manifest records (``audio``, ``text``, optional ``speaker``, ``where``) -> (clips, PrepStats).

        Each clip's codes come from ``cache`` (`voxlora.codes_cache.CodesCache`, by the
        audio's sha256) or, on a miss, from the codec once, stored back into the cache.
        """

    def check_clip(self, clip, max_batch_frames: int | None = None) -> None:
        """A `VoxloraError` naming the clip when it does not fit the model (or the batch budget)."""

    def build_store(self, clips: list):
        """Every clip laid out for training, once. `voxlora.train.batches.iterate_batches` plans the
        epochs over it and the loop reads it, so the store has: ``lengths`` ((N,) int64 positions
        per clip), ``frames`` ((N,) audio frames per clip), ``frame_rate``, ``names``, ``__len__``,
        and ``batch(clips, fraction=1.0, seed=0, epoch=0)`` -> one micro-batch of those clip indices
        (``fraction``: `TrainConfig.decoder_frame_fraction`, a family may ignore it). A batch has
        ``n_backbone``, ``n_decoder`` (target counts), ``frames`` and ``to(device)``; the family's
        loss reads the rest. CSM's: `voxlora.families.csm.batches`."""

    def release_codec(self) -> None:
        """Every clip's codes are prepared: free the codec's weights unless saving needs them (--full)."""

    def make_trainable(self, adapter) -> tuple[Any, list[str]]:
        """(model to train, names of the trained tensors, in optimizer order). ``adapter`` is a
        `voxlora.adapter.Adapter` (peft layout), or None with ``config.full`` (every non-codec weight)."""

    def stepper(self, model, config, *, loss=None) -> Stepper:
        """The `Stepper` over ``model``'s trainable tensors; ``loss`` (model, batch) -> (backbone,
        decoder) sums replaces the family's own (tests)."""

    def trained_params(self, model) -> int:
        """How many numbers training changes."""

    def adapter_from_model(self, model, like):
        """The trained adapter (`voxlora.adapter.Adapter`, peft layout) taken out of ``model``."""

    def save_model(self, model, folder: Path) -> None:
        """--full: the whole trained model into ``folder`` (config and weights, the base's layout)."""

    def rng_tensors(self) -> dict:
        """Every random generator's state, as safetensors-ready torch tensors (``rng.*``)."""

    def restore_rng(self, tensors: dict) -> None:
        """Put back what `rng_tensors` saved."""


class Adapters(Protocol):
    def use(self, path: str | None) -> None:
        """Make the adapter folder ``path`` active (read once, checked against the base), None = base."""


class SpeakModel(Protocol):
    """One family's base model loaded for synthesis on one backend (``config.resolved_backend()``)."""

    name: str  # the backend: "torch" | "mlx"
    bundle: object  # the loaded model, for tests and tools that need the family's own objects
    adapters: Adapters
    sample_rate: int  # of the codec's audio (24000 for Mimi)
    frame_size: int  # samples per codec frame (1920 for Mimi)
    max_positions: int  # the model's context: prompt + generated frames must fit

    def prompt(self, turns: list) -> Any:
        """The model's input for ``turns`` (`voxlora.turns.Turn`: text, speaker, optional
        context audio at ``sample_rate``); the last turn is the one to speak."""

    def prompt_length(self, inputs) -> int:
        """Positions the prompt takes (checked against ``max_positions`` before generating)."""

    def generate(self, inputs, max_frames: int, temperature: float, top_k: int, seed: int):
        """Codes (T, K) int64 (torch, CPU) for ``inputs``, at most ``max_frames`` including the
        family's end marker; seeded by ``seed`` alone. Ids the codec cannot decode are never sampled."""

    def trim(self, codes) -> tuple[Any, bool]:
        """(the codes before the end marker, whether the model ended the clip by itself)."""

    def decode(self, codes) -> Any:
        """Waveform (T * frame_size,) float32 numpy of codes (T, K); a `VoxloraError` if it cannot be one."""


class ModelFamily(Protocol):
    """A family's entry point: its layout and its two loaders (each picks the backend itself)."""

    layout: Any  # `voxlora.families.layout.Family`: tensor names, presets, codec prefixes
    compiles: (
        bool  # (optional, default False) --compile on torch: its batches are bucketed, its stacks compiled
    )

    def load_for_training(self, config, source) -> TrainModel:
        """The base at ``source`` (a model folder) for `voxlora.train.config.TrainConfig` ``config``
        (resolved: ``backend``, ``device``, ``dtype``, ``full``), loaded once."""

    def load_for_synthesis(self, config) -> SpeakModel:
        """The base of `voxlora.synth.config.SynthConfig` ``config`` (``model``, backend, device,
        dtype, ``merge``), loaded once."""
