"""synth's generation speed on the CPU: voxlora's CSM loop against transformers' ``generate``.

Frames per second (12.5 frames of audio a second is real time) on the mid-size random CSM
(`bench.csm_models.mid_config`, fp32), sampling as synth does (temperature 0.9, top-k 50; a random
model never ends a clip early, so every run makes all its frames):

- single stream: one prompt, `CsmGenerator` (static KV cache, a generator per clip) against
  transformers' ``generate`` (dynamic cache), as synth called it before;
- batched: 8 prompts of other lengths at once, `CsmGenerator` (each row seeded alone: the same
  codes as one at a time) against transformers' ``generate`` on the same 8 prompts left-padded by
  the processor (one global generator, so not the same codes: the speed of the same work).

Runs are interleaved; each figure is the median after a warm-up.

    python -m bench.bench_synth [FRAMES]     a one-off run, the rows on stdout
"""

import statistics
import sys
import time
from pathlib import Path

from voxlora.demo_corpus import SENTENCES

TEXTS = list(SENTENCES[3:11])  # eight Harvard sentences of the demo corpus, one a clip of a batch


def bench_synth(workdir, frames: int = 16, batch: int = 8, repeats: int = 3, size: str = "mid") -> list[dict]:
    import torch
    from voxlora.families.csm.generate import CsmGenerator, Row, prompt_embeds
    from voxlora.families.csm.prompt import Turn, build_inputs
    from voxlora.families.csm.sample import generate_codes, sampling_kwargs
    from voxlora.models.csm import load_csm

    from bench.bench_train import make_model

    model_dir = make_model(Path(workdir) / f"csm-{size}", size)
    bundle = load_csm(str(model_dir), dtype="fp32", device="cpu")
    model, processor = bundle.model, bundle.processor
    texts = TEXTS[:batch]
    prompts = [build_inputs(processor, [Turn(t, 0)], 24000) for t in texts]
    rows = [Row(prompt_embeds(model, p), frames, seed) for seed, p in enumerate(prompts)]
    conversations = [processor.apply_chat_template([{"role": "0", "content": [{"type": "text", "text": t}]}],
                                                   tokenize=False) for t in texts]  # fmt: skip
    padded = processor(text=conversations, padding=True)  # left-padded, with its attention mask
    ours = CsmGenerator(model, 0.9, 50)
    kwargs = sampling_kwargs(model.config, 0.9, 50)

    def hf_single():
        torch.manual_seed(0)
        return [generate_codes(model, prompts[0], frames, 0.9, 50)]

    def hf_batched():
        torch.manual_seed(0)
        with torch.inference_mode():
            codes = model.generate(**padded, max_new_tokens=frames, min_new_tokens=frames, **kwargs)
        return list(codes)

    runs = {
        ("single stream", "voxlora"): lambda: ours.generate(rows[:1]),
        ("single stream", "transformers"): hf_single,
        (f"batched, {batch} prompts", "voxlora"): lambda: ours.generate(rows),
        (f"batched, {batch} prompts", "transformers"): hf_batched,
    }
    times = {key: [] for key in runs}
    made = {}
    for run in runs.values():  # warm-up
        run()
    for _ in range(repeats):  # interleaved
        for key, run in runs.items():
            start = time.perf_counter()
            codes = run()
            times[key].append(time.perf_counter() - start)
            made[key] = sum(len(c) for c in codes)
    params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("codec_model."))
    return [
        {"what": what, "generator": gen, "size": size, "params_M": params / 1e6, "frames": made[(what, gen)],
         "median_s": statistics.median(t), "frames_per_s": made[(what, gen)] / statistics.median(t)}
        for (what, gen), t in times.items()
    ]  # fmt: skip


if __name__ == "__main__":
    from bench.table import markdown

    work = Path(__file__).parent / "work"
    print(markdown(bench_synth(work, frames=int(sys.argv[1]) if len(sys.argv) > 1 else 16)))
