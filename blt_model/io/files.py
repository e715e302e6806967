"""Writing files so that a reader (or a process killed half-way) never sees half a file: the one
atomic write of the project (checkpoints, training state, run records, the app's settings and
conversations), with the fault points the crash tests use.
"""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["FAULT_ENV", "atomic_write", "atomic_write_bytes", "atomic_write_text", "fault_point"]

FAULT_ENV = "BLT_FAULT_POINT"  # test hook: "POINT" or "POINT:N" kills the process at that point
_fault_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Fault injection for tests: with BLT_FAULT_POINT=name[:N], SIGKILL this process the Nth
    time (default first) it passes `name`. Points: after_tmp_written, before_rename (every
    atomic write), between_weights_and_config (save_model), between_weights_and_state (training)."""
    want = os.environ.get(FAULT_ENV)
    if not want:
        return
    point, _, nth = want.partition(":")
    if point != name:
        return
    _fault_hits[name] = _fault_hits.get(name, 0) + 1
    if _fault_hits[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> None:
    """`write(tmp)` fills a temporary file next to `path`, which is then synced and renamed over
    `path`: readers see the old file or the new one, never half of one. Temporary files are
    named `.NAME.<random>.tmp` (checkpoint.remove_temp_files finds the ones a kill left)."""
    from safetensors import SafetensorError

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        try:
            write(tmp)
        except SafetensorError as e:  # a full disk surfaces as safetensors' own error type
            raise OSError(f"{path}: cannot write ({e})") from None
        fault_point("after_tmp_written")
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a saved file should be readable like any file
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        fault_point("before_rename")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` via a temporary file and a rename: readers never see half a file."""
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """`text` as UTF-8, atomically (see atomic_write_bytes)."""
    atomic_write_bytes(path, text.encode("utf-8"))
