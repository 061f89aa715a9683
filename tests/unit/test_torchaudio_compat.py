"""voxlora.torchaudio_compat: torchaudio's resampler without torchaudio, and transformers seeing it.

Installing the stand-in changes ``sys.modules`` for the whole process, so those checks run in a
subprocess; the resampling arithmetic is tested here directly.
"""

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from voxlora import torchaudio_compat as compat


def test_resample_length_follows_torchaudio_rule():
    x = torch.zeros(2, 1, 2401)
    assert compat.resample(x, 24000, 16000).shape == (2, 1, math.ceil(2401 * 2 / 3))
    assert compat.resample(x, 16000, 24000).shape == (2, 1, math.ceil(2401 * 3 / 2))
    assert compat.resample(x, 24000, 24000) is x


def test_resample_keeps_a_band_limited_tone_like_an_independent_resampler():
    import audresample

    t = np.arange(24000) / 24000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    ours = compat.resample(torch.from_numpy(tone)[None], 24000, 16000)[0].numpy()
    ref = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000) * 0.5
    mid = slice(200, -200)  # the edges are zero-padded in both
    assert np.abs(ours[mid] - ref[mid]).max() < 2e-3
    theirs = audresample.resample(tone, 24000, 16000)[0]
    assert np.abs(ours[mid] - theirs[mid]).max() < 5e-3


def test_resample_module_equals_function_and_rejects_integers():
    x = torch.randn(3, 1000)
    resampler = compat._resample_module_class()(
        24000, 16000
    )  # kernel in float64, then float32, as torchaudio
    assert torch.allclose(resampler(x), compat.resample(x, 24000, 16000), atol=1e-6)
    with pytest.raises(TypeError, match="floating point"):
        compat.resample(torch.ones(10, dtype=torch.long), 24000, 16000)


def _run(code: str, tmp_path, pythonpath: str = "") -> str:
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": pythonpath}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_transformers_imported_first_still_gets_the_real_tokenizer_class(tmp_path):
    out = _run(
        """
        import transformers
        from transformers import HiggsAudioV2TokenizerModel as before
        from voxlora.torchaudio_compat import ensure_torchaudio
        print(ensure_torchaudio())
        from transformers import HiggsAudioV2TokenizerModel as after
        from transformers.models.higgs_audio_v2_tokenizer import modeling_higgs_audio_v2_tokenizer as m
        print(getattr(before, "is_dummy", False), after is m.HiggsAudioV2TokenizerModel)
        import torchaudio, torch
        print(torchaudio.functional.resample(torch.zeros(1, 1, 300), 24000, 16000).shape[-1])
        """,
        tmp_path,
    )
    assert out.split("\n")[:3] == ["voxlora stand-in", "True True", "200"]


def test_a_torchaudio_that_fails_to_load_is_replaced(tmp_path):
    broken = tmp_path / "site" / "torchaudio"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text(
        "raise OSError('Could not load this library: _torchaudio.so')\n", encoding="utf-8"
    )
    out = _run(
        """
        from voxlora.torchaudio_compat import ensure_torchaudio
        print(ensure_torchaudio())
        import torchaudio
        print(torchaudio.__version__)
        """,
        tmp_path,
        pythonpath=str(tmp_path / "site"),
    )
    assert out.split("\n")[:2] == ["voxlora stand-in", compat.STANDIN_VERSION]


def test_a_working_torchaudio_is_used_unchanged(tmp_path):
    real = tmp_path / "site" / "torchaudio"
    (real / "functional").mkdir(parents=True)
    (real / "__init__.py").write_text(
        "__version__ = '9.9'\nfrom torchaudio import functional\n", encoding="utf-8"
    )
    (real / "functional" / "__init__.py").write_text("def resample(*a, **k):\n    return 'real'\n")
    out = _run(
        "from voxlora.torchaudio_compat import ensure_torchaudio\nprint(ensure_torchaudio())\n",
        tmp_path,
        pythonpath=str(tmp_path / "site"),
    )
    assert out.strip() == "torchaudio 9.9"
