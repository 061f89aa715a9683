"""Speech from text with a base model, optionally through LoRA adapters: the `synth` command's core.

    synth = Synthesizer(SynthConfig(model="sesame/csm-1b", adapter="runs/voice"))
    clip = synth.speak(Request(text="Hello there.", out=Path("hello.wav"), adapter="runs/voice"))
    clip.record   # {"audio": "hello.wav", "text": "Hello there.", "duration": 1.92, ...}

One `Synthesizer` loads the base once and serves every request of a run, switching adapters as the
requests name them. Each clip is seeded on its own, so the same text, speaker, context, adapter and
seed give the same audio in any run and position. The model is the family's
`voxlora.families.base.SpeakModel` on its backend (torch or MLX, picked once from
``SynthConfig.backend``: `backend.load_model`): its prompt, adapters, sampling, trimming at the
end marker and decoding; then an optional resample and an atomic 16-bit WAV.
"""

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from voxlora import audio as vaudio
from voxlora.errors import VoxloraError
from voxlora.synth.backend import generate_codes, load_model
from voxlora.synth.config import SynthConfig
from voxlora.synth.requests import Request
from voxlora.turns import Turn, read_context_audio

log = logging.getLogger("voxlora")


@dataclass
class Clip:
    """One made clip: its output record, the audio codes (T, K) it was decoded from, and the wave."""

    record: dict
    codes: torch.Tensor
    wave: np.ndarray


class Synthesizer:
    """The base model loaded once on its backend, its adapter switch, and `speak` for each request."""

    def __init__(self, config: SynthConfig):
        if config.max_seconds <= 0:
            raise VoxloraError(f"--max-seconds must be positive, got {config.max_seconds}")
        self.config = config
        started = time.perf_counter()
        self.backend = load_model(config)
        self.bundle = self.backend.bundle  # the loaded model (torch's CsmBundle or MLX's MlxCsm)
        self.adapters = self.backend.adapters  # .use(path | None)
        log.info(f"{config.model}: loaded in {time.perf_counter() - started:.1f} s ({self.backend.name})")
        if self.max_frames() < 1:
            raise VoxloraError(
                f"--max-seconds {config.max_seconds} is shorter than one audio frame ({1 / self.frame_rate:g} s)"
            )

    @property
    def frame_rate(self) -> float:
        """Codec frames per second (12.5 for Mimi: 1920 samples at 24 kHz)."""
        return self.backend.sample_rate / self.backend.frame_size

    def max_frames(self) -> int:
        """Frames to generate at most: --max-seconds holds (the end-of-audio frame counts too)."""
        return math.floor(self.config.max_seconds * self.frame_rate + 1e-6)

    def speak(self, request: Request) -> Clip:
        """Make ``request``'s clip, write its WAV, and return it; a `VoxloraError` naming the request."""
        try:
            return self._speak(request)
        except VoxloraError as e:
            if not request.where:
                raise
            raise VoxloraError(f"{request.where}: {e}") from None

    def _speak(self, request: Request) -> Clip:
        cfg, backend = self.config, self.backend
        self.adapters.use(request.adapter)
        turns = [
            Turn(
                c.text,
                request.speaker if c.speaker is None else c.speaker,
                read_context_audio(c.audio, backend.sample_rate),
            )
            for c in request.context
        ]
        turns.append(Turn(request.text, request.speaker))
        inputs = backend.prompt(turns)
        max_frames = self.max_frames()
        self._check_length(inputs, max_frames)

        started = time.perf_counter()
        codes = generate_codes(backend, inputs, max_frames, cfg.temperature, cfg.top_k, request.seed)
        elapsed = time.perf_counter() - started
        codes, ended = backend.trim(codes)
        wave = backend.decode(codes)

        rate = cfg.sample_rate or backend.sample_rate
        wave = vaudio.resample(wave, backend.sample_rate, rate)
        vaudio.write_wav(request.out, wave, rate)
        duration = vaudio.duration(wave, rate)
        log.info(
            f"{request.out}: {duration:.2f} s, {len(codes)} frames in {elapsed:.2f} s "
            f"({len(codes) / max(elapsed, 1e-9):.1f} frames/s){'' if ended else ', stopped at --max-seconds'}"
        )
        record = {
            **request.record,
            "audio": str(request.out),
            "text": request.text,
            "speaker": request.speaker,
            "duration": duration,
            "sample_rate": rate,
            "adapter": request.adapter,
            "merged": bool(request.adapter) and cfg.merge,
            "seed": request.seed,
            "frames": len(codes),
            "ended": "eos" if ended else "max-seconds",
        }
        return Clip(record=record, codes=codes, wave=wave)

    def _check_length(self, inputs, max_frames: int) -> None:
        """The prompt plus the frames to generate must fit the backbone's positions."""
        limit = self.backend.max_positions
        n_prompt = self.backend.prompt_length(inputs)
        if n_prompt + max_frames > limit:
            raise VoxloraError(
                f"the prompt ({n_prompt} tokens, context included) plus {max_frames} frames to generate "
                f"is more than the model's {limit} positions; use shorter context or --max-seconds"
            )
