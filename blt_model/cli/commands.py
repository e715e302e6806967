"""`blt`: train, evaluate, generate with and inspect Byte Latent Transformer models.

    blt train --data corpus.txt --out runs/mine --max-minutes 30
    blt eval --model runs/mine/best valid.txt
    blt generate --model runs/mine/best "To be, or not" --show-patches
    blt info --preset small
    blt convert ~/blt-1b runs/blt-1b --dtype bf16   # transformers BLT weights -> this format

This module is the entry point (`main`) and what every command shares: the model to load, the
device, the console. Each command lives in its own module (train, evaluate, generate, convert,
info) as a table of arguments and a `run` function; parser.py builds `blt`'s parser from them.

Errors are reported as one line on stderr and a non-zero exit status (errors.EXIT_STATUS); the
traceback only with --debug. Everything printed that came from a file or a model goes through
`guards.terminal_safe`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..guards import read_regular_file, terminal_safe
from .errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    describe,
    report_error,
    stdout_gone,
)

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "RANDOM_MODEL", "build_parser",
           "console", "default_model_path", "load_configs", "load_model_arg", "load_path", "main",
           "naming_model", "pick_device", "torch_dtype", "visible"]

MAX_JSON_BYTES = 4 << 20  # --config files are a few KB
RANDOM_MODEL = "RANDOM-WEIGHT tiny model (untrained)"  # the label of the stand-in for a missing model


def default_model_path() -> Path | None:
    """The model shipped with the package (assets/models/), or None if absent."""
    from ..io.shipped import shipped_model_path

    return shipped_model_path()


def visible(text: str) -> str:
    """Generated text for a terminal: control characters escaped, newlines kept."""
    return terminal_safe(text, keep_newlines=True)


_visible = visible  # the name tests/blt_model/test_cli.py knows


def console(stderr: bool = False):
    """A rich console for stdout (results) or stderr (warnings, progress)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def pick_device(name: str | None):
    """--device -> torch.device; None or "auto": CUDA when there is one."""
    import torch

    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device: unknown device {name!r} (use cpu, cuda, cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    return dev


def torch_dtype(name: str | None):
    """--dtype (fp32, bf16, fp16) -> torch dtype, None for the checkpoint's own."""
    import torch

    from .arguments import DTYPES

    return None if name is None else getattr(torch, DTYPES[name])


# --- configs -------------------------------------------------------------------------------------

def _read_json(path: str) -> Any:
    p = Path(path)
    try:
        return json.loads(read_regular_file(p, MAX_JSON_BYTES).decode("utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON ({e})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{p}: not a UTF-8 text file") from None
    except RecursionError:
        raise ValueError(f"{p}: JSON nested too deeply") from None


def _model_config(path: str | None, base: dict[str, Any], raw: Any):
    from ..config import BLTConfig

    if not isinstance(raw, dict):
        raise ValueError(f"{path}: the model config must be a JSON object, got {type(raw).__name__}")
    try:
        return BLTConfig.from_dict({**base, **raw})
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from None


def load_configs(path: str | None, preset: str | None):
    """--config FILE (a BLTConfig object, or {"model": {...}, "training": {...}}) and/or --preset
    -> (BLTConfig or None, training overrides as a dict)."""
    from ..config import BLTConfig

    model_cfg = BLTConfig.preset(preset) if preset else None
    training: dict[str, Any] = {}
    if path:
        raw = _read_json(path)
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a JSON object")
        if "model" in raw or "training" in raw:
            extra = sorted(set(raw) - {"model", "training"})
            if extra:
                raise ValueError(f"{path}: unknown section {extra[0]!r} (sections: model, training)")
            if "model" in raw:
                model_cfg = _model_config(path, model_cfg.to_dict() if model_cfg else {}, raw["model"])
            training = raw.get("training") or {}
            if not isinstance(training, dict):
                raise ValueError(f"{path}: the training section must be a JSON object")
            training = dict(training)
        else:
            model_cfg = _model_config(path, model_cfg.to_dict() if model_cfg else {}, raw)
    return model_cfg, training


# --- models --------------------------------------------------------------------------------------

def load_path(path: Path, device, dtype=None):
    """load_model, with a progress bar on stderr while a transformers directory is converted."""
    import sys

    from ..io.checkpoint import load_model
    from ..io.hf_compat import is_hf_model_dir

    if not is_hf_model_dir(path):
        return load_model(path, device=device, dtype=dtype)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("loading {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console(stderr=True), transient=True,
                  disable=not sys.stderr.isatty()) as bar:  # a log file gets no bar (nor its blank line)
        task = bar.add_task(Path(path).name or str(path), total=None)

        def progress(done: int, total: int, name: str) -> None:
            bar.update(task, completed=done, total=total)

        return load_model(path, device=device, dtype=dtype, progress=progress)


def load_model_arg(model_dir: str | None, device, *, allow_random: bool, seed: int | None = None, dtype=None):
    """--model -> (model, label). Without --model: the shipped model, else (if allowed) random
    weights labelled RANDOM_MODEL."""
    import torch

    from ..config import BLTConfig
    from ..nn.model import BLT

    path = Path(model_dir) if model_dir else default_model_path()
    if path is not None:
        return load_path(path, device, dtype), str(path)
    if not allow_random:
        raise ValueError("no model given and no shipped model installed; pass --model DIR")
    torch.manual_seed(0 if seed is None else seed)
    # an untrained entropy model puts a patch at every byte; word patches show the idea better
    model = BLT(BLTConfig.preset("tiny").with_patching(scheme="space")).to(device, dtype).eval()
    return model, RANDOM_MODEL


@contextlib.contextmanager
def naming_model(label: str) -> Iterator[None]:
    """Non-finite logits: the error names the model they came from."""
    from ..inference.sampling import NonFiniteLogitsError

    try:
        yield
    except NonFiniteLogitsError as e:
        raise NonFiniteLogitsError(f"{label}: {e}") from None


# --- main ----------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    """The parser of `blt` (parser.py; imported here when called, as the commands import this module)."""
    from .parser import build_parser as build

    return build()


def main(argv: Sequence[str] | None = None) -> int:
    """Run `blt` -> exit status (EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_INTERRUPTED)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        stdout_gone()
        return EXIT_OK
    except KeyboardInterrupt as e:
        from ..train import TrainingInterrupted

        msg = "interrupted"
        if isinstance(e, TrainingInterrupted) and e.run_dir is not None:
            msg += (f"; last/ and the resume state are saved in {e.run_dir} "
                    f"(continue with: blt {args.command} --resume --out {args.out} ...)")
        report_error(args.command, msg)
        return EXIT_INTERRUPTED
    except Exception as e:
        if args.debug:
            traceback.print_exc()
        msg, status = describe(e)
        report_error(args.command, msg)
        return status
