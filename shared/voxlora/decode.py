"""Compressed audio that libsndfile cannot read (M4A/AAC, some MP3 and Opus), decoded by PyAV.

PyAV (``pip install av``) ships its own FFmpeg libraries inside the wheel, so no system ``ffmpeg`` is
needed. `audio.load` tries soundfile first (WAV, FLAC, OGG/Vorbis, Opus and MP3 on libsndfile >= 1.1)
and comes here only for what it could not open; `encode` writes MP3, M4A/AAC or Opus with the same
library (the tests make their compressed copies this way).

    decode("talk.m4a")  # -> (samples (n,) float32 mono, 44100)
"""

import os

import numpy as np

from voxlora.rejects import Rejected

# container, codec and sample format for each compressed extension `encode` writes
ENCODERS = {
    ".mp3": ("mp3", "libmp3lame", "fltp"),
    ".m4a": ("mp4", "aac", "fltp"),
    ".aac": ("adts", "aac", "fltp"),
    ".ogg": ("ogg", "libopus", "flt"),
    ".opus": ("ogg", "libopus", "flt"),
}


def available() -> bool:
    """True when PyAV is installed."""
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def decode(source) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of ``source`` (a path or file object) -> (mono float32, Hz).

    Raises `Rejected`: ``unreadable`` (not a container PyAV knows, no audio stream) or ``corrupt``
    (decoding failed part-way), without the path (the caller adds it).
    """
    import av

    try:
        container = av.open(os.fspath(source) if isinstance(source, str | os.PathLike) else source)
    except (av.FFmpegError, OSError, ValueError) as e:
        raise Rejected("unreadable", f"unreadable audio ({_reason(e)})") from None
    with container:
        streams = container.streams.audio
        if not streams:
            raise Rejected("unreadable", "unreadable audio (no audio stream)")
        stream = streams[0]
        rate = stream.codec_context.sample_rate or stream.rate
        # planar float32, the stream's own channels: mixed to mono below as `audio.to_mono` does
        resampler = av.AudioResampler(format="fltp", rate=rate)
        chunks = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())  # (channels, n)
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
        except (av.FFmpegError, ValueError) as e:
            raise Rejected("corrupt", f"corrupt audio, decoding failed ({_reason(e)})") from None
    if not chunks:
        raise Rejected("empty", "empty (no samples)")
    x = np.concatenate(chunks, axis=1)  # (channels, n)
    return x.mean(axis=0, dtype=np.float32), int(rate)


def encode(path, x: np.ndarray, sr: int, bitrate: int = 96_000) -> None:
    """Write mono ``x`` (float32 in [-1, 1]) as MP3, M4A/AAC or Opus, chosen by ``path``'s extension.

    Opus runs at 48 kHz only, so ``x`` is resampled for it. Not atomic: for test fixtures and tools
    that write into a fresh folder.
    """
    import av

    suffix = os.path.splitext(str(path))[1].lower()
    if suffix not in ENCODERS:
        raise ValueError(
            f"{path}: cannot encode {suffix or 'files without an extension'} (use {', '.join(ENCODERS)})"
        )
    fmt, codec, sample_format = ENCODERS[suffix]
    if codec == "libopus" and sr != 48000:
        import audresample  # as `audio.resample` does (audio imports this module: no import back)

        x, sr = audresample.resample(np.ascontiguousarray(x, dtype=np.float32), sr, 48000)[0], 48000
    pcm = np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0)[None, :]  # (1, n)
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=sr, layout="mono")
        stream.bit_rate = bitrate
        frame = av.AudioFrame.from_ndarray(pcm, format="flt", layout="mono")
        frame.sample_rate = sr
        resampler = av.AudioResampler(format=sample_format, layout="mono", rate=sr)
        size = stream.codec_context.frame_size or 1024
        fifo = av.AudioFifo()
        for resampled in resampler.resample(frame):
            fifo.write(resampled)
        for chunk in iter(lambda: fifo.read(size), None):
            out.mux(stream.encode(chunk))
        rest = fifo.read()
        if rest is not None:
            out.mux(stream.encode(rest))
        out.mux(stream.encode(None))


def _reason(e: Exception) -> str:
    text = " ".join(str(getattr(e, "strerror", None) or e).split())
    return text.rstrip(".") or type(e).__name__
