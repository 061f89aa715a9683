"""lora-train's whole job, as one generator the command streams: check, load, prepare, train, save.

Order matters for the user: everything that can be wrong with the input (learning rate, output
folder, manifests, vanished audio, an adapter made for another model) is refused with a one-line
error *before* the model is loaded or any audio is encoded. Then:

1. load the base CSM; the Mimi codes of every clip come from the codes cache or are encoded once;
2. wrap the model: a LoRA adapter (fresh from the LoRA options, or ``--adapter``), with
   ``train_embeddings`` the embeddings too (peft modules_to_save), or with ``full`` every weight
   but the codec's;
3. `loop.train` yields metrics; checkpoints go to ``OUT/step_NNNNNNN/``; the result to ``OUT/``.
"""

import dataclasses
import json
import logging
import os
import shutil
import time
from pathlib import Path

from voxlora.errors import VoxloraError
from voxlora.train.config import TrainConfig, resolve

log = logging.getLogger("voxlora")
RUN_CONFIG = "voxlora-train.json"


def check_writable(out: Path) -> None:
    """Create ``out`` and prove a file can be written there (before any long work)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise VoxloraError(f"{out}: cannot write the output folder ({e.strerror or e})") from None


def read_records(manifest: str) -> list[dict]:
    """Every record of a manifest (``-``: stdin, read whole), each with ``where`` for messages.

    Refuses a bad line, an empty manifest and an audio file that is not there, naming the line.
    """
    from voxlora.manifest import STDIN, display_path, iter_manifest

    records = []
    for entry in iter_manifest(manifest):
        if entry.error is not None:
            raise entry.error
        record = entry.record
        record["where"] = f"{entry.where}: {display_path(record['audio'])}"
        if not os.path.isfile(record["audio"]):
            raise VoxloraError(f"{record['where']}: no such audio file")
        records.append(record)
    if not records:
        raise VoxloraError(f"{STDIN if manifest == '-' else manifest}: no clips (the manifest is empty)")
    return records


def pick_device(name: str) -> str:
    import torch

    mps = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    if (name == "cuda" and not torch.cuda.is_available()) or (name == "mps" and not mps):
        raise VoxloraError(f"--device {name}: not available on this machine")
    return name


def load_adapter_for(path, folder: Path, config: TrainConfig):
    """An adapter folder checked against the base: same fingerprint, every tensor fits."""
    from voxlora import targets
    from voxlora.adapter import base_fingerprint, read_adapter, require_fits

    adapter = read_adapter(path)
    theirs, ours = adapter.meta.get("base_fingerprint"), base_fingerprint(folder)
    if theirs and theirs != ours:
        raise VoxloraError(
            f"{path}: made for another model (base fingerprint {theirs}, {config.model} has {ours})"
        )
    require_fits(adapter, targets.base_shapes(folder), str(path))
    return adapter


def make_trainable(bundle, adapter, config: TrainConfig):
    """(model to train, names of the trained tensors). LoRA through peft, or every non-codec weight."""
    import torch

    if config.full:
        model = bundle.model
        for name, p in model.named_parameters():
            p.requires_grad_(not name.startswith("codec_model."))
    else:
        from voxlora.peft_bridge import apply_adapter

        model, _ = apply_adapter(bundle.model, adapter, trainable=True)
    names = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            p.data = p.data.to(torch.float32)  # master weights in fp32 whatever the compute dtype
            names.append(name)
    return model, names


def _move_files_into(src: Path, dest: Path) -> None:
    """Move every file of ``src`` into ``dest`` (each an atomic rename), then remove ``src``."""
    for f in sorted(src.iterdir()):
        os.replace(f, dest / f.name)
    src.rmdir()


class Saver:
    """Writes the trained weights (adapter, merged model or whole model) into a folder."""

    def __init__(self, model, adapter, folder: Path, config: TrainConfig):
        self.model, self.adapter, self.folder, self.config = model, adapter, folder, config

    def current_adapter(self, step: int):
        from voxlora import __version__
        from voxlora.peft_bridge import adapter_from_model

        trained = adapter_from_model(self.model, like=self.adapter)
        trained.meta["created_with"] = {
            **trained.meta.get("created_with", {}),
            "tool": "lora-train",
            "voxlora": __version__,
            "step": step,
            "train": self.config.to_dict(),
        }
        return trained

    def write(self, dest: Path, step: int, adapter_files: bool = True) -> None:
        """Into the existing folder ``dest``: adapter files and/or merged/ (LoRA), or the model (full)."""
        from voxlora.models.csm import SIDE_FILES

        staging = dest / f".weights-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        if self.config.full:
            staging.mkdir()
            self.model.save_pretrained(staging)
            for name in SIDE_FILES:
                if (self.folder / name).is_file() and not (staging / name).exists():
                    shutil.copyfile(self.folder / name, staging / name)
            _move_files_into(staging, dest)
            return
        from voxlora.adapter import write_adapter

        adapter = self.current_adapter(step)
        if adapter_files:
            write_adapter(adapter, staging)
            _move_files_into(staging, dest)
        if self.config.save_mode in ("full", "both"):
            from voxlora.merge import merge_folder

            merge_folder(self.folder, adapter, dest / "merged")


def run(config: TrainConfig, settings=None, on_clip=None, on_step=None):
    """Train as ``config`` says; yield metrics records, then the result record.

    ``settings`` (a LoraSettings) describes a fresh adapter; ignored with ``adapter`` or ``full``.
    """
    from voxlora.train import checkpoint

    config = resolve(config)
    out = Path(config.out)
    check_writable(out)
    earlier = checkpoint.checkpoints(out)
    if config.resume and not earlier:
        raise VoxloraError(f"{out}: nothing to resume (no step_NNNNNNN/ checkpoint in it)")
    if earlier and not config.resume:
        raise VoxloraError(
            f"{out}: holds checkpoints of an earlier run ({earlier[-1].name}/); "
            "add --resume to continue it, or choose another output folder"
        )
    records = read_records(config.manifest)
    val_records = read_records(config.val_manifest) if config.val_manifest else None

    from voxlora.models.csm import model_dir, read_config

    folder = model_dir(config.model)
    read_config(folder)
    adapter = None
    if config.adapter:
        adapter = load_adapter_for(config.adapter, folder, config)
        config.lora = (adapter.meta.get("created_with") or {}).get("settings") or {"rank": adapter.r}
    elif not config.full:
        from voxlora.lora_options import LoraSettings
        from voxlora.peft_bridge import new_adapter_for

        settings = settings or LoraSettings()
        base_name = str(Path(config.model).resolve()) if Path(config.model).exists() else config.model
        adapter = new_adapter_for(folder, settings, seed=config.seed, base_model=base_name)
        config.lora = settings.to_dict()
    resume = None
    if config.resume:
        resume = Resume(earlier[-1], *checkpoint.read_checkpoint(earlier[-1]))
        check_resumable(resume, config)
        if not config.full:
            adapter = load_adapter_for(resume.path, folder, config)
    yield from _train(config, folder, out, adapter, records, val_records, on_clip, on_step, resume)


@dataclasses.dataclass
class Resume:
    path: Path  # the checkpoint folder
    meta: dict  # its trainer_state.json
    optimizer: dict  # the optimizer's state_dict
    rng: dict  # RNG states


def check_resumable(resume: Resume, config: TrainConfig) -> None:
    """A resumed run must train the same way as the run that wrote the checkpoint."""
    from voxlora.train.config import RESUME_FIELDS

    theirs, ours = resume.meta["config"], config.to_dict()
    differ = [
        f"{name} {ours[name]!r} (checkpoint: {theirs.get(name)!r})"
        for name in RESUME_FIELDS
        if theirs.get(name) != ours[name]
    ]
    if differ:
        raise VoxloraError(f"{resume.path}: this run differs from the checkpoint's: {'; '.join(differ)}")


def _train(config, folder, out, adapter, records, val_records, on_clip, on_step, resume=None):
    import torch

    from voxlora.atomic import atomic_write_text
    from voxlora.models.csm import load_csm
    from voxlora.train import checkpoint, metrics
    from voxlora.train.codes_cache import CodesCache, codec_identity
    from voxlora.train.loop import TrainState, train
    from voxlora.train.sequences import build_store, check_lengths, prepare_clips

    torch.manual_seed(config.seed)
    device = pick_device(config.device)
    if not log.isEnabledFor(logging.DEBUG):  # transformers' "Loading weights" bar: not ours to show
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    source = resume.path if resume is not None and config.full else folder
    bundle = load_csm(source, dtype="fp32" if config.full else config.dtype, device=device)
    started = time.perf_counter()
    cache = CodesCache(config.cache_dir, codec_identity(bundle.codec))
    frame_rate = float(bundle.codec.config.frame_rate)
    max_positions = int(bundle.config.max_position_embeddings)

    def prepare(recs):
        clips, stats = prepare_clips(recs, bundle, cache, config.default_speaker, device, on_clip)
        check_lengths(clips, max_positions, config.max_batch_frames)
        return build_store(clips, bundle.config, frame_rate), stats

    store, stats = prepare(records)
    val_store = prepare(val_records)[0] if val_records else None
    log.info(
        "%d clips, %.1f s of audio (%d encoded, %d from the cache %s) in %.1f s",
        stats.clips, stats.frames / frame_rate, stats.encoded, stats.cached, config.cache_dir,
        time.perf_counter() - started,
    )  # fmt: skip

    model, names = make_trainable(bundle, adapter, config)
    n_trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("training %d tensors, %d parameters, on %s (%s)", len(names), n_trained, device, config.dtype)
    run_record = {"config": config.to_dict(), "data": dataclasses.asdict(stats), "trained_params": n_trained}
    atomic_write_text(out / RUN_CONFIG, json.dumps(run_record, indent=1) + "\n")

    saver = Saver(model, adapter, folder, config)

    def save(state, optimizer, scaler):
        checkpoint.write_checkpoint(
            checkpoint.step_dir(out, state.step),
            state=state,
            optimizer=optimizer,
            scaler=scaler,
            config=config.to_dict(),
            names=names,
            write_weights=lambda tmp: saver.write(tmp, state.step),
        )
        checkpoint.prune(out, config.keep_last)

    state = optimizer_state = None
    if resume is not None:
        if names != resume.meta["trained"]:
            raise VoxloraError(f"{resume.path}: the checkpoint trained other tensors than this run would")
        state = TrainState(resume.meta["step"], resume.meta["epoch"], resume.meta["position"])
        optimizer_state = {"optimizer": resume.optimizer, "scaler": resume.meta["scaler"]}
        checkpoint.restore_rng(resume.rng)  # last: loading and wrapping the model draw from it
        log.info("resuming from %s at step %d", resume.path, state.step)
    log_file = metrics.MetricsFile(out / metrics.METRICS, keep_until_step=state.step if state else None)
    history, step, started = list(log_file.kept), state.step if state else 0, time.perf_counter()
    try:
        for record in train(
            model, store, config, val_store=val_store, device=device, state=state,
            optimizer_state=optimizer_state, save=save, on_step=on_step,
        ):  # fmt: skip
            log_file.write(record)
            history.append(record)
            step = record["step"]
            yield record
    finally:
        log_file.close()
    saver.write(out, step, adapter_files=config.full or config.save_mode != "full")
    metrics.plot_loss(history, out / metrics.PLOT)
    losses = [r for r in history if "loss" in r] or [{"loss": float("nan"), "audio_s_per_s": 0.0}]
    log.info(
        "trained %d steps in %.0f s: loss %.3f -> %.3f, %.1f s of audio per s; wrote %s",
        step, time.perf_counter() - started, losses[0]["loss"], losses[-1]["loss"], losses[-1]["audio_s_per_s"], out,
    )  # fmt: skip
    if config.full:
        yield {"model": str(out), "step": step}
        return
    result = {"adapter": str(out)} if config.save_mode != "full" else {}
    if config.save_mode in ("full", "both"):
        result["merged"] = str(out / "merged")
    yield {**result, "step": step, "model": config.model}
