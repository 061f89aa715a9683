"""hf-fetch's engine: rows of a Hugging Face dataset, on the Hub or on disk, to WAV files + manifest records.

Where rows come from, by what DATASET is:

    a Hub id (owner/name)         `datasets.load_dataset(..., streaming=True)`: ``limit=100`` reads about
                                  100 rows, never the whole dataset. Offline (HF_HUB_OFFLINE set, or
                                  the Hub not answering within `HUB_TIMEOUT` s) it fails at once, one line.
    a `save_to_disk` folder       `datasets.load_from_disk`
    parquet/arrow files, or a     `datasets.load_dataset(path, streaming=True)` (a local clone of a Hub
    folder holding them           dataset looks like this)
    an audio folder or corpus     `corpora.iter_source`: audiofolder metadata, LJSpeech, Common Voice,
    file (.tsv, metadata.csv)     LibriTTS sidecars, a csm-mlx list (datasets' own audiofolder
                                  reader needs torchcodec to encode paths, so voxlora reads these itself)

``datasets`` never decodes audio here (that would need torchcodec): the audio column is cast to
``Audio(decode=False)`` and its bytes or file are decoded with soundfile (`audio.load`). Which column
holds the transcript and the speaker is `columns.pick_columns`. ``trust_remote_code`` is never passed.
"""

import logging
import os
import re
import socket
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxlora import audio, retry
from voxlora.columns import pick_columns, speaker_of, text_of
from voxlora.errors import VoxloraError
from voxlora.rejects import Rejected, Tally
from voxlora.speakers import SpeakerMap

log = logging.getLogger("voxlora.hf")

HUB_TIMEOUT = 5.0  # seconds to wait for the Hub's TCP handshake before calling it unreachable
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_DATA_SUFFIXES = (".parquet", ".arrow")


@dataclass(frozen=True)
class FetchConfig:
    dataset: str  # Hub id or local path
    out_dir: str  # the WAVs are written here, one per row: <split>-<row>.wav
    config: str | None = None  # dataset configuration (subset); default: `language`
    split: str | None = None  # default: "train" when there is one, else the first split
    limit: int | None = None  # stop after this many clips
    language: str | None = None  # the configuration of multilingual datasets (Common Voice, VoxPopuli)
    sample_rate: int | None = None  # resample to this rate (Hz); None keeps the dataset's
    text_column: str | None = None  # default: see columns.TEXT_COLUMNS
    audio_column: str | None = None  # default: the column typed Audio, else columns.AUDIO_COLUMNS
    speaker_column: str | None = None  # default: see columns.SPEAKER_COLUMNS


@dataclass
class Row:
    index: int
    audio: object  # {"bytes", "path"}, a path, or {"array", "sampling_rate"}
    text: str | None
    speaker: str | None
    base_dir: str = "."  # where a relative audio path lives


def hide_datasets_progress() -> None:
    """No ``datasets`` progress bars (set before its import when possible: importing it takes a second)."""
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()


def _one_line(e: Exception) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 400 else text[:400] + "…"


# -- the Hub ---------------------------------------------------------------------------------------
def hub_unreachable(timeout: float = HUB_TIMEOUT) -> str | None:
    """Why the Hub cannot be used now (HF_HUB_OFFLINE, no connection), or None when it answers.

    Without this check ``huggingface_hub`` retries a dead connection for ~25 s before failing.
    A TCP handshake to the endpoint (or the HTTPS proxy) is tried in a thread, so a DNS lookup that
    hangs cannot hang the command either.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    target = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    target = target or os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    url = urllib.parse.urlsplit(target if "://" in target else f"http://{target}")
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    failure: list[str] = []

    def probe():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as e:
            failure.append(e.strerror or _one_line(e))

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 1)
    if thread.is_alive():
        return f"no answer from {host} within {timeout:g} s"
    return f"cannot connect to {host}: {failure[0]}" if failure else None


def _load_hub(cfg: FetchConfig):
    reason = hub_unreachable()
    if reason:
        raise VoxloraError(
            f"{cfg.dataset}: not a local file or folder, and the Hugging Face Hub is unreachable ({reason}); "
            "give the path of a local dataset instead"
        )
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")
    import datasets

    def load():
        return datasets.load_dataset(
            cfg.dataset, name=cfg.config or cfg.language, split=cfg.split, streaming=True
        )

    try:
        return retry.retrying(load, cfg.dataset)  # a network error is tried again a few times
    except Exception as e:  # DatasetNotFoundError, gated, missing config, ...: all one line
        if retry.is_transient(e):
            raise VoxloraError(
                f"{cfg.dataset}: the Hub failed {retry.ATTEMPTS} times, the last with {_one_line(e)}; try later"
            ) from None
        raise VoxloraError(f"{cfg.dataset}: {_one_line(e)}") from None


# -- local datasets --------------------------------------------------------------------------------
def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (
        (path / "state.json").is_file() and (path / "dataset_info.json").is_file()
    )


def _has_data_files(path: Path) -> bool:
    if path.is_file():
        return path.suffix in _DATA_SUFFIXES
    return any(p.suffix in _DATA_SUFFIXES for p in path.rglob("*") if p.is_file())


def _load_local(cfg: FetchConfig, path: Path):
    import datasets

    try:
        if _is_saved_dataset(path):
            return datasets.load_from_disk(str(path))
        if path.is_file():
            builder = path.suffix.lstrip(".")
            return datasets.load_dataset(builder, data_files=str(path), split=cfg.split, streaming=True)
        return datasets.load_dataset(
            str(path), name=cfg.config or cfg.language, split=cfg.split, streaming=True
        )
    except Exception as e:
        raise VoxloraError(f"{cfg.dataset}: {_one_line(e)}") from None


def _pick_split(ds, cfg: FetchConfig):
    """The split asked for (default "train", else the first) of a DatasetDict; a Dataset as it is."""
    if not hasattr(ds, "keys"):
        return ds, cfg.split or getattr(ds, "split", None) or "train"
    names = list(ds.keys())
    split = cfg.split or ("train" if "train" in names else names[0])
    if split not in names:
        raise VoxloraError(f"{cfg.dataset}: no split {split!r}; the splits are: {', '.join(names)}")
    return ds[split], split


def _dataset_rows(ds, cfg: FetchConfig, base_dir: str) -> Iterator[Row]:
    from datasets import Audio

    features = ds.features or {}
    names = ds.column_names
    rows = iter(ds)
    first = None
    if names is None:  # a stream of unknown shape: look at the first row
        first = next(rows, None)
        names = list(first or {})
    audio_typed = [n for n, f in features.items() if isinstance(f, Audio)]
    cols = pick_columns(
        names,
        audio_typed,
        text=cfg.text_column,
        audio=cfg.audio_column,
        speaker=cfg.speaker_column,
        what=cfg.dataset,
    )
    log.info(
        "%s: audio from %r, text from %s, speaker from %r",
        cfg.dataset,
        cols.audio,
        " or ".join(map(repr, cols.text)),
        cols.speaker,
    )
    source = ds
    if first is None and cols.audio in audio_typed:
        source = ds.cast_column(cols.audio, Audio(decode=False))
        rows = iter(source)
    index, waits = 0, list(retry.delays())
    while True:
        try:
            row = first if first is not None else next(rows)
        except StopIteration:
            return
        except Exception as e:  # a dropped connection or a broken shard, mid-stream
            if retry.is_transient(e) and waits and hasattr(source, "skip"):  # reopen the stream at this row
                wait = waits.pop(0)
                log.warning("%s: row %d: %s; reading on in %g s", cfg.dataset, index, _one_line(e), wait)
                retry.sleep(wait)
                rows = iter(source.skip(index))
                continue
            raise VoxloraError(f"{cfg.dataset}: reading row {index} failed: {_one_line(e)}") from None
        first = None
        waits = list(retry.delays())  # a row read: the next failure has every try again
        yield Row(index, row.get(cols.audio), text_of(row, cols), speaker_of(row, cols), base_dir)
        index += 1


def _corpus_rows(path: Path) -> Iterator[Row | Rejected]:
    from voxlora.corpora import iter_source

    for index, entry in enumerate(iter_source(path)):
        if entry.error is not None:
            yield entry.error
            continue
        r = entry.record
        speaker = r.get("speaker_name", r.get("speaker"))
        yield Row(
            index, {"path": r["audio"], "bytes": None}, r["text"], None if speaker is None else str(speaker)
        )


def open_rows(cfg: FetchConfig) -> tuple[Iterator[Row | Rejected], str]:
    """The rows of ``cfg.dataset`` and the split name they come from."""
    path = Path(os.path.expanduser(cfg.dataset))
    if path.exists():
        if not (_is_saved_dataset(path) or _has_data_files(path)):
            return _corpus_rows(path), cfg.split or "train"
        ds, split = _pick_split(_load_local(cfg, path), cfg)
        return _dataset_rows(ds, cfg, str(path if path.is_dir() else path.parent)), split
    if not _HUB_ID.match(cfg.dataset):
        raise VoxloraError(f"{cfg.dataset}: no such file or folder")
    ds, split = _pick_split(_load_hub(cfg), cfg)
    return _dataset_rows(ds, cfg, "."), split


# -- rows to clips ---------------------------------------------------------------------------------
def load_audio_value(value, base_dir: str = ".") -> tuple[np.ndarray, int]:
    """Decode a row's audio ({"bytes", "path"}, a path, or {"array", "sampling_rate"}) with soundfile."""
    if isinstance(value, dict) and value.get("bytes"):
        return audio.load(value["bytes"])
    if isinstance(value, dict) and value.get("array") is not None:
        x = audio.to_mono(np.asarray(value["array"], dtype=np.float32).T)
        audio.check(x)
        return x, int(value["sampling_rate"])
    path = value.get("path") if isinstance(value, dict) else value
    if not isinstance(path, str) or not path:
        raise Rejected("missing-file", "no audio in this row")
    local = path if os.path.isabs(path) else os.path.join(base_dir, path)
    if os.path.isfile(local):
        return audio.load(local)
    if "://" in path:  # a file inside a Hub repository or an archive
        from datasets.utils.file_utils import xopen

        def read():
            with xopen(path, "rb") as f:
                return f.read()

        try:
            data = retry.retrying(read, path)
        except Exception as e:
            raise Rejected("unreadable", f"cannot read {path} ({_one_line(e)})") from None
        return audio.load(data)
    raise Rejected("missing-file", f"{path}: file not found")


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text).strip("_") or "row"


def fetch(cfg: FetchConfig, speakers: SpeakerMap, tally: Tally) -> Iterator[dict]:
    """Write each usable row as ``out_dir/<split>-<row>.wav`` and yield its manifest record.

    A row that cannot be used (undecodable audio, no transcript) is logged as one line, counted in
    ``tally`` and skipped; the rest go on. Stops after ``cfg.limit`` clips. A clip an earlier run
    with the same settings wrote whole is kept, not fetched again (`fetch_resume`); a closing log
    line counts them.
    """
    from voxlora.fetch_resume import FetchedClips

    rows, split = open_rows(cfg)
    out_dir = Path(cfg.out_dir)
    source = {"dataset": cfg.dataset, "config": cfg.config or cfg.language, "split": split}
    settings = {**source, "sample_rate": cfg.sample_rate, "columns": [cfg.text_column, cfg.audio_column]}
    done = FetchedClips(out_dir, settings)
    try:
        yield from _fetch_rows(cfg, rows, split, source, speakers, tally, done)
    finally:
        done.close()
        if done.summary():
            log.info("%s: %s", out_dir, done.summary())


def _fetch_rows(cfg, rows, split, source, speakers, tally, done):
    out_dir = Path(cfg.out_dir)
    for row in rows:
        if cfg.limit is not None and tally.kept >= cfg.limit:
            break
        if isinstance(row, Rejected):
            log.warning("%s", row)
            tally.reject(row)
            continue
        where = f"{cfg.dataset}: row {row.index}"
        path = (out_dir / f"{_slug(split)}-{row.index:06d}.wav").absolute()
        try:
            if row.text is None:
                raise Rejected("no-text", "no transcript")
            written = done.existing(path)
            if written is None:
                x, sr = load_audio_value(row.audio, row.base_dir)
        except Rejected as e:
            e = e.at(where)
            log.warning("%s", e)
            tally.reject(e, {"row": row.index})
            continue
        if written is not None:  # fetched whole by an earlier run
            frames, sr = written
            seconds = round(frames / sr, 3)  # audio.duration of what was written
            done.kept += 1
        else:
            if cfg.sample_rate:
                x, sr = audio.resample(x, sr, cfg.sample_rate), cfg.sample_rate
            audio.write_wav(path, x, sr)
            done.wrote(path)
            seconds = audio.duration(x, sr)
            done.fetched += 1
        record = {"audio": str(path), "text": row.text}
        if row.speaker is not None:
            record |= {"speaker": speakers(row.speaker), "speaker_name": row.speaker}
        record |= {
            "duration": seconds,
            "sample_rate": sr,
            "source": {**source, "row": row.index},
        }
        tally.keep(record["duration"])
        yield record
