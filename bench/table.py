"""Medians, timing and the results table that `make bench` prints and saves."""

import datetime
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def median_time(fn, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` runs after ``warmup`` unmeasured ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def markdown(rows: list[dict]) -> str:
    """Rows of dicts (same keys in any order; missing cells blank) as one markdown table."""
    columns = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def save(sections: dict[str, list[dict]], preamble: str = "", suffix: str = "") -> Path:
    """Write every section's table to bench/results/<date>-<host><suffix>.md and return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    host = platform.node() or "host"
    path = RESULTS / f"{datetime.date.today().isoformat()}-{host}{suffix}.md"
    parts = [f"# voxlora benchmarks, {datetime.datetime.now().isoformat(timespec='seconds')} on {host}", ""]
    if preamble:
        parts += [preamble, ""]
    for title, rows in sections.items():
        parts += [f"## {title}", "", markdown(rows), ""]
    path.write_text("\n".join(parts))
    return path
