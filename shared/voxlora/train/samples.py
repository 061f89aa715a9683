"""Listening samples while training (``--sample-every N``) and the best checkpoint (``--keep-best``).

Every N steps `Sampler` writes the adapter as it is now into a scratch folder and speaks a few texts
with it through synth's own `Synthesizer` (the base loaded once, on the training backend and device,
beside the model being trained), into ``OUT/samples/step_NNNNNNN/01.wav, 02.wav, …``. The texts are
``--sample-texts FILE`` (one per line), else the first two of the validation manifest (else of the
training manifest), each with its record's speaker; the seed is the run's. When the ``[eval]`` extra
is installed, the samples are scored as lora-eval scores them (WER against the text, speaker
similarity against the real recordings of the validation manifest, else the first 8 of the training
one), and the metrics get a line ``{"step", "samples", "wer", "speaker_sim"}``.

`BestKeeper` keeps ``OUT/best/`` (the adapter files and ``best.json``) for the best value so far of
``val_loss`` (lowest), ``wer`` (lowest) or ``speaker_sim`` (highest), written when the record that
carries the measure comes out, while the model is still at that step.
"""

import importlib.util
import json
import logging
import shutil
from pathlib import Path

from voxlora.errors import VoxloraError

log = logging.getLogger("voxlora")

SAMPLES, BEST = "samples", "best"
N_TEXTS = 2  # texts taken from a manifest when no --sample-texts file is given
N_REFERENCES = 8  # real recordings for speaker similarity
MEASURES = {"val_loss": min, "wer": min, "speaker_sim": max}  # --keep-best choices, and which way is better


def eval_extras_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("pocketsphinx", "jiwer", "resemblyzer"))


def read_sample_texts(path) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise VoxloraError(f"{path}: cannot read the sample texts ({e.__class__.__name__}: {e})") from None
    texts = [line.strip() for line in lines if line.strip()]
    if not texts:
        raise VoxloraError(f"{path}: no sample texts in it (one text per line)")
    return texts


class Sampler:
    def __init__(self, config, out: Path, saver, records: list[dict], val_records: list[dict] | None):
        self.config, self.out, self.saver = config, Path(out), saver
        source = val_records or records
        if config.sample_texts:
            self.texts = [(t, config.default_speaker) for t in read_sample_texts(config.sample_texts)]
        else:
            self.texts = [
                (r["text"], int(r.get("speaker", config.default_speaker))) for r in source[:N_TEXTS]
            ]
        self.references = source[:N_REFERENCES]
        self.scorer = None
        if eval_extras_installed():
            from voxlora.evaluation.scorer import Scorer

            self.scorer = Scorer()
            for ref in self.references:
                self.scorer.add_reference(ref)
        else:
            log.info(
                'samples are written but not scored: pip install "voxlora[eval]" for wer and speaker_sim'
            )
        self._synth = None

    def due(self, step: int) -> bool:
        return bool(self.config.sample_every) and step % self.config.sample_every == 0

    @property
    def synth(self):
        if self._synth is None:
            from voxlora.synth.config import SynthConfig
            from voxlora.synth.synthesizer import Synthesizer

            c = self.config
            self._synth = Synthesizer(
                SynthConfig(
                    model=c.model, backend=c.backend, device=c.device, seed=c.seed,
                    max_seconds=c.sample_max_seconds, allow_other_base=True, codec=c.codec,
                )
            )  # fmt: skip
        return self._synth

    def sample(self, step: int) -> dict:
        """Speak the texts with the adapter as it is at ``step``; the metrics line for them."""
        from voxlora.adapter import write_adapter
        from voxlora.atomic import atomic_dir
        from voxlora.synth.requests import Request

        folder = self.out / SAMPLES / f"step_{step:07d}"
        scratch = self.out / SAMPLES / f".adapter-{step:07d}"  # a new path each time: loaded afresh
        shutil.rmtree(scratch, ignore_errors=True)
        write_adapter(self.saver.current_adapter(step), scratch)
        scores = []
        try:
            with atomic_dir(folder) as tmp:
                for i, (text, speaker) in enumerate(self.texts, 1):
                    request = Request(
                        text=text, out=Path(tmp) / f"{i:02d}.wav", speaker=speaker, adapter=str(scratch),
                        seed=self.config.seed,
                    )  # fmt: skip
                    clip = self.synth.speak(request)
                    if self.scorer is not None:
                        scores.append(self.scorer.score(clip.wave, clip.record["sample_rate"], text, speaker))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        record = {"step": step, "samples": str(folder)}
        if scores:
            sims = [s["speaker_sim"] for s in scores if s["speaker_sim"] is not None]
            record["wer"] = round(sum(s["wer"] for s in scores) / len(scores), 4)
            record["speaker_sim"] = round(sum(sims) / len(sims), 4) if sims else None
        log.info(f"step {step}: {len(self.texts)} samples in {folder}")
        return record


class BestKeeper:
    def __init__(self, measure: str, out: Path, saver):
        if measure not in MEASURES:
            raise VoxloraError(f"--keep-best must be one of {', '.join(MEASURES)}, got {measure!r}")
        self.measure, self.out, self.saver = measure, Path(out), saver
        self.best: tuple[int, float] | None = None

    def offer(self, record: dict) -> None:
        value = record.get(self.measure)
        if value is None or not isinstance(value, int | float):
            return
        if self.best is not None and MEASURES[self.measure](value, self.best[1]) == self.best[1]:
            return  # not better (a tie keeps the earlier step)
        from voxlora.atomic import atomic_dir

        step = int(record["step"])
        with atomic_dir(self.out / BEST) as tmp:
            self.saver.write(Path(tmp), step)
            info = {"step": step, "measure": self.measure, self.measure: value}
            (Path(tmp) / "best.json").write_text(json.dumps(info) + "\n", encoding="utf-8")
        self.best = (step, value)
        log.info(f"step {step}: best {self.measure} so far ({value:.4g}), kept in {self.out / BEST}")

    def result(self) -> dict | None:
        if self.best is None:
            return None
        return {"adapter": str(self.out / BEST), "step": self.best[0], self.measure: self.best[1]}
