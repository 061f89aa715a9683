"""lora-train's whole job, as one generator the command streams: check, load, prepare, train, save.

Order matters for the user: everything that can be wrong with the input (learning rate, output
folder, manifests, vanished audio, an adapter made for another model) is refused with a one-line
error *before* the model is loaded or any audio is encoded. Then:

1. load the base model on ``--backend`` through its family (`voxlora.families.registry`: the family's
   `voxlora.families.base.TrainModel`); every clip's codes come from the codes cache or are
   encoded once by the family's codec;
2. wrap the model: a LoRA adapter (fresh from the LoRA options, or ``--adapter``), with
   ``train_embeddings`` the embeddings too (peft modules_to_save), or with ``full`` every weight
   but the codec's;
3. `loop.train` yields metrics; checkpoints go to ``OUT/step_NNNNNNN/``; the result to ``OUT/``.

Nothing here asks which family or backend runs: the `TrainModel` loads, prepares the clips, wraps,
steps and hands the adapter back. Saving is `train.saving`, resuming `train.resume`.
"""

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

from voxlora.errors import VoxloraError
from voxlora.train.config import TrainConfig, resolve
from voxlora.train.resume import Resume, check_resumable
from voxlora.train.saving import Saver, require_room_for_checkpoints

log = logging.getLogger("voxlora")
RUN_CONFIG = "voxlora-train.json"


def check_writable(out: Path) -> None:
    """Prove a file can be written in ``out`` (before any long work); folders made for it are made again later."""
    made = next((p for p in [*reversed(out.absolute().parents), out.absolute()] if not p.exists()), None)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise VoxloraError(f"{out}: cannot write the output folder ({e.strerror or e})") from None
    finally:  # a run refused later (a bad manifest) leaves no empty folder behind
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


def read_records(manifest: str, strict: bool = False, jobs: int = 1) -> list[dict]:
    """The usable records of a manifest (``-``: stdin, read whole), each with ``where`` for messages.

    Checked as mkmanifest checks them (`voxlora.prepare`): bad lines, duplicates, and audio that is
    missing, a folder, unreadable, truncated, empty, silent or NaN. Each bad record is one warning
    line naming its line and file, and the good ones are kept; ``strict`` raises the first instead.
    No usable record at all is an error.
    """
    from voxlora.manifest import STDIN, display_path, iter_manifest
    from voxlora.prepare import PrepareConfig, prepare
    from voxlora.rejects import Tally

    def entries():
        for entry in iter_manifest(manifest):
            if entry.record is not None:
                shown = display_path(entry.record["audio"])
                entry.record["where"] = f"{entry.where}: {shown}"
            yield entry

    tally = Tally()
    records = list(prepare(entries(), PrepareConfig(strict=strict, jobs=jobs), _no_speaker_names, tally))
    name = STDIN if manifest == "-" else manifest
    if tally.rejected:
        log.warning("%s: %s", name, tally.summary())
    if not records:
        if tally.rejected:
            raise VoxloraError(f"{name}: no usable clips ({tally.rejected} bad records, listed above)")
        raise VoxloraError(f"{name}: no clips (the manifest is empty)")
    return records


def _no_speaker_names(name):
    """lora-train does not number ``speaker_name``s (mkmanifest does): no "speaker" is --default-speaker."""
    return None


def load_adapter_for(path, folder: Path, config: TrainConfig):
    """An adapter folder checked against the base: same fingerprint, every tensor fits."""
    from voxlora import targets
    from voxlora.adapter import base_fingerprint, base_identity, read_adapter, require_fits
    from voxlora.adapter_base import check_base

    adapter = read_adapter(path)
    check_base(
        adapter,
        path,
        config.model,
        lambda: base_fingerprint(folder),
        allow=config.allow_other_base,
        identity=lambda: base_identity(folder),
    )
    require_fits(adapter, targets.base_shapes(folder), str(path))
    return adapter


def run(config: TrainConfig, settings=None, on_clip=None, on_step=None, stop=None, world=None, on_total=None):
    """Train as ``config`` says; yield metrics records, then the result record.

    ``settings`` (a LoraSettings) describes a fresh adapter; ignored with ``adapter`` or ``full``.
    ``stop`` (a `signals.StopSignals`) is armed when training starts: a signal then ends the run
    after the current step with a checkpoint, and `signals.Stopped` is raised.
    ``world`` (`distributed.World`): this process's rank in a torchrun job; only rank 0 yields and writes.
    ``on_total(steps, done)`` is told the run's total steps and those already done, before training.
    """
    from voxlora.train import checkpoint, data_defaults, distributed, run_folder

    world = world or distributed.World()
    config = resolve(config)
    distributed.check_config(config, world)
    out = Path(config.out)
    # Rank 0 alone prepares OUT; the other ranks neither read nor write it until rank 0 is done: a
    # rank probing OUT while rank 0 made it (or moved an earlier run aside) once removed it under it.
    aside = None
    if world.is_main:
        if config.resume and not checkpoint.checkpoints(out):  # the first night of a cron job: start the run
            log.info("lora-train: --resume: no checkpoint in %s yet; starting a fresh run", out)
            config.resume = False
        aside = run_folder.claim(out, config)  # voxlora.outputs' rule for OUT
        check_writable(out)
        for leftover in checkpoint.clean_partial(out):
            log.info("removed %s (left by a killed run)", leftover)
    config.resume = bool(
        world.from_main(int(config.resume), "waiting for rank 0 to prepare the output folder")
    )

    from voxlora.families.registry import for_model
    from voxlora.modelfolder import base_name, model_dir

    folder = model_dir(config.model)
    family = for_model(folder)
    adapter = None
    if config.adapter:
        adapter = load_adapter_for(config.adapter, folder, config)
        config.lora = (adapter.meta.get("created_with") or {}).get("settings") or {"rank": adapter.r}
    elif not config.full:
        from voxlora.lora_options import LoraSettings
        from voxlora.peft_bridge import new_adapter_for

        settings = settings or LoraSettings()
        adapter = new_adapter_for(folder, settings, seed=config.seed, base_model=base_name(config.model))
        config.lora = settings.to_dict()
    resume = None
    if config.resume:
        found = checkpoint.newest_complete(out)
        if found is None:
            raise VoxloraError(f"{out}: nothing to resume (no complete step_NNNNNNN/ checkpoint in it)")
        resume = Resume(*found)
        config = data_defaults.as_checkpoint(config, resume.meta["config"])  # what its data chose
        check_resumable(resume, config)
        if not config.full:
            adapter = load_adapter_for(resume.path, folder, config)
    # The data layout: a step is grad_accum x processes micro-batches, processes as the run started.
    config.processes = resume.meta["config"].get("processes", 1) if resume else world.size
    require_room_for_checkpoints(out, config, folder, adapter)
    records = read_records(config.manifest, config.strict)
    if adapter is not None:  # who the adapter speaks as (synth's default --speaker)
        from voxlora.adapter_speakers import trained_speakers
        from voxlora.speakers import SpeakerMap

        names = SpeakerMap.load(config.speakers).ids if config.speakers else None
        adapter.meta["speakers"] = trained_speakers(records, config.default_speaker, names)
    val_records = read_records(config.val_manifest, config.strict) if config.val_manifest else None
    yield from _train(
        config,
        family,
        folder,
        out,
        adapter,
        records,
        val_records,
        on_clip,
        on_step,
        resume,
        stop,
        world,
        on_total,
    )
    run_folder.release(aside)  # the new result is written: the earlier run (--overwrite) goes


def data_fingerprint(clips) -> str:
    """A hash of the training data as the model sees it (token ids and Mimi codes, in order)."""
    digest = hashlib.sha256()
    for clip in clips:
        digest.update(json.dumps(clip.text_ids).encode())
        digest.update(clip.codes.to("cpu").contiguous().numpy().tobytes())
    return "sha256:" + digest.hexdigest()[:16]


def _train(
    config, family, folder, out, adapter, records, val_records, on_clip, on_step, resume=None, stop=None,
    world=None, on_total=None,
):  # fmt: skip
    import torch

    from voxlora.atomic import atomic_write_text
    from voxlora.codes_cache import CodesCache
    from voxlora.train import checkpoint, data_defaults, distributed, metrics, rank_rng
    from voxlora.train.autosave import Due
    from voxlora.train.batches import iterate_batches
    from voxlora.train.loop import NonFinite, TrainState, total_steps, train

    torch.manual_seed(config.seed)
    source = resume.path if resume is not None and config.full else folder
    if config.compile and not getattr(family, "compiles", False):
        raise VoxloraError(f"--compile: not available for {family.layout.name} models yet (CSM only)")
    backend = family.load_for_training(config, source)
    started = time.perf_counter()
    cache = CodesCache(config.cache_dir, backend.codec_identity)
    frame_rate = backend.frame_rate

    def prepare(recs, manifest):
        clips, stats = backend.prepare_clips(recs, cache, config.default_speaker, on_clip)
        fitting = []
        for clip in clips:  # a clip too long for the model is never cut: skipped, or with --strict refused
            try:
                backend.check_clip(clip, config.max_batch_frames)
                fitting.append(clip)
            except VoxloraError as e:
                if config.strict:
                    raise
                log.warning("%s", e)
        if not fitting:
            raise VoxloraError(f"{manifest}: no clip fits the model or the batch budget (listed above)")
        stats.clips, stats.frames = len(fitting), sum(int(c.codes.shape[1]) for c in fitting)
        return backend.build_store(fitting), stats, data_fingerprint(fitting)

    # every rank reads the codes cache; rank 0 fills it first (`World.in_turns`)
    store, stats, data = world.in_turns(lambda: prepare(records, config.manifest))
    val_store = world.in_turns(lambda: prepare(val_records, config.val_manifest))[0] if val_records else None
    backend.release_codec()  # every clip is coded now
    log.info(
        "%d clips, %.1f s of audio (%d encoded, %d from the cache %s) in %.1f s",
        stats.clips, stats.frames / frame_rate, stats.encoded, stats.cached, config.cache_dir,
        time.perf_counter() - started,
    )  # fmt: skip

    config, notes = data_defaults.choose(
        config, stats.clips, stats.frames, lambda c: total_steps(store, distributed.job_config(c))
    )
    for note in notes:
        log.info("chosen from the data: %s", note)

    model, names = backend.make_trainable(adapter)
    n_trained = backend.trained_params(model)
    log.info(
        "training %d tensors, %d parameters, on %s (%s)", len(names), n_trained, backend.where, config.dtype
    )
    layout = distributed.describe_layout(world, config.processes, config.grad_accum)
    if layout:
        log.info("%s", layout)
    run_record = {"config": config.to_dict(), "data": dataclasses.asdict(stats), "trained_params": n_trained}
    if world.is_main:
        atomic_write_text(out / RUN_CONFIG, json.dumps(run_record, indent=1) + "\n")

    saver = Saver(backend, model, adapter, folder, config)
    from voxlora.train.samples import BestKeeper, Sampler

    sampler = (
        Sampler(config, out, saver, records, val_records) if config.sample_every and world.is_main else None
    )
    keeper = BestKeeper(config.keep_best, out, saver) if config.keep_best and world.is_main else None
    sampled = []  # sample lines made at a step, printed after that step's own lines

    def save(state, optimizer, scaler, rng):
        with checkpoint.write_failure(out, checkpoint.step_dir(out, state.step), "the checkpoint"):
            checkpoint.write_checkpoint(
                checkpoint.step_dir(out, state.step),
                state=state,
                optimizer=optimizer,
                scaler=scaler,
                config=config.to_dict(),
                names=names,
                write_weights=lambda tmp: saver.write(tmp, state.step),
                data=data,
                rng=rng,
            )
        checkpoint.prune(out, config.keep_last)

    write = distributed.main_only(world, save)  # rank 0 writes; the others wait for it

    def save_all(state, optimizer, scaler):  # every rank's random state goes into the checkpoint
        write(state, optimizer, scaler, rank_rng.gather(world, backend.rng_tensors()))

    job = distributed.job_config(config)  # what the loop sees: a step of the whole job
    state = optimizer_state = None
    rank_rng.seed_rank(world, config.seed)  # each rank its own dropout (rank 0 keeps --seed's stream)
    if resume is not None:
        if names != resume.meta["trained"]:
            raise VoxloraError(f"{resume.path}: the checkpoint trained other tensors than this run would")
        if resume.meta.get("data") not in (None, data):
            raise VoxloraError(
                f"{resume.path}: the training data differs from the checkpoint's (a clip added, removed, "
                "changed or skipped since); resuming would not continue the same run"
            )
        state = TrainState(resume.meta["step"], resume.meta["epoch"], resume.meta["position"])
        optimizer_state = {"optimizer": resume.optimizer, "scaler": resume.meta["scaler"]}
        rank_rng.restore(world, backend, resume.rng, config.seed)  # last: loading and wrapping draw from it
        log.info("resuming from %s at step %d", resume.path, state.step)
    metrics_path = out / metrics.METRICS if world.is_main else Path(os.devnull)  # rank 0 keeps the record
    log_file = metrics.MetricsFile(metrics_path, keep_until_step=state.step if state else None)
    history, step, started = list(log_file.kept), state.step if state else 0, time.perf_counter()
    done = [step]  # the last step trained (every step, not only the logged ones)

    def stepped(s):
        done[0] = s.step
        if sampler is not None and sampler.due(s.step):  # the model is at step s.step here
            sampled.append(sampler.sample(s.step))
            if keeper is not None:
                keeper.offer(sampled[-1])
        if on_step is not None:
            on_step(s)

    if on_total is not None:
        on_total(total_steps(store, job), step)
    if stop is not None:
        stop.arm()
    try:
        for record in train(
            model, store, job,
            iterate_batches=distributed.shard(iterate_batches, world), stepper=distributed.stepper(world, backend),
            val_store=val_store, state=state, optimizer_state=optimizer_state, save=save_all, on_step=stepped,
            should_stop=distributed.agreed_stop(world, stop),
            save_due=Due(config.save_every, config.save_minutes, world),
        ):  # fmt: skip
            if keeper is not None:
                keeper.offer(record)  # val_loss: the generator is paused, the model still at this step
            for line in [record, *sampled]:
                log_file.write(line)
                history.append(line)
                if world.is_main:
                    yield line
            sampled.clear()
            step = record["step"]
    except NonFinite as e:
        last = checkpoint.checkpoints(out)
        keep = f"the last good checkpoint, {last[-1]}, is intact" if last else "no checkpoint was saved"
        raise VoxloraError(
            f"{e}; training stopped ({keep}; a lower --lr or a --max-grad-norm may help)"
        ) from None
    finally:
        log_file.close()
    step = done[0]
    if stop is not None and stop.requested is not None and step < total_steps(store, job):
        from voxlora.train.signals import Stopped

        saved = checkpoint.step_dir(out, step) if step else None
        raise Stopped(stop.requested, step, saved if saved is not None and saved.is_dir() else None)
    if world.is_main:
        with checkpoint.write_failure(out, out, "the model" if config.full else "the adapter"):
            saver.write(out, step, adapter_files=config.full or config.save_mode != "full")
        metrics.plot_loss(history, out / metrics.PLOT)
    world.barrier("waiting for rank 0 to write the result")
    losses = [r for r in history if "loss" in r] or [{"loss": float("nan"), "audio_s_per_s": 0.0}]
    log.info(
        "trained %d steps in %.0f s: loss %.3f -> %.3f, %.1f s of audio per s; wrote %s",
        step, time.perf_counter() - started, losses[0]["loss"], losses[-1]["loss"], losses[-1]["audio_s_per_s"], out,
    )  # fmt: skip
    if not world.is_main:
        return
    if config.full:
        yield {"model": str(out), "step": step}
        return
    result = {"adapter": str(out)} if config.save_mode != "full" else {}
    if keeper is not None and keeper.result() is not None:
        result["best"] = keeper.result()
    if config.save_mode in ("full", "both"):
        result["merged"] = str(out / "merged")
    yield {**result, "step": step, "model": config.model}
