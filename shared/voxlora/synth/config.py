"""Every synth setting and its default, in one place (the command's options read them from here).

Importing this module does not import torch, so ``synth --help`` stays fast.
"""

from dataclasses import dataclass, field

from voxlora.synth.requests import ContextClip


@dataclass
class SynthConfig:
    """The settings of one synth run; the defaults are sesame/csm-1b's own where it has them."""

    model: str = "sesame/csm-1b"  # a hub id or a local folder in sesame/csm-1b's layout
    backend: str = "auto"  # torch | mlx; auto: mlx on Apple silicon when installed, else torch
    adapter: str | None = None  # default adapter for requests that name none; None = plain base
    merge: bool = False  # merge adapters into the weights in memory instead of applying LoRA layers
    speaker: int = 0  # CSM speaker id of the new turn (and of context clips that give none)
    context: list[ContextClip] = field(default_factory=list)  # reference clips said before the text
    max_seconds: float = 10.0  # generation stops here if the model has not ended the clip (125 frames)
    max_total_seconds: float | None = (
        None  # a long text (spoken in chunks of max_seconds): the whole clip's limit
    )
    temperature: float = 0.9  # sesame/csm-1b's; 0 = greedy
    top_k: int = 50  # sesame/csm-1b's; 0 = no top-k
    cfg: float = 2.0  # VoxCPM: classifier-free guidance of its diffusion sampler (its cfg_value)
    timesteps: int = 10  # VoxCPM: diffusion steps per patch (its inference_timesteps)
    seed: int = 0  # each clip is seeded with it (or with its record's "seed")
    batch_size: int = 1  # stdin mode: requests spoken at once (torch CSM; the same codes as one at a time)
    sample_rate: int | None = None  # resample the output; None = the model's rate (24 kHz)
    device: str = "auto"  # torch: auto = cuda when available, else cpu; mlx: auto (its default), cpu, gpu
    dtype: str = "auto"  # auto: bf16 on cuda, fp32 on cpu (and on MLX)
    allow_other_base: bool = False  # apply adapters made for another base (warned about) instead of refusing
    codec: str | None = None  # csm-1b-mlx model: the sesame/csm-1b-layout folder giving codec and tokenizer

    def resolved_backend(self) -> str:
        from voxlora.backends import default_backend

        return default_backend() if self.backend == "auto" else self.backend

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def resolved_dtype(self) -> str:
        if self.dtype != "auto":
            return self.dtype
        return "bf16" if self.resolved_device().startswith("cuda") else "fp32"
