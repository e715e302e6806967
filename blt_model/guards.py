"""Guards for untrusted input: text made safe for a terminal, files read only when they are
regular files of bounded size, and the memory this process may still use.

`terminal_safe` is the one escaper of the library: every error message of `blt` and everything
it prints that came from a file or a model goes through it.
"""

from __future__ import annotations

import math
import os
import resource
import stat
from pathlib import Path

__all__ = ["available_memory", "check_memory", "format_bytes", "is_int", "is_number", "markup_safe",
           "read_regular_file",
           "require_regular_file", "terminal_safe"]


def _escape(c: str) -> str:
    o = ord(c)
    if 0xDC80 <= o <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
        return f"\\x{o - 0xDC00:02x}"
    return f"\\x{o:02x}" if o < 256 else f"\\u{o:04x}"


def _unsafe(c: str, keep: str) -> bool:
    o = ord(c)
    # C0, DEL, C1 (ESC, CSI, OSC... drive the terminal); lone surrogates cannot even be encoded
    return c not in keep and (o < 32 or 127 <= o < 160 or 0xD800 <= o <= 0xDFFF)


def terminal_safe(text: object, keep_newlines: bool = False) -> str:
    """`text` with control characters (C0, DEL, C1) and lone surrogates shown as escapes
    (`\\x1b`), so it can never drive a terminal. Tabs are kept; newlines too with
    `keep_newlines` (generated text), else escaped so an error message stays one line."""
    s = str(text)
    keep = "\t\n" if keep_newlines else "\t"
    if not any(_unsafe(c, keep) for c in s):
        return s
    return "".join(_escape(c) if _unsafe(c, keep) else c for c in s)


def is_int(v: object) -> bool:
    """An integer that is not a bool (JSON `true` is not a count)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: object) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def markup_safe(text: object) -> str:
    """`terminal_safe` text to embed in a rich markup string (its brackets shown, not applied)."""
    from rich.markup import escape

    return escape(terminal_safe(text))


def format_bytes(n: float) -> str:
    """1234567 -> '1.2 MB' (decimal units)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def require_regular_file(path: str | os.PathLike, error: type[Exception] = ValueError) -> os.stat_result:
    """stat `path` (following links) and refuse anything but a regular file: a FIFO would hang
    the reader, a device (`/dev/zero`) never ends, a directory is not a file."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise error(f"{terminal_safe(p)}: no such file") from None
    except OSError as e:
        raise error(f"{terminal_safe(p)}: cannot read ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = next((k for test, k in _KINDS if test(st.st_mode)), "a special file")
        raise error(f"{terminal_safe(p)}: is {kind}, not a regular file")
    return st


def read_regular_file(path: str | os.PathLike, max_bytes: int | None = None,
                      error: type[Exception] = ValueError) -> bytes:
    """The bytes of `path`, which must be a regular file of at most `max_bytes` bytes."""
    p = Path(path)
    require_regular_file(p, error)
    try:
        # O_NONBLOCK: should the path turn into a FIFO after the stat, opening it cannot hang
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise error(f"{terminal_safe(p)}: cannot read ({e.strerror or e})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise error(f"{terminal_safe(p)}: not a regular file")
        try:
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
        except OSError as e:
            raise error(f"{terminal_safe(p)}: cannot read ({e.strerror or e})") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise error(f"{terminal_safe(p)}: larger than {format_bytes(max_bytes)}; not a file of this kind")
    return data


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except (OSError, ValueError):
        return None
    return int(text) if text.isdigit() else None  # "max" = no limit


def _cgroup_limit() -> int | None:
    """The memory limit of this process's cgroup (v2, else v1), None if there is none."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[0] == "0" and parts[1] == "":
            limit = _read_int(f"/sys/fs/cgroup{parts[2].rstrip('/')}/memory.max")
            if limit is not None:
                return limit
    v1 = _read_int("/sys/fs/cgroup/memory/memory.limit_in_bytes")
    return v1 if v1 is not None and v1 < (1 << 62) else None


def _address_space_left() -> int | None:
    """RLIMIT_AS minus the address space already mapped (None without a limit)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    used = 0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                used = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return max(0, soft - used)


def available_memory() -> tuple[int, str]:
    """(bytes, what limits it): the smallest of physical memory, the cgroup limit and what
    RLIMIT_AS still allows."""
    found: list[tuple[int, str]] = []
    try:
        found.append((os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "physical memory"))
    except (ValueError, OSError):
        pass
    cg = _cgroup_limit()
    if cg is not None:
        found.append((cg, "the cgroup memory limit"))
    left = _address_space_left()
    if left is not None:
        found.append((left, "RLIMIT_AS"))
    return min(found) if found else (1 << 62, "no known limit")


def check_memory(need: int, what: str, error: type[Exception] = ValueError) -> None:
    """Refuse, before allocating, something that needs more than `available_memory()`."""
    have, limit = available_memory()
    if need > have:
        raise error(f"{terminal_safe(what)}: needs {format_bytes(need)} of memory, more than the "
                    f"{format_bytes(have)} available ({limit})")
