"""lora-inspect: what an adapter holds, what learned most, and whether it fits a base model."""

import json
import sys

import click
from voxlora.clikit import command, common_options, emit, log, run
from voxlora.errors import VoxloraError
from voxlora.lora_options import family_option


@command()
@click.argument("adapter")
@click.option("--model", help="Base model to check the adapter against (folder or hub id).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per adapter instead of a report.")
@click.option("--top", type=int, default=10, show_default=True, help="Modules listed by update norm.")
@family_option
@common_options
def cli(adapter, model, as_json, top, family):
    """Report on ADAPTER (voxlora, peft, mlx-lm or VoxCPM lora_weights folder; - reads JSON records
    with "adapter").

    Shows rank, alpha, scaling, targets and layers, parameter count (and share of the base when it
    is known), and each module's |scaling * B @ A| (zero for an untrained adapter). With --model,
    every adapter key is checked against the base: exit 1 listing the keys that would be skipped
    or do not match in shape. Targets are named in the model family's terms (csm,
    higgs-audio-v2, voxcpm): the adapter's recorded family, --family, or the base's config.json.

    \b
    lora-inspect runs/voice --model sesame/csm-1b
    lora-inspect voxcpm-run/checkpoints/latest --model VoxCPM1.5
    lora-init --model sesame/csm-1b -o runs/a0 | lora-inspect --json -
    """
    from voxlora.adapter_report import report

    paths, failed = _from_stdin() if adapter == "-" else ([adapter], [])
    if not paths and not failed:  # no usable input at all
        raise VoxloraError(
            '<stdin>: no adapters to report (stdin is empty; give JSON records with "adapter")'
        )
    for path in paths:
        try:
            info = report(path, model, family)
        except VoxloraError as e:  # a bad adapter among several: say so, report the others
            if len(paths) == 1 and not failed:
                raise
            log.error("Error: %s", e)
            failed.append(f"{path}: not reported (see above)")
            continue
        if as_json:
            emit(info | {"norms": info["norms"][:top]})
        else:
            click.echo(_text(info, top))
        if info.get("problems"):
            failed.append(
                f"{path}: {len(info['problems'])} keys do not fit {info['model']}: "
                + "; ".join(info["problems"])
            )
        elif info.get("fingerprint_match") is False:
            log.warning("%s: made for another checkpoint (fingerprint differs), but every key fits", path)
    if failed:
        raise VoxloraError("\n".join(failed))


def _from_stdin() -> tuple[list[str], list[str]]:
    """The "adapter" of each JSON record on stdin, and one message per line that holds none."""
    from voxlora.manifest import decode_line

    paths, bad = [], []
    for n, raw in enumerate(sys.stdin.buffer, 1):
        line = decode_line(raw, f"<stdin>:{n}")
        if isinstance(line, VoxloraError):  # not UTF-8
            bad.append(str(line))
            continue
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict) and isinstance(record.get("adapter"), str):
            paths.append(record["adapter"])
        else:
            bad.append(f'<stdin>:{n}: expected a JSON record with "adapter"')
    return paths, bad


def _text(r: dict, top: int) -> str:
    lines = [
        f"adapter      {r['adapter']} ({r['format']})",
        f"base model   {r['base_model']}",
        f"family       {r['family']}",
        f"rank         {r['r']}   alpha {r['alpha']:g}   scaling {r['scaling']:g}"
        + ("   (rsLoRA)" if r["rslora"] else "")
        + f"   dropout {r['dropout']:g}",
        f"targets      {', '.join(r['targets'])}",
        f"layers       {'; '.join(f'{c} {v}' for c, v in r['layers'].items()) or '-'}",
        f"modules      {r['modules']}"
        + (f"   trained directly: {', '.join(r['trained'])}" if r["trained"] else ""),
        f"parameters   {r['params']:,}"
        + (f"   ({100 * r['share']:.3f}% of {r['base_params']:,})" if r.get("share") is not None else ""),
    ]
    if r.get("model"):
        verdict = "fits" if not r["problems"] else f"{len(r['problems'])} keys do not fit"
        lines.append(
            f"check        {r['model']}: {verdict}"
            + ("" if r.get("fingerprint_match") is not False else " (fingerprint differs)")
        )
        lines += [f"  {p}" for p in r["problems"]]
    lines.append(f"largest updates |scaling * B @ A| (top {min(top, len(r['norms']))}):")
    lines += [f"  {n['norm']:12.6g}  {n['module']}" for n in r["norms"][:top]]
    return "\n".join(lines)


main = run(cli)
