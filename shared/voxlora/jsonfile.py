"""Read a small JSON file that must hold one object (configs, sidecars, speaker maps).

One place for the three one-line errors a user can cause: the file is missing, it is not JSON, or
it is JSON but not an object. Callers add their own checks (and their own wording) on top.
"""

import json
from pathlib import Path

from voxlora.errors import VoxloraError


def read_json_object(path) -> dict:
    """The JSON object in ``path``; else VoxloraError ``<path>: missing`` / ``not valid JSON (…)`` /
    ``expected a JSON object``.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VoxloraError(f"{path}: missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VoxloraError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise VoxloraError(f"{path}: expected a JSON object")
    return data
