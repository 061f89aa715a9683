"""Bucket sizes: the few lengths ``--compile`` pads a batch's dimensions to, so that a compiled
model (``torch.compile(dynamic=False)``) is compiled once per bucket, not once per batch.

Powers of two from a minimum: at most half a bucket is padding (``pad_fraction`` in the metrics
counts it), and lengths from 64 to 2048 positions meet six shapes.
"""


def bucket(n: int, minimum: int = 64) -> int:
    """The smallest power of two >= ``n``, at least ``minimum``.

    >>> [bucket(n) for n in (1, 64, 65, 300, 2048)]
    [64, 64, 128, 512, 2048]
    >>> bucket(5, minimum=16)
    16
    """
    size = max(1, minimum)
    while size < n:
        size *= 2
    return size
