"""Where a voxlora training step spends its time: torch.profiler over a few steps, top ops by self CPU.

    python -m bench.profile_step [small|mid] [--fraction 0.0625] [--batch 4] [--steps 3]

Uses the models and clips `bench_train` makes in bench/work/ (run it once first), and the same
pieces `lora-train` runs: cached codes, `build_store`, `iterate_batches`, `csm_loss`, AdamW.
"""

import argparse
import time
from pathlib import Path

WORK = Path(__file__).parent / "work"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("size", nargs="?", default="mid")
    parser.add_argument("--fraction", type=float, default=1 / 16)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--shapes", action="store_true", help="group by input shapes")
    args = parser.parse_args()

    import torch
    from voxlora.backends.torch.codec import codec_identity
    from voxlora.codes_cache import CodesCache
    from voxlora.families.csm.loss import csm_loss
    from voxlora.families.csm.sequences import build_store, prepare_clips
    from voxlora.lora_options import LoraSettings
    from voxlora.models.csm import load_csm
    from voxlora.peft_bridge import apply_adapter, new_adapter_for
    from voxlora.train.batches import iterate_batches
    from voxlora.train.config import TrainConfig, resolve
    from voxlora.train.recipe import read_records

    from bench.bench_train import ALPHA, RANK, TARGETS, make_clips

    model_dir = WORK / f"csm-{args.size}"
    manifest = make_clips(WORK / "train-clips", args.clips, args.frames)
    bundle = load_csm(model_dir)
    records = read_records(str(manifest))
    records = records[0] if isinstance(records, tuple) else records
    cache = CodesCache(WORK / f"codes-{args.size}", codec_identity(bundle.codec))
    clips, _ = prepare_clips(records, bundle, cache)
    store = build_store(clips, bundle.config, 12.5)
    adapter = new_adapter_for(bundle.model, LoraSettings(rank=RANK, alpha=ALPHA, targets=TARGETS), seed=0)
    model, _ = apply_adapter(bundle.model, adapter, trainable=True)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=5e-4)
    config = resolve(
        TrainConfig(model=str(model_dir), manifest=str(manifest), out="/tmp/x", batch_size=args.batch,
                    decoder_frame_fraction=args.fraction)
    )  # fmt: skip
    batches = iterate_batches(store, config)

    def step():
        _, _, micro = next(batches)
        for batch in micro:
            b, d = csm_loss(model, batch)
            (b / batch.n_backbone + d / max(1, batch.n_decoder)).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    times = []
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=args.shapes
    ) as prof:
        for _ in range(args.steps):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
    print("step s:", [round(t, 3) for t in times])
    print(
        prof.key_averages(group_by_input_shape=args.shapes).table(
            sort_by="self_cpu_time_total", row_limit=args.rows
        )
    )


if __name__ == "__main__":
    main()
