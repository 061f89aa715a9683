"""REPORT/index.html: one page, no server, no script, no network: opened from disk it just works.

The page holds the summary table, a small inline SVG chart (mean WER and mean speaker similarity per
system) and, for every text, an audio player per system side by side (real recording, base, each
adapter) with that clip's scores under it. Audio paths are relative to the page, so the folder can
be moved or copied whole.
"""

import html
from pathlib import Path

from voxlora.evaluation.summary import COLUMNS, REAL, _cell, system_of

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
.clips td{vertical-align:top}.clips audio{width:220px;display:block}.s{font-size:.85em;color:#555}
.finding{color:#a40000;font-weight:bold}.t{max-width:280px}
"""
CHART_COLORS = ("#4e79a7", "#f28e2b")


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def chart(rows: list[dict], width: int = 660, bar_h: int = 14) -> str:
    """Horizontal bars, two per system: mean WER (0..1, lower is better), mean similarity (0..1, higher is better)."""
    label_w, top = 170, 24
    scale = width - label_w - 50
    height = top + len(rows) * (2 * bar_h + 10) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        'aria-label="mean WER and speaker similarity per system">',
        f'<text x="{label_w}" y="14" font-size="12" fill="{CHART_COLORS[0]}">WER (lower is better)</text>',
        f'<text x="{label_w + 170}" y="14" font-size="12" fill="{CHART_COLORS[1]}">speaker similarity (higher is better)</text>',
    ]
    for i, row in enumerate(rows):
        y = top + i * (2 * bar_h + 10)
        name = row["system"] if len(row["system"]) <= 26 else "…" + row["system"][-25:]
        parts.append(f'<text x="0" y="{y + bar_h + 4}" font-size="12">{_e(name)}</text>')
        for j, key in enumerate(("wer", "speaker_sim")):
            value = row.get(key)
            w = 0 if value is None else max(0.0, min(float(value), 1.5)) * scale
            parts.append(
                f'<rect x="{label_w}" y="{y + j * bar_h}" width="{w:.1f}" height="{bar_h - 2}" fill="{CHART_COLORS[j]}">'
                f"<title>{key} {_cell(value)}</title></rect>"
                f'<text x="{label_w + w + 4:.1f}" y="{y + j * bar_h + bar_h - 4}" font-size="11">{_cell(value)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def table(rows: list[dict]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for _, h in COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"" if k == "system" else "n"}">{_e(_cell(row[k]))}</td>' for k, _ in COLUMNS)
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def clips_table(records: list[dict], systems: list[str], folder: Path) -> str:
    """One row per text, one column per system: a player and the clip's scores."""
    by_item: dict = {}
    for r in records:
        by_item.setdefault(r["item"], {})[system_of(r)] = r
    head = "<th>text</th>" + "".join(f"<th>{_e(s)}</th>" for s in systems)
    rows = []
    for item in sorted(by_item):
        clips = by_item[item]
        text = next(iter(clips.values()))["text"]
        cells = [f'<td class="t">{_e(text)}</td>']
        for s in systems:
            r = clips.get(s)
            if r is None:
                cells.append("<td></td>")
                continue
            src = Path(r["report_audio"]).as_posix()
            scores = f"WER {_cell(r.get('wer'), 2)} · sim {_cell(r.get('speaker_sim'), 2)} · {_cell(r.get('duration'), 2)} s"
            if r.get("ended") == "max-seconds":
                scores += " · hit the limit"
            cells.append(
                f'<td><audio controls preload="none" src="{_e(src)}"></audio>'
                f'<div class="s">{_e(scores)}</div><div class="s">heard: “{_e(r.get("transcript", ""))}”</div></td>'
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="clips"><tr>{head}</tr>{"".join(rows)}</table>'


def render(rows: list[dict], records: list[dict], findings: list[str], info: dict, folder: Path) -> str:
    systems = [row["system"] for row in rows]
    about = " · ".join(f"{_e(k)}: {_e(v)}" for k, v in info.items() if v is not None)
    notes = "".join(f'<p class="finding">{_e(f)}</p>' for f in findings)
    real = REAL in systems
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lora-eval report</title>
<style>{STYLE}</style></head><body>
<h1>lora-eval report</h1>
<p class="s">{about}</p>
{notes}
<h2>Summary</h2>
<p>Lower WER/CER (what the speech recogniser heard against the text) and higher speaker similarity
(cosine to the speaker's real recordings) are better.{" The real recordings' row is what good looks like." if real else ""}</p>
{table(rows)}
{chart(rows)}
<h2>Listen</h2>
{clips_table(records, systems, folder)}
</body></html>
"""


def write_report(folder, rows, records, findings, info) -> Path:
    from voxlora.atomic import atomic_write_text

    folder = Path(folder)
    path = folder / "index.html"
    atomic_write_text(path, render(rows, records, findings, info, folder))
    return path


def report_kind():
    """What lora-eval writes into REPORT/ (voxlora.outputs' rule for output folders)."""
    from voxlora.outputs import DirKind

    return DirKind("lora-eval", owns=("index.html", "audio", "clips.jsonl", "summary.json"))
