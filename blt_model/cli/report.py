"""Terminal output with rich: metric tables, compressor comparisons and the training reporter
(progress bar, notes, validation tables) that `blt train` passes to `blt_model.train.train`.
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

from ..train.reporting import DataSummary, StageOutcome, TrainingReporter
from .style import markup_safe

__all__ = ["RichTrainingReporter", "format_metric", "print_compression_table", "print_metrics_table"]

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


class RichTrainingReporter(TrainingReporter):
    """Training events on the terminal: notes, the data read, a progress bar per stage (loss, bits
    per byte, bytes/s, ETA), a metrics table per validation and a line when a stage stops."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._task: Any = None
        self._bytes = 0
        self._t0 = time.perf_counter()

    def on_note(self, text: str, warning: bool = False) -> None:
        self.console.print(f"[yellow]{markup_safe(text)}[/]" if warning else markup_safe(text))

    def on_data(self, summary: DataSummary) -> None:
        train, valid = summary.train, summary.valid
        self.console.print(f"[bold]train[/]: {train.summary()}"
                           + (f"; {summary.skipped_short} shorter than {summary.min_text_length} bytes skipped"
                              if summary.skipped_short else ""))
        self.console.print(f"[bold]valid[/]: {valid.summary() if valid else 'held out'}; "
                           f"{summary.valid_bytes:,} bytes")
        for p in (train.skipped_paths + (valid.skipped_paths if valid else []))[:10]:
            self.console.print(f"[yellow]skipped[/] {markup_safe(p)}")

    def on_stage(self, name: str, total_steps: int | None, start_step: int) -> None:
        self._bytes = 0
        self._t0 = time.perf_counter()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(),
            TextColumn("{task.completed}/{task.total} steps" if total_steps else "step {task.completed}"),
            _StatsColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), console=self.console, transient=False)
        self._task = self._progress.add_task(name, total=total_steps, completed=start_step,
                                             loss=None, bytes_per_s=None, lr=None)
        self._progress.start()

    def on_step(self, step: int, loss: float, n_bytes: int, lr: float) -> None:
        self._bytes += n_bytes
        if self._progress is not None:
            elapsed = max(time.perf_counter() - self._t0, 1e-9)
            self._progress.update(self._task, completed=step, loss=loss, bytes_per_s=self._bytes / elapsed, lr=lr)

    def on_validation(self, stage: str, step: int, metrics: Mapping[str, float]) -> None:
        print_metrics_table(metrics, f"{stage}: validation at step {step}", console=self.console)

    def on_stage_end(self, name: str, outcome: StageOutcome | None) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if outcome is None:
            return
        best = outcome.best_val_loss
        self.console.print(f"[bold]{name}[/]: stopped ({outcome.stop_reason}) at step {outcome.step}; "
                           f"best validation loss {best:.4f} nats/byte"
                           + (f" ({best / math.log(2):.4f} bits/byte)" if math.isfinite(best) else "")
                           + (f"; {outcome.nonfinite_steps} non-finite steps skipped" if outcome.nonfinite_steps
                              else ""))
