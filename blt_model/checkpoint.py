"""Model directories on disk: config.json + model.safetensors. Loading never unpickles.

Every failure to load raises `CheckpointError` whose message names the path and the problem.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import BLTConfig
from .model import BLT

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class CheckpointError(ValueError):
    """A model directory or file could not be loaded (missing, corrupt, or inconsistent)."""


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a saved model should be readable like any file
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` via a temporary file and a rename: readers never see half a file."""
    _atomic_write(Path(path), lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_model(model: BLT, directory: str | os.PathLike, dtype: torch.dtype | None = None,
               metadata: dict[str, str] | None = None) -> Path:
    """Write `config.json` and `model.safetensors` (atomically, weights first, then config)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {}
    for name, t in model.state_dict().items():
        t = t.detach()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        state[name] = t.contiguous().cpu()
    meta = {"format": "blt-chat", **(metadata or {})}
    _atomic_write(directory / WEIGHTS_NAME, lambda tmp: save_file(state, tmp, metadata=meta))
    atomic_write_text(directory / CONFIG_NAME, model.config.to_json() + "\n")
    return directory


def _read_config(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing config.json; a model directory holds config.json and model.safetensors") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: cannot read ({e})") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: config is not valid JSON ({e})") from None


def load_model(path: str | os.PathLike, device: str | torch.device | None = None,
               dtype: torch.dtype | None = None, progress=None) -> BLT:
    """Load a model directory (or its config.json / model.safetensors) -> BLT in eval mode.

    Weights stored in half precision are restored to float32 unless `dtype` says otherwise.
    A transformers directory (config.json with a "model_type", e.g. Meta's BLT weights) is
    converted on the fly by `hf_compat.load_hf_model`, which calls `progress(done, total, name)`
    per tensor when given.
    """
    p = Path(path).expanduser()
    if p.is_file() and p.name in (CONFIG_NAME, WEIGHTS_NAME):
        p = p.parent
    if not p.exists():
        raise CheckpointError(f"{p}: no such file or directory")
    if not p.is_dir():
        raise CheckpointError(f"{p}: not a model directory (expected a directory with {CONFIG_NAME} and {WEIGHTS_NAME})")
    cfg_path, w_path = p / CONFIG_NAME, p / WEIGHTS_NAME
    if not cfg_path.exists() and not w_path.exists():
        raise CheckpointError(f"{p}: not a model directory (no {CONFIG_NAME} or {WEIGHTS_NAME} in it)")
    raw = _read_config(cfg_path)
    if isinstance(raw, dict) and raw.get("model_type") is not None:
        from . import hf_compat  # transformers-format directories (Meta's released weights)

        return hf_compat.load_hf_model(p, raw, device=device, dtype=dtype, progress=progress)
    try:
        config = BLTConfig.from_dict(raw)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{cfg_path}: invalid config ({e})") from None
    if not w_path.exists():
        raise CheckpointError(f"{p}: missing {WEIGHTS_NAME}")
    try:
        state = load_file(str(w_path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{w_path}: corrupt or truncated safetensors file ({e})") from None
    model = BLT(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        what = f"missing tensor {missing[0]!r}" if missing else f"unexpected tensor {unexpected[0]!r}"
        raise CheckpointError(f"{w_path}: weights do not match {cfg_path.name} ({what}; "
                              f"{len(missing)} missing, {len(unexpected)} unexpected)")
    for name, t in state.items():
        if t.shape != expected[name].shape:
            raise CheckpointError(f"{w_path}: tensor {name!r} has shape {tuple(t.shape)}, "
                                  f"config expects {tuple(expected[name].shape)}")
    target = dtype or torch.float32
    state = {k: (v.to(target) if v.is_floating_point() else v) for k, v in state.items()}
    model.load_state_dict(state)
    if dtype is not None:
        model.to(dtype)
    if device is not None:
        model.to(device)
    return model.eval()
