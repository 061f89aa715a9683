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
from voxlora.synth import long_text
from voxlora.synth.backend import generate_batch, generate_codes, load_model
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
        self._fingerprint, self._checked = None, set()  # the base's fingerprint; adapters checked against it
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

    @staticmethod
    def check_adapter_base(config: SynthConfig, path, fingerprint: str | None = None) -> str | None:
        """Refuse an adapter made for another base (`voxlora.adapter_base`); returns the base's fingerprint."""
        from voxlora.adapter import base_fingerprint, base_identity
        from voxlora.adapter_base import check_base
        from voxlora.modelfolder import model_dir

        found = [fingerprint]

        def ours() -> str:  # read from the base's headers once, and only when an adapter records one
            found[0] = found[0] or base_fingerprint(model_dir(config.model))
            return found[0]

        identity = lambda: base_identity(model_dir(config.model))  # noqa: E731
        check_base(path, path, config.model, ours, allow=config.allow_other_base, identity=identity)
        return found[0]

    def speak_batch(self, requests: list[Request]) -> list[Clip | VoxloraError]:
        """Clips for ``requests``, in their order (a `VoxloraError` in place of one that failed).

        Requests for the same adapter are generated together (`backend.generate_batch`: the same
        codes as one at a time); a long text spoken in chunks is made alone (`speak`).
        """
        results: list = [None] * len(requests)
        groups: dict = {}  # adapter -> [(index, request, turns, inputs)]
        for i, request in enumerate(requests):
            try:
                if self._chunks(request) is not None:  # spoken alone; its context is read there
                    results[i] = self._speak(request)
                    continue
                turns = self._context(request)
                turns.append(Turn(request.text, request.speaker))
                inputs = self.backend.prompt(turns)
                self._check_length(inputs, self.max_frames())
                groups.setdefault(request.adapter, []).append((i, request, inputs))
            except VoxloraError as e:
                results[i] = self._where(request, e)
        for adapter, group in groups.items():
            self.adapters.use(adapter)
            cfg = self.config
            started = time.perf_counter()
            prompts = [(inputs, self.max_frames(), request.seed) for _, request, inputs in group]
            all_codes = generate_batch(self.backend, prompts, cfg.temperature, cfg.top_k)
            elapsed = time.perf_counter() - started
            log.info(f"{len(group)} clips generated together in {elapsed:.2f} s "
                     f"({sum(len(c) for c in all_codes) / max(elapsed, 1e-9):.1f} frames/s in all)")  # fmt: skip
            for (i, request, _), codes in zip(group, all_codes, strict=True):
                try:
                    codes, ended = self.backend.trim(codes)
                    wave = self.backend.decode(codes)
                    results[i] = self._finish(
                        request, codes, wave, "eos" if ended else "max-seconds", elapsed, 1
                    )
                except VoxloraError as e:
                    results[i] = self._where(request, e)
        return results

    @staticmethod
    def _where(request: Request, error: VoxloraError) -> VoxloraError:
        return VoxloraError(f"{request.where}: {error}") if request.where else error

    def _context(self, request: Request) -> list[Turn]:
        """The request's context turns, its adapter checked against the base (once per adapter)."""
        if request.adapter is not None and str(request.adapter) not in self._checked:
            self._fingerprint = self.check_adapter_base(self.config, request.adapter, self._fingerprint)
            self._checked.add(str(request.adapter))
        return [
            Turn(
                c.text,
                request.speaker if c.speaker is None else c.speaker,
                read_context_audio(c.audio, self.backend.sample_rate),
            )
            for c in request.context
        ]

    def _chunks(self, request: Request) -> list[str] | None:
        """The chunks of a long text (`long_text`), or None when the request is one generation."""
        chunks = long_text.split_request(request.text, self.config.max_seconds)
        return chunks if len(chunks) > 1 or self.config.max_total_seconds is not None else None

    def _speak(self, request: Request) -> Clip:
        turns = self._context(request)
        self.adapters.use(request.adapter)
        chunks = self._chunks(request)
        if chunks is not None:
            codes, wave, ended, elapsed, spoken = self._speak_chunks(request, turns, chunks)
        else:
            codes, wave, ended, elapsed = self._generate(turns + [Turn(request.text, request.speaker)],
                                                         self.max_frames(), request.seed)  # fmt: skip
            ended, spoken = "eos" if ended else "max-seconds", 1
        return self._finish(request, codes, wave, ended, elapsed, spoken)

    def _finish(self, request: Request, codes, wave, ended: str, elapsed: float, spoken: int) -> Clip:
        """Resample, write the WAV atomically, and make the output record."""
        cfg, backend = self.config, self.backend
        rate = cfg.sample_rate or backend.sample_rate
        wave = vaudio.resample(wave, backend.sample_rate, rate)
        vaudio.write_wav(request.out, wave, rate)
        duration = vaudio.duration(wave, rate)
        log.info(
            f"{request.out}: {duration:.2f} s, {len(codes)} frames in {elapsed:.2f} s "
            f"({len(codes) / max(elapsed, 1e-9):.1f} frames/s)"
            f"{'' if ended == 'eos' else ', stopped at --' + ended}{f', {spoken} chunks' if spoken > 1 else ''}"
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
            "ended": ended,
            **({"chunks": spoken} if spoken > 1 else {}),
        }
        return Clip(record=record, codes=codes, wave=wave)

    def _generate(self, turns: list[Turn], max_frames: int, seed: int):
        """(codes (T, K), wave at the model's rate, ended at end-of-audio, seconds) for the last turn."""
        backend, cfg = self.backend, self.config
        inputs = backend.prompt(turns)
        self._check_length(inputs, max_frames)
        started = time.perf_counter()
        codes = generate_codes(backend, inputs, max_frames, cfg.temperature, cfg.top_k, seed)
        elapsed = time.perf_counter() - started
        codes, ended = backend.trim(codes)
        return codes, backend.decode(codes), ended, elapsed

    def _speak_chunks(self, request: Request, context: list[Turn], chunks: list[str]):
        """A long text chunk by chunk, each after the previous one as context (`long_text`)."""
        sr, cfg = self.backend.sample_rate, self.config
        pause = np.zeros(int(round(long_text.PAUSE_SECONDS * sr)), dtype=np.float32)
        total = None if cfg.max_total_seconds is None else int(cfg.max_total_seconds * sr)
        all_codes, waves, elapsed, previous, ended = [], [], 0.0, None, "eos"
        for i, text in enumerate(chunks):
            used = sum(len(w) for w in waves) + (len(pause) if waves else 0)
            frames = self.max_frames()
            if total is not None:
                frames = min(frames, math.floor((total - used) / self.backend.frame_size + 1e-6))
            if frames < 1:
                ended = "max-total-seconds"
                break
            turns = [*context, *([previous] if previous else []), Turn(text, request.speaker)]
            try:
                codes, wave, eos, seconds = self._generate(turns, frames, request.seed + i)
            except VoxloraError:
                if previous is None:
                    raise
                log.info(
                    "chunk %d: the previous chunk does not fit the model's positions as context; without it",
                    i + 1,
                )
                codes, wave, eos, seconds = self._generate([*context, Turn(text, request.speaker)], frames,
                                                           request.seed + i)  # fmt: skip
            if waves:
                waves.append(pause)
            waves.append(np.asarray(wave, dtype=np.float32))
            all_codes.append(codes)
            elapsed += seconds
            previous = Turn(text, request.speaker, np.asarray(wave, dtype=np.float32))
            ended = "eos" if eos else "max-total-seconds" if frames < self.max_frames() else "max-seconds"
            if ended == "max-total-seconds":
                break
        spoken = len(all_codes)
        if ended == "eos" and spoken < len(chunks):
            ended = "max-total-seconds"
        return torch.cat(all_codes), np.concatenate(waves), ended, elapsed, spoken

    def _check_length(self, inputs, max_frames: int) -> None:
        """The prompt plus the frames to generate must fit the backbone's positions."""
        limit = self.backend.max_positions
        n_prompt = self.backend.prompt_length(inputs)
        if n_prompt + max_frames > limit:
            raise VoxloraError(
                f"the prompt ({n_prompt} tokens, context included) plus {max_frames} frames to generate "
                f"is more than the model's {limit} positions; use shorter context or --max-seconds"
            )
