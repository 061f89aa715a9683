"""lora-eval from start to end: read, speak or take the clips, score, summarise, write the report.

    result = run(speak=True, synth={...SynthConfig fields...}, adapters=[...], held_out=[...], ...)
    result.records    # one dict per clip, what lora-eval prints
    result.table      # the summary as text (stderr)
    result.findings   # "adapter has no effect" lines

With an ``output`` folder, everything is written into a temporary folder beside it that becomes
``output`` whole at the end (`voxlora.atomic.atomic_dir`): index.html, audio/, clips.jsonl and
summary.json; the records' ``audio`` then point into it.
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from voxlora.errors import VoxloraError
from voxlora.evaluation.report import report_kind, write_report
from voxlora.evaluation.run import score_existing, speak_and_score
from voxlora.evaluation.scorer import Scorer
from voxlora.evaluation.summary import findings, format_table, summarize

__all__ = ["Result", "read_records", "report_kind", "run"]
log = logging.getLogger("voxlora.eval")


@dataclass
class Result:
    records: list[dict]
    rows: list[dict]
    table: str
    findings: list[str] = field(default_factory=list)


def read_records(source, limit: int | None = None) -> list[dict]:
    """A JSONL manifest (or ``-``) as records with absolute ``audio`` and ``_where``; a bad line is an error."""
    from voxlora.manifest import iter_manifest

    records = []
    for entry in iter_manifest(source):
        if entry.error is not None:
            raise entry.error
        records.append({**entry.record, "_where": entry.where})
        if limit and len(records) >= limit:
            break
    if not records:
        raise VoxloraError(f"{'<stdin>' if str(source) == '-' else source}: no records")
    return records


def run(
    *, speak, synth, adapters, held_out, references, clips, output, asr, speaker_encoder, device
) -> Result:
    scorer = Scorer(asr, speaker_encoder, device="cpu" if device == "auto" else device)
    for ref in references or (held_out if speak else []):
        scorer.add_reference(ref, ref.get("_where", ""))
    info = {"asr": scorer.asr.name, "speaker encoder": scorer.encoder.name}
    if output is None:
        records = score_existing(clips, references, scorer, None)
        return _finish(records, {}, [], info, None)
    from voxlora.atomic import atomic_dir
    from voxlora.outputs import mark_dir

    with atomic_dir(output) as tmp:
        tmp = Path(tmp)
        waves = {}
        if speak:
            config = _synth_config(synth)
            info.update(model=config.model, seed=config.seed, speaker=config.speaker)
            records, waves = speak_and_score(config, adapters, held_out, tmp, scorer)
        else:
            records = score_existing(clips, references, scorer, tmp)
        result = _finish(records, waves, adapters, info, tmp)
        for r in result.records:
            if speak and r["adapter"] != "real":  # the clip's place once the folder is in place
                r["audio"] = str(Path(output) / r["report_audio"])
        _write_lines(tmp / "clips.jsonl", result.records)
        (tmp / "summary.json").write_text(
            json.dumps({"rows": result.rows, "findings": result.findings, **info}, indent=1) + "\n",
            encoding="utf-8",
        )
        mark_dir(tmp, report_kind())
    return result


def _finish(records, waves, adapters, info, folder) -> Result:
    rows = summarize(records)
    found = findings(records, waves, adapters)
    if folder is not None:
        write_report(folder, rows, records, found, info)
    return Result(records=records, rows=rows, table=format_table(rows), findings=found)


def _synth_config(options: dict):
    from voxlora.synth.config import SynthConfig
    from voxlora.synth.requests import ContextClip

    options = dict(options)
    context = [ContextClip(a, t) for a, t in options.pop("context", [])]
    return SynthConfig(context=context, **options)


def _write_lines(path: Path, records) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
