"""hf-fetch's engine on local datasets in the Hub's layouts, audio folders, bad rows, and no network."""

import numpy as np
import pytest
import soundfile as sf
from voxlora import hf
from voxlora.errors import VoxloraError
from voxlora.hf import FetchConfig, fetch, load_audio_value
from voxlora.rejects import Rejected, Tally
from voxlora.speakers import SpeakerMap

from tests.datagen import HF_LAYOUTS, audio_bytes, make_corpus_folder, make_hf_dataset

RATES = {"common_voice": 48000, "librispeech": 16000, "voxpopuli": 16000, "ljspeech": 22050}


def _fetch(dataset, out_dir, **kw):
    tally = Tally()
    records = list(fetch(FetchConfig(str(dataset), str(out_dir), **kw), SpeakerMap(), tally))
    return records, tally


@pytest.fixture(scope="module")
def datasets_dir(tmp_path_factory):
    """One local dataset per Hub layout (made once: building them is the slow part)."""
    root = tmp_path_factory.mktemp("hf")
    expected = {layout: make_hf_dataset(root / layout, layout, n=4) for layout in HF_LAYOUTS}
    return root, expected


@pytest.mark.parametrize("layout", HF_LAYOUTS)
def test_each_hub_layout_gives_text_speaker_and_wavs(datasets_dir, tmp_path, layout):
    root, expected = datasets_dir
    records, tally = _fetch(root / layout, tmp_path / "clips")
    assert [r["text"] for r in records] == [e["text"] for e in expected[layout]]
    assert [r.get("speaker_name") for r in records] == [e["speaker_name"] for e in expected[layout]]
    if expected[layout][0]["speaker_name"] is not None:
        assert [r["speaker"] for r in records] == [0, 1, 0, 1]
    split = "train.clean.100" if layout == "librispeech" else "train"  # no "train": the first split
    for i, r in enumerate(records):
        info = sf.info(r["audio"])
        assert (info.samplerate, info.channels, info.subtype) == (RATES[layout], 1, "PCM_16")
        assert r["audio"] == str(tmp_path / "clips" / f"{split}-{i:06d}.wav")
        assert r["sample_rate"] == RATES[layout] and abs(r["duration"] - 0.8) < 0.1
        assert r["source"] == {"dataset": str(root / layout), "config": None, "split": split, "row": i}
    assert (tally.kept, tally.rejected) == (4, 0)


def test_limit_split_and_resampling(datasets_dir, tmp_path):
    root, _ = datasets_dir
    records, _ = _fetch(root / "librispeech", tmp_path, limit=2, sample_rate=24000)
    assert len(records) == 2 and all(sf.info(r["audio"]).samplerate == 24000 for r in records)
    records, _ = _fetch(root / "librispeech", tmp_path, split="validation.clean")
    assert [r["source"]["split"] for r in records] == ["validation.clean"]
    with pytest.raises(
        VoxloraError, match=r"no split 'test'; the splits are: train.clean.100, validation.clean$"
    ):
        _fetch(root / "librispeech", tmp_path, split="test")


def test_named_columns(datasets_dir, tmp_path):
    root, _ = datasets_dir
    records, _ = _fetch(root / "voxpopuli", tmp_path, text_column="normalized_text", speaker_column="gender")
    assert records[0]["text"].islower() and {r["speaker_name"] for r in records} == {"female"}
    with pytest.raises(
        VoxloraError, match=r"no column 'words' \(--text-column\); the columns are: audio_id, "
    ):
        _fetch(root / "voxpopuli", tmp_path, text_column="words")


def test_parquet_clone_and_single_file(tmp_path):
    expected = make_hf_dataset(tmp_path / "repo", "common_voice", n=3, fmt="parquet")
    records, _ = _fetch(tmp_path / "repo", tmp_path / "a")
    assert [r["text"] for r in records] == [e["text"] for e in expected]
    records, _ = _fetch(tmp_path / "repo" / "data" / "train-00000-of-00001.parquet", tmp_path / "b", limit=1)
    assert len(records) == 1 and sf.info(records[0]["audio"]).samplerate == 48000


@pytest.mark.parametrize("layout", ["audiofolder", "ljspeech", "libritts"])
def test_audio_folders_are_read_without_torchcodec(tmp_path, layout):
    expected = make_corpus_folder(tmp_path / "corpus", layout, n=3)
    records, _ = _fetch(tmp_path / "corpus", tmp_path / "clips")
    assert [r["text"] for r in records] == [e["text"] for e in expected]
    assert [r.get("speaker_name") for r in records] == [e["speaker_name"] for e in expected]


def test_an_undecodable_row_is_skipped_and_the_rest_go_on(tmp_path):
    import datasets

    good = audio_bytes(0.3, 16000, 1)
    table = {
        "audio": [
            {"bytes": good, "path": "a.wav"},
            {"bytes": b"RIFF garbage", "path": "b.wav"},
            {"bytes": good, "path": "c.wav"},
        ],
        "text": ["one", "two", ""],
    }
    datasets.Dataset.from_dict(table).cast_column("audio", datasets.Audio()).save_to_disk(
        str(tmp_path / "ds")
    )
    records, tally = _fetch(tmp_path / "ds", tmp_path / "clips")
    assert [r["text"] for r in records] == ["one"]
    assert tally.by_kind == {"unreadable": 1, "no-text": 1}
    assert [r["reason"] for r in tally.rejects] == [
        f"{tmp_path / 'ds'}: row 1: unreadable audio (Format not recognised)",
        f"{tmp_path / 'ds'}: row 2: no transcript",
    ]


def test_load_audio_value_accepts_the_shapes_datasets_hand_out(tmp_path):
    data = audio_bytes(0.25, 16000)
    (tmp_path / "a.wav").write_bytes(data)
    for value in ({"bytes": data, "path": None}, str(tmp_path / "a.wav"), {"path": "a.wav", "bytes": None}):
        x, sr = load_audio_value(value, str(tmp_path))
        assert (len(x), sr) == (4000, 16000)
    x, sr = load_audio_value({"array": np.ones((2, 10)) * 0.5, "sampling_rate": 8000})
    assert x.shape == (10,) and sr == 8000
    with pytest.raises(Rejected, match="no audio in this row"):
        load_audio_value(None)
    with pytest.raises(Rejected, match="gone.wav: file not found"):
        load_audio_value({"path": "gone.wav", "bytes": None}, str(tmp_path))


def test_a_missing_local_path_is_not_sent_to_the_hub(tmp_path):
    with pytest.raises(VoxloraError, match=r"nope: no such file or folder$"):
        _fetch(tmp_path / "nope", tmp_path)


def test_offline_hub_fails_at_once_with_one_line(tmp_path, monkeypatch, network_calls):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(VoxloraError) as e:
        _fetch("openslr/librispeech_asr", tmp_path, config="clean")
    assert network_calls == []  # not even a probe, and no load_dataset to retry
    assert str(e.value) == (
        "openslr/librispeech_asr: not a local file or folder, and the Hugging Face Hub is unreachable "
        "(HF_HUB_OFFLINE is set); give the path of a local dataset instead"
    )


def test_unreachable_hub_is_detected_with_one_probe(tmp_path, monkeypatch, network_calls):
    for name in ("HF_HUB_OFFLINE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: refused at once
    assert hf.hub_unreachable(timeout=2) == "cannot connect to 127.0.0.1: Connection refused"
    with pytest.raises(VoxloraError, match=r"^someone/voices: .*unreachable \(cannot connect to 127.0.0.1"):
        _fetch("someone/voices", tmp_path)
    # one TCP handshake per check, and load_dataset (whose client retries for ~25 s) never called
    assert network_calls == [("connect", ("127.0.0.1", 9))] * 2


def test_hub_ids_are_streamed_with_the_language_as_config(tmp_path, monkeypatch):
    """The Hub path without a network: load_dataset is swapped for a local parquet stream."""
    import datasets

    expected = make_hf_dataset(tmp_path / "repo", "voxpopuli", n=5, fmt="parquet")
    real, calls = datasets.load_dataset, []

    def load_dataset(path, **kwargs):
        calls.append((path, kwargs))
        return real(str(tmp_path / "repo"), split=kwargs["split"], streaming=True)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr(hf, "hub_unreachable", lambda timeout=hf.HUB_TIMEOUT: None)
    records, _ = _fetch("facebook/voxpopuli", tmp_path / "clips", language="en", limit=2)
    assert calls == [("facebook/voxpopuli", {"name": "en", "split": None, "streaming": True})]
    assert [r["text"] for r in records] == [e["text"] for e in expected[:2]]
    assert records[1]["source"] == {
        "dataset": "facebook/voxpopuli",
        "config": "en",
        "split": "train",
        "row": 1,
    }
