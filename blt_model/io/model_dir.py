"""Is this a model directory? The one check the library and the app share, for both formats
`load_model` reads: this project's (config.json + model.safetensors) and transformers'
(config.json with a "model_type" + model.safetensors or the shards of
model.safetensors.index.json). Only config.json is read; the weights are checked for presence.
"""

from __future__ import annotations

import os
from pathlib import Path

from .checkpoint import CONFIG_NAME, WEIGHTS_NAME, CheckpointError, read_config

__all__ = ["INDEX_NAME", "is_model_dir", "model_dir_problem"]

INDEX_NAME = "model.safetensors.index.json"  # transformers' list of weight shards


def model_dir_problem(path: str | os.PathLike) -> str | None:
    """Why `path` is not a model directory `load_model` can read, as a phrase to follow the path
    ("not a directory (...)"), or None when it is one."""
    p = Path(path).expanduser()
    try:
        if not p.exists():
            return "no such file or directory"
        if not p.is_dir():
            return f"not a model directory (expected a directory with {CONFIG_NAME} and {WEIGHTS_NAME})"
        if not (p / CONFIG_NAME).exists():
            return f"not a model directory (no {CONFIG_NAME} in it)"
        raw = read_config(p / CONFIG_NAME)
        if not isinstance(raw, dict):
            return f"{CONFIG_NAME} does not hold a JSON object"
        weights = (WEIGHTS_NAME, INDEX_NAME) if raw.get("model_type") is not None else (WEIGHTS_NAME,)
        if not any((p / w).is_file() for w in weights):
            return f"missing {' (or '.join(weights)}{')' * (len(weights) - 1)}"
    except CheckpointError as e:  # read_config names the file; the caller names the directory
        return str(e).removeprefix(f"{p / CONFIG_NAME}: ")
    except OSError as e:
        return e.strerror or str(e)
    return None


def is_model_dir(path: str | os.PathLike) -> bool:
    """True when `model_dir_problem` finds nothing wrong with `path`."""
    return model_dir_problem(path) is None
