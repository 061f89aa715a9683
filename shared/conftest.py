"""Doctests over the library (``make test`` collects shared/ with --doctest-modules): the MLX
modules import mlx at module level, so they are left out where mlx or mlx-audio is not installed."""

import importlib.util

_mlx = importlib.util.find_spec("mlx") is not None and importlib.util.find_spec("mlx_audio") is not None
collect_ignore_glob = [] if _mlx else ["voxlora/backends/mlx/[!_]*.py", "voxlora/families/*/*mlx*.py"]
