"""Shared by the benchmark scripts (run as `python benchmarks/NAME.py`, so this directory is on
sys.path)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console

from blt_model.io.files import atomic_write_text


def busy_warning(console: Console) -> float | None:
    """Warn when other processes keep the CPUs busy: timings would be meaningless.
    Returns the 1-minute load average (None where the platform has none)."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        return None
    if load > 0.5 * (os.cpu_count() or 1):
        console.print(f"[yellow]warning: load average {load:.1f} on {os.cpu_count()} CPUs before the benchmark starts; "
                      "other processes compete for the cores and the timings will be too slow[/]")
    return load


def write_json(path: str | os.PathLike, data: Any, indent: int = 2) -> Path:
    """Results as JSON (numbers that are not plain floats, e.g. numpy's, as floats), written
    atomically so that a run cut off while writing leaves the previous file whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=indent, default=float) + "\n")
    return path
