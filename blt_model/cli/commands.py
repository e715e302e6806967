"""`blt`: train, evaluate, generate with and inspect Byte Latent Transformer models.

    blt train --data corpus.txt --out runs/mine --max-minutes 30
    blt eval --model runs/mine/best valid.txt
    blt generate --model runs/mine/best "To be, or not" --show-patches
    blt info --preset small
    blt convert ~/blt-1b runs/blt-1b --dtype bf16   # transformers BLT weights -> this format

Errors are reported as one line on stderr and a non-zero exit status (see EXIT_STATUS); the
traceback only with --debug. Everything printed that came from a file or a model goes through
`guards.terminal_safe`.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import itertools
import json
import math
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..guards import markup_safe, read_regular_file, terminal_safe

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "build_parser",
           "default_model_path", "main"]

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_STATUS = ("exit status: 0 success; 1 runtime failure (a write failed, the model produced "
               "non-finite numbers, training could not continue); 2 bad input (a bad file, path, "
               "config, option or number); 130 interrupted (Ctrl+C; `blt train` saves last/ first). "
               "Errors are one line on stderr; --debug adds the traceback.")
MAX_JSON_BYTES = 4 << 20  # --config files are a few KB

def default_model_path() -> Path | None:
    """The model shipped with the package (assets/models/), or None if absent."""
    from ..io.shipped import shipped_model_path

    return shipped_model_path()


# --- helpers -------------------------------------------------------------------------------------

def _visible(text: str) -> str:
    """Generated text for a terminal: control characters escaped, newlines kept."""
    return terminal_safe(text, keep_newlines=True)


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _device(name: str | None):
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


def _load_configs(path: str | None, preset: str | None):
    """--config FILE (a BLTConfig object, or {"model": {...}, "training": {...}}) and/or --preset."""
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


_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def _dtype(name: str | None):
    import torch

    return None if name is None else getattr(torch, _DTYPES[name])


def _load_path(path: Path, device, dtype=None):
    """load_model, with a progress bar on stderr while a transformers directory is converted."""
    from ..io.checkpoint import load_model
    from ..io.hf_compat import is_hf_model_dir

    if not is_hf_model_dir(path):
        return load_model(path, device=device, dtype=dtype)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("loading {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=_console(stderr=True), transient=True,
                  disable=not sys.stderr.isatty()) as bar:  # a log file gets no bar (nor its blank line)
        task = bar.add_task(Path(path).name or str(path), total=None)

        def progress(done: int, total: int, name: str) -> None:
            bar.update(task, completed=done, total=total)

        return load_model(path, device=device, dtype=dtype, progress=progress)


def _load(model_dir: str | None, device, *, allow_random: bool, seed: int | None = None, dtype=None):
    """(model, label). Without --model: the shipped model, else (if allowed) random weights."""
    import torch

    from ..config import BLTConfig
    from ..nn.model import BLT

    path = Path(model_dir) if model_dir else default_model_path()
    if path is not None:
        return _load_path(path, device, dtype), str(path)
    if not allow_random:
        raise ValueError("no model given and no shipped model installed; pass --model DIR")
    torch.manual_seed(0 if seed is None else seed)
    # an untrained entropy model puts a patch at every byte; word patches show the idea better
    model = BLT(BLTConfig.preset("tiny").replace(patching_scheme="space")).to(device, dtype).eval()
    return model, "RANDOM-WEIGHT tiny model (untrained)"


# --- train ---------------------------------------------------------------------------------------

def _cmd_train(args: argparse.Namespace) -> int:
    from ..train.training import TrainingConfig, train

    model_cfg, training = _load_configs(args.config, args.preset)
    overrides = {
        "max_steps": args.max_steps, "max_minutes": args.max_minutes, "seed": args.seed,
        "batch_size": args.batch_size, "eval_batch_size": args.eval_batch_size,
        "max_sequence_length": args.seq_len, "gradient_accumulation_steps": args.grad_accum,
        "learning_rate": args.lr, "num_epochs": args.epochs, "eval_interval": args.eval_interval,
        "patience": args.patience, "warmup_steps": args.warmup_steps,
        "min_text_length": args.min_text_length, "entropy_max_steps": args.entropy_steps,
        "precision": args.precision,
    }
    training.update({k: v for k, v in overrides.items() if v is not None})
    if args.allow_binary:
        training["allow_binary"] = True
    if args.compile:
        training["compile"] = True
    if args.no_progress:
        training["progress"] = False
    try:
        cfg = TrainingConfig.from_dict(training)
    except (TypeError, ValueError) as e:  # name the file the bad value came from
        raise ValueError(f"{args.config}: {e}" if args.config else str(e)) from None
    if model_cfg is not None and args.target_patch_size is not None:
        model_cfg = model_cfg.replace(target_mean_patch_size=args.target_patch_size)
    elif args.target_patch_size is not None:
        from ..config import BLTConfig

        model_cfg = BLTConfig.preset("tiny").replace(target_mean_patch_size=args.target_patch_size)
    result = train(args.data, args.valid, out_dir=args.out, model_config=model_cfg, training=cfg,
                   entropy_model=args.entropy_model, device=args.device, resume=args.resume,
                   overwrite=args.overwrite)
    from ..train.training import world_info

    if world_info()[0] == 0:
        con = _console()
        for note in result.notes:
            con.print(markup_safe(note))
        loss = result.best_val_loss
        if math.isfinite(loss):
            con.print(f"best validation: {loss:.4f} nats/byte = {loss / math.log(2):.4f} bits/byte")
        con.print(f"best model: {markup_safe(result.out_dir / 'best')}   "
                  f"last model: {markup_safe(result.out_dir / 'last')}")
    return 0


# --- eval ----------------------------------------------------------------------------------------

def _read_eval_file(path: str) -> bytes:
    from ..train.data import DataError

    p = Path(path)
    data = read_regular_file(p, error=DataError)  # a FIFO or /dev/zero would never end
    if not data:
        raise DataError(f"{p}: the file is empty")
    return data


def _cmd_eval(args: argparse.Namespace) -> int:
    from ..train.evaluation import compressor_bits_per_byte, compute_bits_per_byte
    from .report import print_compression_table

    files = {f: _read_eval_file(f) for f in args.files}  # check every file before the slow part
    reference = _read_eval_file(args.reference) if args.reference else None
    device = _device(args.device)
    model, label = _load(args.model, device, allow_random=False)
    results, rows = [], []
    for name, data in files.items():
        with _naming_model(label):
            metrics = compute_bits_per_byte(model, data, batch_size=args.batch_size, window=args.window,
                                            device=device)
        base = compressor_bits_per_byte(data)
        entry: dict[str, Any] = {"file": name, "bytes": len(data), "bits_per_byte": metrics["bits_per_byte"],
                                 "metrics": metrics, "compressors": base}
        row = {"file": markup_safe(name), "bytes": len(data), "model": metrics["bits_per_byte"], **base}
        if reference is not None:
            given = compressor_bits_per_byte(data, reference)
            entry["compressors_given_reference"] = given
            row.update({f"{k}+ref": v for k, v in given.items()})
        results.append(entry)
        rows.append(row)
    if args.json:
        print(json.dumps({"model": label, "results": results}, indent=2))
    else:
        print_compression_table(rows, title=f"Bits per byte, lower is better (model: {markup_safe(label)})",
                                console=_console())
    return 0


@contextlib.contextmanager
def _naming_model(label: str) -> Iterator[None]:
    """Non-finite logits: the error names the model they came from."""
    from ..inference.sampling import NonFiniteLogitsError

    try:
        yield
    except NonFiniteLogitsError as e:
        raise NonFiniteLogitsError(f"{label}: {e}") from None


# --- generate ------------------------------------------------------------------------------------

_MAX_ENTROPY = math.log(256)


def _entropy_colour(h: float) -> str:
    """Blue (predictable) -> yellow -> red (surprising)."""
    if not math.isfinite(h):
        return "grey62"
    x = max(0.0, min(1.0, h / _MAX_ENTROPY * 1.6))
    if x < 0.5:
        t = x / 0.5
        r, g, b = int(80 + 175 * t), int(140 + 100 * t), int(255 - 215 * t)
    else:
        t = (x - 0.5) / 0.5
        r, g, b = 255, int(240 - 190 * t), int(40 - 10 * t)
    return f"rgb({r},{g},{b})"


def _byte_writer(stream: Any) -> Callable[..., None]:
    """Where generated bytes go: a pipe or file gets them exactly as generated; a terminal gets
    them decoded, with control characters escaped so they can never drive it."""
    tty = stream.isatty()
    buffer = None if tty else getattr(stream, "buffer", None)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def write(data: bytes, final: bool = False) -> None:
        if buffer is not None:
            stream.flush()
            buffer.write(data)
            buffer.flush()
            return
        text = decoder.decode(data, final)
        if tty:
            text = _visible(text)
        if text:
            stream.write(text)
            stream.flush()
    return write


def _named_events(events: Iterator[Any], label: str) -> Iterator[Any]:
    with _naming_model(label):
        yield from events


def _cmd_generate(args: argparse.Namespace) -> int:
    from ..inference.generation import generate_stream

    device = _device(args.device)
    model, label = _load(args.model, device, allow_random=True, seed=args.seed, dtype=_dtype(args.dtype))
    err = _console(stderr=True)
    if args.model is None and default_model_path() is None:
        err.print("[bold yellow]warning:[/] no trained model installed; using a tiny model with RANDOM "
                  "weights, so the output is noise. Train one with `blt train` and pass --model DIR.")
    # the prompt's own bytes: argv was decoded with surrogateescape, so invalid UTF-8 survives
    prompt = os.fsencode(args.prompt)
    events = generate_stream(model, prompt, max_new_bytes=args.max_bytes, temperature=args.temperature,
                             top_k=args.top_k, top_p=args.top_p, repetition_penalty=args.repetition_penalty,
                             seed=args.seed, report_prompt=args.show_patches)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    if not args.show_patches:
        write = _byte_writer(sys.stdout)
        events = _named_events(events, label)
        first = next(events, None)  # the prompt is read before anything is printed: errors come first
        write(prompt)
        for ev in itertools.chain([first] if first is not None else [], events):
            if ev.byte is None:
                break
            write(bytes([ev.byte]))
        write(b"\n", final=True)
        return 0

    from rich.text import Text

    con = _console()
    pending_start, pending_h = False, math.nan
    patches, n_bytes = 0, 0
    for ev in _named_events(events, label):
        if ev.byte is None:
            break
        n_bytes += 1
        patches += int(ev.patch_start)
        if not pending_start and (ev.patch_start or math.isnan(pending_h)):
            pending_h = ev.entropy
        pending_start = pending_start or ev.patch_start
        text = _visible(decoder.decode(bytes([ev.byte])))
        if not text:
            continue  # inside a multi-byte character: style it by its first byte
        style = _entropy_colour(pending_h)
        bg = " on grey19" if ev.patch_index % 2 else " on grey30"
        piece = Text()
        if pending_start and text not in ("\n",):
            piece.append(text[0], style=style + " bold underline" + bg)
            piece.append(text[1:], style=style + bg)
        else:
            piece.append(text, style=style + bg)
        con.print(piece, end="", soft_wrap=True)
        pending_start, pending_h = False, math.nan
    con.print(decoder.decode(b"", final=True))
    mean = n_bytes / patches if patches else float("nan")
    err.print(f"[dim]{markup_safe(label)}: colour = next-byte entropy (blue low, red high); underlined = first byte "
              f"of a patch; patches alternate shading. {n_bytes} bytes, {patches} patches, "
              f"mean patch size {mean:.2f}[/]")
    return 0


# --- info ----------------------------------------------------------------------------------------

def _cmd_info(args: argparse.Namespace) -> int:
    import torch
    from rich.table import Table

    from ..io.checkpoint import meta_model
    from ..nn.model import BLT

    if args.model:
        model, label = _load(args.model, torch.device("cpu"), allow_random=False)
    elif args.preset or args.config:
        cfg, _ = _load_configs(args.config, args.preset)
        # counts and FLOPs need shapes only: a config of any size is described without allocating it
        model = meta_model(cfg, Path(args.config) if args.config else None)
        label = f"preset {args.preset}" if args.preset else str(args.config)
    else:
        path = default_model_path()
        if path is None:
            from ..config import BLTConfig

            model, label = BLT(BLTConfig.preset("tiny")), "preset tiny (no shipped model installed)"
        else:
            model, label = _load(str(path), torch.device("cpu"), allow_random=False)
    cfg = model.config
    patch = args.patch_size if args.patch_size is not None else cfg.target_mean_patch_size
    breakdown = model.parameter_breakdown()
    flops = model.flops_per_byte(patch)
    info = {"model": label, "config": cfg.to_dict(), "parameters": breakdown,
            "parameters_without_embeddings": model.num_parameters(include_embeddings=False),
            "mean_patch_size": patch, "flops_per_byte": flops,
            "entropy_threshold": cfg.entropy_threshold}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    con = _console()
    t = Table(title=f"Config: {markup_safe(label)}", header_style="bold")
    for _ in range(2):
        t.add_column("Field")
        t.add_column("Value", justify="right")
    items = sorted(cfg.to_dict().items())
    half = (len(items) + 1) // 2
    for i in range(half):
        left = items[i]
        right = items[half + i] if half + i < len(items) else ("", "")
        t.add_row(left[0], markup_safe(left[1]), right[0], markup_safe(right[1]))
    con.print(t)
    p = Table(title="Parameters", header_style="bold")
    p.add_column("Component")
    p.add_column("Parameters", justify="right")
    for k, v in breakdown.items():
        p.add_row(k.replace("_", " "), f"{v:,}")
    p.add_row("total without embeddings", f"{info['parameters_without_embeddings']:,}")
    con.print(p)
    thr = "not calibrated" if cfg.entropy_threshold is None else f"{cfg.entropy_threshold:.4f} nats"
    con.print(f"FLOPs per byte at mean patch size {patch:g}: {flops:,.0f} ({flops / 1e6:.2f} MFLOP); "
              f"entropy threshold: {thr}")
    return 0


# --- convert -------------------------------------------------------------------------------------

def _cmd_convert(args: argparse.Namespace) -> int:
    import torch

    from ..io.checkpoint import move_aside, save_model

    src, dst = Path(args.src).expanduser(), Path(args.dst).expanduser()
    if dst.exists() and dst.resolve() == src.resolve():
        raise ValueError(f"{dst}: the destination is the source directory")
    if os.path.lexists(dst) and not dst.is_dir():
        raise ValueError(f"{dst}: exists and is not a directory")
    occupied = dst.is_dir() and any(dst.iterdir())
    if occupied and not args.overwrite:
        raise ValueError(f"{dst}: exists and is not empty; pass --overwrite to move it aside")
    dtype = _dtype(args.dtype)
    model = _load_path(src, torch.device("cpu"), dtype)
    con = _console()
    if occupied:  # only now: the source may live inside the destination
        con.print(f"moved the old {markup_safe(dst)} to {markup_safe(move_aside(dst))}")
    save_model(model, dst, dtype=dtype, metadata={"converted_from": str(src)})
    cfg = model.config
    thr = "not calibrated" if cfg.entropy_threshold is None else f"{cfg.entropy_threshold:.4f} nats"
    con.print(f"wrote {markup_safe(dst)} ({model.num_parameters():,} parameters, "
                     f"{str(next(model.parameters()).dtype).replace('torch.', '')}; patching: "
                     f"{cfg.patching_scheme}, threshold {thr})")
    return 0


# --- parser --------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (exit status 2), like every other error of `blt`."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {terminal_safe(message)} (see {self.prog} --help)\n")


def _number(kind: type, low: float | None = None, high: float | None = None, *, above: bool = False
            ) -> Callable[[str], Any]:
    """argparse type: an int/float that is finite and in range; the message says which range."""
    def show(x: float) -> str:
        return str(x) if kind is int else f"{x:g}"

    rng = " and ".join(p for p in ((f"> {show(low)}" if above else f">= {show(low)}") if low is not None else "",
                                   f"<= {show(high)}" if high is not None else "") if p)
    want = f"{'an integer' if kind is int else 'a finite number'}{' ' + rng if rng else ''}"

    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"must be {want}, got {text!r}") from None
        ok = math.isfinite(v) and (low is None or (v > low if above else v >= low)) and (high is None or v <= high)
        if not ok:
            raise argparse.ArgumentTypeError(f"must be {want}, got {text!r}")
        return v
    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


_COUNT = _number(int, 1)
_SEED = _number(int, 0, 2**64 - 1)


def build_parser() -> argparse.ArgumentParser:
    from ..config import PRESETS

    parser = _Parser(prog="blt", description="Byte Latent Transformer: train, evaluate, "
                     "generate and inspect byte-level models (no tokenizer).", epilog=EXIT_STATUS)
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # --debug after the command too; SUPPRESS keeps a subcommand from resetting the global flag
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="print the traceback of an error")

    t = sub.add_parser("train", parents=[common], epilog=EXIT_STATUS, help="train a model on text files (entropy model, then the BLT)",
                       description="Train the entropy model, calibrate the patching threshold, then train "
                       "the BLT. Works on one process or under `torchrun --nproc-per-node N`.")
    t.add_argument("--data", nargs="+", required=True, metavar="PATH",
                   help="text files, directories, globs, .jsonl files (field 'text') or hf:NAME?split=train")
    t.add_argument("--valid", nargs="+", metavar="PATH",
                   help="validation data (default: the last 5%% of every training document)")
    t.add_argument("--preset", choices=list(PRESETS), help="model size preset (default: tiny)")
    t.add_argument("--config", metavar="FILE",
                   help="JSON model config, or {\"model\": {...}, \"training\": {...}}; overrides --preset")
    t.add_argument("--out", required=True, metavar="DIR", help="run directory (best/ and last/ models land here)")
    t.add_argument("--max-steps", type=_COUNT, metavar="N", help="stop after N optimizer steps")
    t.add_argument("--max-minutes", type=_number(float, 0, above=True), metavar="M", help="stop after M minutes of training (counted over --resume too); "
                   "the learning rate decays over this budget")
    t.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    again = t.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run in --out from its last state")
    again.add_argument("--overwrite", action="store_true",
                       help="--out holds a model or run: move it aside (to OUT.old-TIMESTAMP) and start anew")
    t.add_argument("--seed", type=_SEED, help="random seed (default 0)")
    t.add_argument("--batch-size", type=_COUNT, metavar="B", help="sequences per step and process")
    t.add_argument("--eval-batch-size", type=_COUNT, metavar="B")
    t.add_argument("--seq-len", type=_number(int, 2), metavar="L", help="ids per training sequence (BOS + L-1 bytes)")
    t.add_argument("--grad-accum", type=_COUNT, metavar="K", help="gradient accumulation steps")
    t.add_argument("--lr", type=_number(float, 0, above=True), help="peak learning rate")
    t.add_argument("--epochs", type=_COUNT)
    t.add_argument("--warmup-steps", type=_number(int, 0))
    t.add_argument("--eval-interval", type=_COUNT, metavar="N", help="evaluate and save every N steps")
    t.add_argument("--patience", type=_number(int, 0),
                   help="evaluations without improvement before stopping (0: never)")
    t.add_argument("--min-text-length", type=_COUNT, metavar="N", help="skip documents shorter than N bytes")
    t.add_argument("--entropy-steps", type=_COUNT, metavar="N",
                   help="steps for the entropy model (default: a quarter of --max-steps)")
    t.add_argument("--entropy-model", metavar="DIR", help="reuse the entropy model of this model directory")
    t.add_argument("--target-patch-size", type=_number(float, 1), metavar="S", help="mean patch size to calibrate for")
    t.add_argument("--precision", choices=["auto", "bf16", "fp32"])
    t.add_argument("--allow-binary", action="store_true", help="train on binary files too (as bytes)")
    t.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar or tables")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("eval", parents=[common], epilog=EXIT_STATUS, help="bits per byte of files, next to gzip, bz2 and lzma",
                       description="Score files with a model and with the standard-library compressors "
                       "at their highest levels; lower bits per byte is better.")
    e.add_argument("files", nargs="+", metavar="FILE")
    e.add_argument("--model", metavar="DIR", help="model directory (default: the shipped model)")
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e.add_argument("--reference", metavar="FILE",
                   help="also give compressors this file first (e.g. the training split)")
    e.add_argument("--device")
    e.add_argument("--batch-size", type=_COUNT, default=4)
    e.add_argument("--window", type=_number(int, 2), metavar="N", help="ids per scoring window (default: model maximum)")
    e.set_defaults(func=_cmd_eval)

    gen = sub.add_parser("generate", parents=[common], epilog=EXIT_STATUS, help="stream generated text to the terminal",
                         description="Generate bytes after a prompt, streaming them as they are sampled.")
    gen.add_argument("prompt", nargs="?", default="", help="text to continue")
    gen.add_argument("--model", metavar="DIR",
                     help="model directory (default: the shipped model, else an untrained random one)")
    gen.add_argument("--max-bytes", type=_number(int, 0), default=256)
    gen.add_argument("--temperature", type=_number(float, 0), default=0.8, help="0: greedy")
    gen.add_argument("--top-k", type=_number(int, 0), default=0, help="0: off")
    gen.add_argument("--top-p", type=_number(float, 0, 1, above=True), default=1.0)
    gen.add_argument("--repetition-penalty", type=_number(float, 0, above=True), default=1.0)
    gen.add_argument("--seed", type=_SEED)
    gen.add_argument("--show-patches", action="store_true",
                     help="colour bytes by entropy and mark where patches start")
    gen.add_argument("--device")
    gen.add_argument("--dtype", choices=list(_DTYPES), help="load the weights in this precision (default fp32)")
    gen.set_defaults(func=_cmd_generate)

    cv = sub.add_parser("convert", parents=[common], epilog=EXIT_STATUS, help="write a model (e.g. Meta's BLT weights in transformers format) "
                        "in this project's format",
                        description="Load SRC (a transformers BLT directory: config.json with model_type "
                        "'blt' and model.safetensors or sharded safetensors; or a blt-chat model) and "
                        "write DST as config.json + model.safetensors.")
    cv.add_argument("src", metavar="SRC")
    cv.add_argument("dst", metavar="DST")
    cv.add_argument("--dtype", choices=list(_DTYPES), help="precision of the written weights (default fp32)")
    cv.add_argument("--overwrite", "--force", action="store_true",
                    help="DST is not empty: move it aside (to DST.old-TIMESTAMP) and write anew")
    cv.set_defaults(func=_cmd_convert)

    i = sub.add_parser("info", parents=[common], epilog=EXIT_STATUS, help="config, parameter counts and FLOPs per byte",
                       description="Describe a model directory, a preset or a config file.")
    src = i.add_mutually_exclusive_group()
    src.add_argument("--model", metavar="DIR")
    src.add_argument("--preset", choices=list(PRESETS))
    i.add_argument("--config", metavar="FILE")
    i.add_argument("--patch-size", type=_number(float, 1), metavar="S",
                   help="mean patch size for the FLOPs estimate (default: the config's target)")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_cmd_info)
    return parser


def _describe(e: BaseException) -> tuple[str, int]:
    """(one-line message, exit status) for an exception that ends a command."""
    msg = str(e)
    if isinstance(e, OSError):
        msg = e.strerror or msg or type(e).__name__
        if e.filename is not None and os.fsdecode(e.filename) not in msg:
            msg = f"{os.fsdecode(e.filename)}: {msg}"
        return msg, EXIT_FAILURE
    if isinstance(e, MemoryError):
        return "out of memory" + (f" ({msg})" if msg else ""), EXIT_FAILURE
    if isinstance(e, ValueError):  # CheckpointError, DataError, bad configs and numbers
        return msg or type(e).__name__, EXIT_BAD_INPUT
    from ..inference.sampling import NonFiniteLogitsError
    from ..train.training import TrainingError

    if isinstance(e, (TrainingError, NonFiniteLogitsError)):
        return msg, EXIT_FAILURE
    return f"{type(e).__name__}: {msg} (an unexpected error; --debug shows where)", EXIT_FAILURE


def _stdout_gone() -> None:
    """The reader of stdout left (`blt generate | head`): stop quietly, and make the final
    flush at exit go nowhere instead of raising again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # not a real file descriptor (tests capture stdout)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `blt` -> exit status (EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_INTERRUPTED)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        _stdout_gone()
        return EXIT_OK
    except KeyboardInterrupt as e:
        from ..train.training import TrainingInterrupted

        msg = "interrupted"
        if isinstance(e, TrainingInterrupted) and e.run_dir is not None:
            msg += (f"; last/ and the resume state are saved in {e.run_dir} "
                    f"(continue with: blt train --resume --out {args.out} ...)")
        _error(args, msg)
        return EXIT_INTERRUPTED
    except Exception as e:
        if args.debug:
            traceback.print_exc()
        msg, status = _describe(e)
        _error(args, msg)
        return status


def _error(args: argparse.Namespace, msg: str) -> None:
    try:
        print(f"blt {args.command}: error: {terminal_safe(msg)}", file=sys.stderr, flush=True)
    except (BrokenPipeError, OSError):
        pass  # stderr is gone too; the exit status still tells

