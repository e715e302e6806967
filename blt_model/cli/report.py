"""Terminal output with rich: metric tables, compressor comparisons and the training progress bar.

The only module of `blt_model` (besides the CLI) that writes to the terminal.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

__all__ = ["TrainingProgress", "format_metric", "print_compression_table", "print_metrics_table"]

# label, format; in the order they are shown
_METRICS: dict[str, tuple[str, str]] = {
    "loss": ("Loss (nats/byte)", "{:.4f}"),
    "bits_per_byte": ("Bits per byte", "{:.4f}"),
    "accuracy": ("Accuracy", "{:.2%}"),
    "perplexity": ("Perplexity", "{:.3f}"),
    "confidence_mean": ("Confidence mean", "{:.4f}"),
    "confidence_min": ("Confidence min", "{:.3g}"),
    "confidence_max": ("Confidence max", "{:.4f}"),
    "mean_patch_size": ("Mean patch size (bytes)", "{:.2f}"),
    "bytes": ("Bytes scored", "{:,.0f}"),
}


def format_metric(key: str, value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    fmt = _METRICS.get(key, (key, "{:.4g}" if isinstance(value, float) else "{}"))[1]
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def print_metrics_table(metrics: Mapping[str, Any], title: str = "Metrics", console: Console | None = None) -> None:
    """A two-column table of metrics: the known ones first, in a fixed order, then the rest."""
    console = console or Console()
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    for key, (label, _) in _METRICS.items():
        if key in metrics:
            table.add_row(label, format_metric(key, metrics[key]))
    for key, value in metrics.items():
        if key not in _METRICS:
            table.add_row(key.replace("_", " "), format_metric(key, value))
    console.print(table)


def print_compression_table(rows: Sequence[Mapping[str, Any]], title: str = "Bits per byte (lower is better)",
                            console: Console | None = None) -> None:
    """rows: {"file", "bytes", "model", "gzip", "bz2", "lzma", ...} -> one line per file, the best
    value of each line in bold green so that it is plain whether the model beats the compressors."""
    console = console or Console()
    table = Table(title=title, header_style="bold")
    table.add_column("File", overflow="fold")
    table.add_column("Bytes", justify="right", no_wrap=True)
    value_keys = [k for k in ("model", "gzip", "bz2", "lzma") if any(k in r for r in rows)]
    value_keys += [k for r in rows for k in r if k not in value_keys and k not in ("file", "bytes")
                   and isinstance(r[k], (int, float))]
    value_keys = list(dict.fromkeys(value_keys))
    for k in value_keys:
        table.add_column(k, justify="right", no_wrap=True)
    for r in rows:
        values = {k: r[k] for k in value_keys if isinstance(r.get(k), (int, float))}
        best = min(values.values()) if values else None
        cells = []
        for k in value_keys:
            if k not in values:
                cells.append("-")
                continue
            style = "bold green" if values[k] == best else ""
            cells.append(Text(f"{values[k]:.3f}", style=style))
        table.add_row(str(r.get("file", "")), f"{int(r.get('bytes', 0)):,}", *cells)
    console.print(table)


class _StatsColumn(ProgressColumn):
    """loss, bpb, bytes/s from the task's fields."""

    def render(self, task: Task) -> Text:
        f = task.fields
        parts = []
        if f.get("loss") is not None:
            parts.append(f"loss {f['loss']:.3f}")
            parts.append(f"bpb {f['loss'] / math.log(2):.3f}")
        if f.get("bytes_per_s"):
            parts.append(f"{f['bytes_per_s']:,.0f} B/s")
        if f.get("lr") is not None:
            parts.append(f"lr {f['lr']:.2e}")
        return Text("  ".join(parts), style="cyan")


class TrainingProgress:
    """A rich progress bar over optimizer steps showing loss, bits per byte, bytes/s and ETA.

    `enabled=False` gives a silent object with the same methods (non-zero ranks, tests).
    """

    def __init__(self, total_steps: int | None, description: str = "training", *, enabled: bool = True,
                 console: Console | None = None, start_step: int = 0) -> None:
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self._bytes = 0
        self._t0 = time.perf_counter()
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(),
                TextColumn("{task.completed}/{task.total} steps"), _StatsColumn(),
                TextColumn("ETA"), TimeRemainingColumn(), console=self.console, transient=False)
            self._task = self._progress.add_task(description, total=total_steps, completed=start_step,
                                                 loss=None, bytes_per_s=None, lr=None)

    def __enter__(self) -> TrainingProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, step: int, loss: float | None = None, n_bytes: int = 0, lr: float | None = None) -> None:
        self._bytes += n_bytes
        if self._progress is None:
            return
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        self._progress.update(self._task, completed=step, loss=loss, bytes_per_s=self._bytes / elapsed, lr=lr)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if self.enabled:
            self.console.print(*objects, **kwargs)

    def metrics_table(self, metrics: Mapping[str, Any], title: str) -> None:
        if self.enabled:
            print_metrics_table(metrics, title, console=self.console)
