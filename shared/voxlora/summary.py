"""The closing summary of a data run: clips kept, minutes, speakers, a duration histogram.

`describe` gives the lines mkmanifest logs on stderr; `plot` draws the histogram into a PNG
(``--plot FILE.png``), written atomically.

    clips 42, 6.3 min, 1 speaker, 2.1-14.8 s (median 8.7 s)
       0-2 s |
       2-4 s |####### 7
       ...
"""

import numpy as np

BINS = (0, 2, 4, 6, 8, 10, 12, 15, 20, 30)  # seconds; CSM's clips sit between 2 and 15


def _edges(durations: list[float]) -> list[float]:
    top = max(durations, default=0.0)
    edges = [b for b in BINS if b < top] + [next((b for b in BINS if b >= top), float(np.ceil(top)))]
    return edges if len(edges) > 1 else [0.0, max(1.0, top)]


def describe(records: list[dict], width: int = 40) -> list[str]:
    """Lines: the totals, then one histogram row per duration bin."""
    durations = [float(r.get("duration") or 0.0) for r in records]
    speakers = {r.get("speaker") for r in records}
    if not durations:
        return ["clips 0"]
    head = (
        f"clips {len(durations)}, {sum(durations) / 60:.1f} min, {len(speakers)} speaker"
        f"{'s' if len(speakers) != 1 else ''}, {min(durations):.1f}-{max(durations):.1f} s "
        f"(median {float(np.median(durations)):.1f} s)"
    )
    edges = _edges(durations)
    counts, _ = np.histogram(durations, bins=edges)
    scale = max(1, int(counts.max()))
    rows = [
        f"{f'{edges[i]:g}-{edges[i + 1]:g} s':>9} |{'#' * int(round(width * c / scale))} {c}"
        for i, c in enumerate(counts)
    ]
    return [head, *rows]


def plot(records: list[dict], path) -> None:
    """The duration histogram as a PNG at ``path`` (atomic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from voxlora.atomic import atomic_file

    durations = [float(r.get("duration") or 0.0) for r in records]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(durations, bins=_edges(durations) if durations else 10, edgecolor="black")
    ax.set_xlabel("clip duration (s)")
    ax.set_ylabel("clips")
    ax.set_title(f"{len(durations)} clips, {sum(durations) / 60:.1f} min")
    fig.tight_layout()
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)
