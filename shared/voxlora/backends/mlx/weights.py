"""Loading weights into an MLX module, checked: every parameter present with its exact shape, nothing else
(one error listing every problem, as mlx-lm's ``load_adapters`` does). Used by the CSM model and Mimi."""

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from voxlora.errors import VoxloraError


def load_checked(module, weights: dict, what: str) -> None:
    """Put ``{mlx name: array}`` into an MLX ``module`` (as fp32) if every parameter is there with its
    exact shape and nothing else is; otherwise one `VoxloraError`, ``what: …``, listing every problem."""
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
    module.load_weights([(n, mx.array(np.asarray(w, dtype=np.float32))) for n, w in weights.items()])
