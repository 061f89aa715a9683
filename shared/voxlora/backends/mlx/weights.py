"""Loading weights into an MLX module, checked: every parameter present with its exact shape, nothing else
(one error listing every problem, as mlx-lm's ``load_adapters`` does). Used by the CSM model and Mimi."""

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from voxlora.errors import VoxloraError


def as_mlx(w, dtype=None) -> mx.array:
    """A numpy or MLX array as an MLX array of ``dtype`` (floating arrays only; lazy, no copy made now)."""
    if not isinstance(w, mx.array):
        w = np.asarray(w)
        w = mx.array(w.astype(np.float32) if w.dtype == np.float64 else w)
    if dtype is not None and w.dtype != dtype and mx.issubdtype(w.dtype, mx.floating):
        w = w.astype(dtype)
    return w


def load_checked(module, weights: dict, what: str, dtype=None) -> None:
    """Put ``{mlx name: array}`` into an MLX ``module`` (cast to ``dtype``, else as stored: a lazy
    `mx.load` array is read once, straight into it) if every parameter is there with its exact shape
    and nothing else is; otherwise one `VoxloraError`, ``what: …``, listing every problem."""
    expected = dict(tree_flatten(module.parameters()))
    problems = [f"{n}: missing" for n in expected if n not in weights]
    problems += [f"{n}: not in the model" for n in weights if n not in expected]
    problems += [
        f"{n}: {tuple(weights[n].shape)} vs model {tuple(expected[n].shape)}"
        for n in expected
        if n in weights and tuple(weights[n].shape) != tuple(expected[n].shape)
    ]
    if problems:
        raise VoxloraError(f"{what}: " + "; ".join(sorted(problems)))
    module.load_weights([(n, as_mlx(w, dtype)) for n, w in weights.items()])
