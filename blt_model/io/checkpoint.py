"""Model directories on disk: config.json + model.safetensors. Loading never unpickles.

Every failure to load raises `CheckpointError` whose message names the path and the problem.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..config import BLTConfig
from ..guards import check_memory, read_regular_file, require_regular_file, terminal_safe
from ..nn.model import BLT
from .files import atomic_write, atomic_write_text, fault_point

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
MAX_CONFIG_BYTES = 4 << 20  # a real config.json is a few KB; a link to /dev/zero is endless


class CheckpointError(ValueError):
    """A model directory or file could not be loaded (missing, corrupt, or inconsistent)."""


# the names `files.atomic_write` gives its temporary files: .NAME.<random>.tmp
_TEMP_OF = ("model.safetensors", "config.json", "state.pt", "run.json", "done.json")


def remove_temp_files(directory: str | os.PathLike) -> tuple[int, int]:
    """Delete the temporary files that killed saves left in `directory` and below (only names
    of the form `.model.safetensors.XXXX.tmp` etc.) -> (files, bytes) removed."""
    count = size = 0
    root = Path(directory)
    if not root.is_dir():
        return 0, 0
    for dirpath, dirnames, names in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for n in names:
            if n.endswith(".tmp") and any(n.startswith(f".{base}.") for base in _TEMP_OF):
                f = Path(dirpath) / n
                try:
                    st = f.lstat()
                    f.unlink()
                except OSError:
                    continue
                count, size = count + 1, size + st.st_size
    return count, size


# what marks a directory as holding a model or a training run
RUN_MARKERS = (CONFIG_NAME, WEIGHTS_NAME, "best", "last", "run.json", "state.pt", "metrics.jsonl", "entropy")


def holds_model_or_run(directory: str | os.PathLike) -> str | None:
    """The first entry of `directory` that marks a model or a run (config.json, best/, ...), else None."""
    d = Path(directory)
    return next((m for m in RUN_MARKERS if os.path.lexists(d / m)), None)


def move_aside(directory: str | os.PathLike) -> Path:
    """Rename `directory` to `NAME.old-YYYYmmdd-HHMMSS[-N]` next to it (never deletes) -> new path."""
    d = Path(directory)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = d.with_name(f"{d.name}.old-{stamp}")
    n = 1
    while os.path.lexists(target):
        target = d.with_name(f"{d.name}.old-{stamp}-{n}")
        n += 1
    os.rename(d, target)
    return target


def prepare_output_dir(directory: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
                       what: str = "a model or a training run", move: bool = True) -> Path | None:
    """Refuse to write into a directory that already holds a model or a run, unless `resume`
    (continue it) or `overwrite` (move it aside first, see `move_aside`). Returns where the old
    directory went, or None. `move=False` only checks (e.g. on the non-writing ranks)."""
    d = Path(directory)
    if os.path.lexists(d) and not d.is_dir():
        raise ValueError(f"{terminal_safe(d)}: exists and is not a directory")
    marker = holds_model_or_run(d) if d.is_dir() else None
    if marker is None or resume:
        return None
    if not overwrite:
        raise ValueError(f"{terminal_safe(d)}: already holds {what} ({marker}); pass --resume to continue it "
                         "or --overwrite to move it aside")
    return move_aside(d) if move else None


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
    atomic_write(directory / WEIGHTS_NAME, lambda tmp: save_file(state, tmp, metadata=meta))
    fault_point("between_weights_and_config")
    atomic_write_text(directory / CONFIG_NAME, model.config.to_json() + "\n")
    return directory


def read_config(path: Path) -> Any:
    """config.json as JSON: only a regular file under MAX_CONFIG_BYTES is read."""
    if not os.path.lexists(path):
        raise CheckpointError(f"{terminal_safe(path)}: missing config.json; a model directory holds "
                              "config.json and model.safetensors")
    data = read_regular_file(path, MAX_CONFIG_BYTES, CheckpointError)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise CheckpointError(f"{terminal_safe(path)}: not a UTF-8 text file") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{terminal_safe(path)}: config is not valid JSON ({e})") from None
    except RecursionError:
        raise CheckpointError(f"{terminal_safe(path)}: config is nested too deeply") from None


_MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit
_ST_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}


def read_safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors header, read with plain file reads: nothing is
    mapped or allocated for the data, so a header is checked before anything costs memory."""
    size = require_regular_file(path, CheckpointError).st_size
    bad = f"{terminal_safe(path)}: corrupt or truncated safetensors file"
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{bad} (shorter than its 8-byte header length)")
        n = int.from_bytes(head, "little")
        if n > _MAX_HEADER_BYTES or 8 + n > size:
            raise CheckpointError(f"{bad} (header length {n:,} with a file of {size:,} bytes)")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise TypeError("the header is not a JSON object")
        shapes: dict[str, tuple[int, ...]] = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            shape, (start, end) = tuple(info["shape"]), info["data_offsets"]
            if not all(isinstance(d, int) and d >= 0 for d in shape) or info["dtype"] not in _ST_ITEMSIZE:
                raise TypeError(f"tensor {name!r}: bad shape or dtype")
            if end - start != math.prod(shape) * _ST_ITEMSIZE[info["dtype"]] or not 0 <= start <= end <= size - 8 - n:
                raise TypeError(f"tensor {name!r}: data offsets do not fit its shape or the file")
            shapes[name] = shape
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError, KeyError, ValueError, RecursionError) as e:
        raise CheckpointError(f"{bad} ({e})") from None
    return shapes


def open_safetensors(path: Path) -> Any:
    """A safetensors handle (header read, data memory-mapped) for a regular file."""
    require_regular_file(path, CheckpointError)
    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{terminal_safe(path)}: corrupt or truncated safetensors file ({e})") from None


def check_layer_count(config: BLTConfig, tensors: int, where: Path) -> None:
    """Every layer of the config has tensors, so a config with more layers than the files have
    tensors cannot match them; checked before building even an empty (meta) model, whose size
    in Python objects grows with the layer counts."""
    layers = (config.encoder_layers + 2 * config.decoder_layers + config.global_layers
              + config.entropy_model_layers)
    if layers > tensors:
        raise CheckpointError(f"{terminal_safe(where)}: the config implies {layers:,} layers but the weights "
                              f"hold only {tensors:,} tensors")


def meta_model(config: BLTConfig, where: Path | None = None) -> BLT:
    """The model's structure with no memory behind it (tensors on the meta device)."""
    try:
        with torch.device("meta"):
            return BLT(config)
    except (RuntimeError, OverflowError, ValueError) as e:  # sizes past int64 bytes
        raise CheckpointError(f"{terminal_safe(where or 'config')}: the config implies tensors too large to "
                              f"exist ({e})") from None


def check_weights_memory(shapes: dict[str, torch.Size], dtype: torch.dtype, where: Path) -> None:
    """Refuse weights that would not fit in the memory left, before allocating them."""
    count = _param_count(shapes)
    check_memory(count * torch.empty((), dtype=dtype).element_size(), f"{where} ({count:,} parameters)",
                 CheckpointError)


def _param_count(shapes: dict[str, Any]) -> int:
    return sum(math.prod(s) for s in shapes.values())


def _model_directory(path: str | os.PathLike) -> Path:
    """The model directory `path` names (itself, or the directory of its config.json or
    model.safetensors), checked to exist and hold at least one of the two."""
    p = Path(path).expanduser()
    if p.is_file() and p.name in (CONFIG_NAME, WEIGHTS_NAME):
        p = p.parent
    if not p.exists():
        raise CheckpointError(f"{terminal_safe(p)}: no such file or directory")
    if not p.is_dir():
        raise CheckpointError(f"{terminal_safe(p)}: not a model directory (expected a directory with "
                              f"{CONFIG_NAME} and {WEIGHTS_NAME})")
    if not os.path.lexists(p / CONFIG_NAME) and not os.path.lexists(p / WEIGHTS_NAME):
        raise CheckpointError(f"{terminal_safe(p)}: not a model directory (no {CONFIG_NAME} or {WEIGHTS_NAME} in it)")
    return p


def _check_weights_match(stored: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]],
                         w_path: Path) -> None:
    """The safetensors header holds exactly the tensors the config implies, with their shapes."""
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    if missing or unexpected:
        what = f"missing tensor {missing[0]!r}" if missing else f"unexpected tensor {unexpected[0]!r}"
        raise CheckpointError(f"{terminal_safe(w_path)}: weights do not match {CONFIG_NAME} ({what}; "
                              f"{len(missing)} missing, {len(unexpected)} unexpected; the config implies "
                              f"{_param_count(expected):,} parameters, the file holds {_param_count(stored):,})")
    for name, shape in stored.items():
        if shape != expected[name]:
            raise CheckpointError(f"{terminal_safe(w_path)}: tensor {name!r} has shape {shape}, "
                                  f"config expects {expected[name]}")


def _read_weights(w_path: Path, names: list[str], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The named tensors, floating-point ones in `dtype`."""
    handle = open_safetensors(w_path)  # maps the data
    state = {}
    for name in names:
        try:
            t = handle.get_tensor(name)
        except Exception as e:
            raise CheckpointError(f"{terminal_safe(w_path)}: cannot read tensor {name!r} ({e})") from None
        state[name] = t.to(dtype) if t.is_floating_point() else t
    return state


def load_model(path: str | os.PathLike, device: str | torch.device | None = None,
               dtype: torch.dtype | None = None, progress=None) -> BLT:
    """Load a model directory (or its config.json / model.safetensors) -> BLT in eval mode.

    Weights stored in half precision are restored to float32 unless `dtype` says otherwise.
    A transformers directory (config.json with a "model_type", e.g. Meta's BLT weights) is
    converted on the fly by `hf_compat.load_hf_model`, which calls `progress(done, total, name)`
    per tensor when given. A config.json of an older format is read as `BLTConfig.from_dict`
    migrates it.

    Nothing is allocated before the config has been checked against the safetensors header
    (every tensor the config implies, with its shape; nothing else) and the weights are known
    to fit in the memory available.
    """
    p = _model_directory(path)
    cfg_path, w_path = p / CONFIG_NAME, p / WEIGHTS_NAME
    raw = read_config(cfg_path)
    if isinstance(raw, dict) and raw.get("model_type") is not None:
        from . import hf_compat  # transformers-format directories (Meta's released weights)

        return hf_compat.load_hf_model(p, raw, device=device, dtype=dtype, progress=progress)
    try:
        config = BLTConfig.from_dict(raw)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{terminal_safe(cfg_path)}: invalid config ({e})") from None
    if not os.path.lexists(w_path):
        raise CheckpointError(f"{terminal_safe(p)}: missing {WEIGHTS_NAME}")
    stored = read_safetensors_shapes(w_path)
    check_layer_count(config, len(stored), w_path)
    model = meta_model(config, w_path)
    expected = {n: tuple(t.shape) for n, t in model.state_dict().items()}
    _check_weights_match(stored, expected, w_path)
    target = dtype or torch.float32
    check_weights_memory(expected, target, p)
    model.load_state_dict(_read_weights(w_path, list(expected), target), assign=True)  # only now that it fits
    if dtype is not None:
        model.to(dtype)
    if device is not None:
        model.to(device)
    return model.eval()
