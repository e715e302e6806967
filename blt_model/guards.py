"""Guards for untrusted input: text made safe for a terminal, files read only when they are
regular files of bounded size, and the memory this process may still use.

`escape_char` / `terminal_safe` are the one escaper of the project: every error message of `blt`,
everything it prints that came from a file or a model, and every byte the app shows go through
it. (Rich markup escaping is the command line's: cli/style.py.)
"""

from __future__ import annotations

import math
import os
import resource
import stat
import unicodedata
from pathlib import Path

__all__ = ["available_memory", "check_memory", "escape_char", "format_bytes", "is_int", "is_number",
           "read_regular_file", "require_regular_file", "terminal_safe"]


# the short spellings the app shows (escape_char(readable=True)); the CLI spells every byte \\xNN
_READABLE = {0x00: "\\0", 0x0D: "\\r", 0x1B: "\\e"}
# Unicode categories that must not reach a terminal raw: format characters (bidi overrides,
# zero-width), surrogates, private use, unassigned, line and paragraph separators
_UNSAFE_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))


def escape_char(ch: str, readable: bool = False) -> str | None:
    """The visible escape of a character that must not reach a terminal raw, else None.

    C0 and DEL show as `\\x1b`; C1 as `\\x9b` (`\\u009b` when `readable`, which also spells NUL,
    CR and ESC `\\0`, `\\r`, `\\e`); lone surrogates U+DC80..U+DCFF, which `surrogateescape`
    made of bytes that were not UTF-8, as the byte (`\\xff`); other format, private-use,
    unassigned and separator characters as `\\uXXXX` / `\\UXXXXXXXX`.
    """
    o = ord(ch)
    if 0xDC80 <= o <= 0xDCFF:
        return f"\\x{o - 0xDC00:02x}"
    if o < 0x20 or o == 0x7F:
        return (_READABLE.get(o) if readable else None) or f"\\x{o:02x}"
    if 0x80 <= o <= 0x9F:
        return f"\\u{o:04x}" if readable else f"\\x{o:02x}"
    if o < 0xA0 or unicodedata.category(ch) not in _UNSAFE_CATEGORIES:
        return None
    return f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}"


def terminal_safe(text: object, keep_newlines: bool = False) -> str:
    """`text` with every character `escape_char` escapes (control characters, bidi overrides,
    lone surrogates...) shown as its escape, so it can never drive a terminal. Tabs are kept;
    newlines too with `keep_newlines` (generated text), else escaped so an error message stays
    one line."""
    s = str(text)
    keep = "\t\n" if keep_newlines else "\t"
    if s.isascii() and s.isprintable():  # the common case: nothing to escape
        return s
    return "".join(c if c in keep else (escape_char(c) or c) for c in s)


def is_int(v: object) -> bool:
    """An integer that is not a bool (JSON `true` is not a count)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: object) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


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
