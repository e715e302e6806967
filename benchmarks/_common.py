"""Shared by the benchmark scripts (run as `python benchmarks/NAME.py`, so this directory is on
sys.path)."""

from __future__ import annotations

import os

from rich.console import Console


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
