"""The sha256 of a file's bytes: how the codes cache and mkmanifest's journal recognise a source.

Torch-free, so mkmanifest can hash without importing it.
"""

import hashlib


def file_sha256(path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
