"""Reading training text: plain files, directories, globs, JSON lines and Hugging Face datasets
into documents (bytes), with `DataStats` counting what was skipped, and `split_documents` to hold
out validation bytes.

Everything here works on raw bytes. Text is never decoded, so invalid UTF-8 is simply bytes.
Bad inputs either raise `DataError` naming the path before any training starts, or are skipped
and counted in `DataStats` (empty files, documents shorter than `min_length`, binary files unless
`allow_binary=True`).
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

from ..guards import read_regular_file

__all__ = [
    "DataError",
    "DataStats",
    "add_document",
    "is_binary",
    "read_documents",
    "read_hf_dataset",
    "read_hf_dataset_source",
    "split_documents",
]

_GLOB_CHARS = set("*?[")
_BINARY_SNIFF = 8192


class DataError(ValueError):
    """A data source cannot be used; the message names the source and the problem."""


@dataclass
class DataStats:
    """What the readers found. Skips are counted, never silent."""

    files: int = 0
    documents: int = 0
    bytes: int = 0
    skipped_empty: int = 0
    skipped_short: int = 0
    skipped_binary: int = 0
    skipped_jsonl_lines: int = 0
    invalid_utf8: int = 0
    skipped_paths: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return self.skipped_empty + self.skipped_short + self.skipped_binary + self.skipped_jsonl_lines

    def merge(self, other: DataStats) -> DataStats:
        for name in ("files", "documents", "bytes", "skipped_empty", "skipped_short", "skipped_binary",
                     "skipped_jsonl_lines", "invalid_utf8"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skipped_paths.extend(other.skipped_paths)
        return self

    def summary(self) -> str:
        parts = [f"{self.documents} documents, {self.bytes:,} bytes from {self.files} files"]
        for name, label in (("skipped_empty", "empty"), ("skipped_short", "too short"),
                            ("skipped_binary", "binary"), ("skipped_jsonl_lines", "bad JSON lines")):
            n = getattr(self, name)
            if n:
                parts.append(f"skipped {n} {label}")
        if self.invalid_utf8:
            parts.append(f"{self.invalid_utf8} with invalid UTF-8 (kept as bytes)")
        return "; ".join(parts)


def is_binary(data: bytes) -> bool:
    """Heuristic: NUL bytes, or many ASCII control bytes, in the first 8 KiB.

    UTF-8 text in any script passes (bytes >= 0x80 are not counted); so does Latin-1 text.
    """
    head = data[:_BINARY_SNIFF]
    if not head:
        return False
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return controls / len(head) > 0.05


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _expand(source: str) -> list[Path]:
    """A path, directory or glob -> sorted file list. Missing sources raise `DataError`."""
    if any(c in _GLOB_CHARS for c in source):
        matches = sorted(Path(p) for p in glob.glob(os.path.expanduser(source), recursive=True))
        files = [p for p in matches if p.is_file()]
        if not files:
            raise DataError(f"{source}: the pattern matches no files")
        return files
    path = Path(os.path.expanduser(source))
    if not path.exists():
        raise DataError(f"{source}: no such file or directory")
    if path.is_dir():
        files = []
        for root, dirs, names in os.walk(path, onerror=_raise_walk_error):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            files.extend(Path(root) / n for n in sorted(names) if not n.startswith("."))
        if not files:
            raise DataError(f"{source}: the directory holds no files")
        return files
    return [path]


def _raise_walk_error(err: OSError) -> None:
    raise DataError(f"{err.filename}: cannot read directory ({err.strerror})")


def _read_file(path: Path) -> bytes:
    return read_regular_file(path, error=DataError)  # a FIFO or a link to /dev/zero never ends


def _jsonl_documents(path: Path, raw: bytes, text_field: str, stats: DataStats) -> list[bytes]:
    docs: list[bytes] = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            stats.skipped_jsonl_lines += 1
            continue
        value = obj.get(text_field) if isinstance(obj, dict) else None
        if not isinstance(value, str):
            stats.skipped_jsonl_lines += 1
            continue
        # surrogates can appear in JSON strings; keep them as bytes rather than failing
        docs.append(value.encode("utf-8", errors="surrogatepass"))
    if not docs and stats.skipped_jsonl_lines:
        stats.skipped_paths.append(str(path))
    return docs


def add_document(doc: bytes, min_length: int, stats: DataStats, out: list[bytes]) -> None:
    """Append `doc` to `out` unless it is empty or shorter than `min_length` (counted in `stats`)."""
    if not doc:
        stats.skipped_empty += 1
        return
    if len(doc) < min_length:
        stats.skipped_short += 1
        return
    if not _valid_utf8(doc):
        stats.invalid_utf8 += 1
    stats.documents += 1
    stats.bytes += len(doc)
    out.append(doc)


def read_documents(
    sources: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    min_length: int = 1,
    allow_binary: bool = False,
    text_field: str = "text",
) -> tuple[list[bytes], DataStats]:
    """Read documents (as bytes) from files, directories, globs, `.jsonl` files (one document per
    line, from `text_field`) and `hf:NAME?split=train&column=text&config=CFG` sources.

    Every source is checked before anything is returned: a missing or unreadable path raises
    `DataError` naming it. Empty, too-short and binary documents are skipped and counted.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    if not sources:
        raise DataError("no data sources given")
    docs: list[bytes] = []
    stats = DataStats()
    for source in sources:
        source = os.fspath(source)
        if source.startswith("hf:"):
            hf_docs = read_hf_dataset_source(source)
            stats.files += 1
            for d in hf_docs:
                add_document(d, min_length, stats, docs)
            continue
        for path in _expand(source):
            raw = _read_file(path)
            stats.files += 1
            if path.suffix.lower() == ".jsonl":
                for d in _jsonl_documents(path, raw, text_field, stats):
                    add_document(d, min_length, stats, docs)
                continue
            if raw and not allow_binary and is_binary(raw):
                stats.skipped_binary += 1
                stats.skipped_paths.append(str(path))
                continue
            add_document(raw, min_length, stats, docs)
    if not docs:
        raise DataError(
            f"{', '.join(os.fspath(s) for s in sources)}: no usable documents ({stats.summary()})"
        )
    return docs, stats


def read_hf_dataset(
    name: str,
    split: str = "train",
    text_column: str = "text",
    config_name: str | None = None,
    limit: int | None = None,
) -> list[bytes]:
    """Documents from a Hugging Face dataset (needs the optional `datasets` package)."""
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError:
        raise DataError(f"hf:{name}: the optional 'datasets' package is not installed "
                        "(pip install datasets)") from None
    try:
        ds = datasets.load_dataset(name, config_name, split=split)
    except Exception as e:  # the library raises many kinds; report them all the same way
        raise DataError(f"hf:{name}: cannot load split {split!r} ({e})") from None
    if text_column not in ds.column_names:
        raise DataError(f"hf:{name}: no column {text_column!r} (columns: {', '.join(ds.column_names)})")
    out = []
    for i, value in enumerate(ds[text_column]):
        if limit is not None and i >= limit:
            break
        if isinstance(value, str):
            out.append(value.encode("utf-8", errors="surrogatepass"))
    return out


def read_hf_dataset_source(source: str) -> list[bytes]:
    """Parse `hf:NAME?split=S&column=C&config=CFG&limit=N` and read it."""
    spec = source[3:]
    name, _, query = spec.partition("?")
    if not name:
        raise DataError(f"{source}: missing dataset name (use hf:NAME?split=train&column=text)")
    q = {k: v[-1] for k, v in parse_qs(query).items()}
    unknown = set(q) - {"split", "column", "config", "limit"}
    if unknown:
        raise DataError(f"{source}: unknown option {sorted(unknown)[0]!r} (known: split, column, config, limit)")
    limit = None
    if "limit" in q:
        try:
            limit = int(q["limit"])
        except ValueError:
            raise DataError(f"{source}: limit must be an integer") from None
    return read_hf_dataset(name, split=q.get("split", "train"), text_column=q.get("column", "text"),
                           config_name=q.get("config"), limit=limit)


def split_documents(docs: Sequence[bytes], valid_fraction: float = 0.05,
                    min_valid_bytes: int = 1,
                    segment_bytes: int = 1 << 20) -> tuple[list[bytes], list[bytes]]:
    """Hold out validation bytes from every document (no byte appears in both halves).

    A document is cut into segments of about `segment_bytes` and the tail `valid_fraction` of each
    segment is held out, so a large file that joins several sources (news, then books, then code)
    is validated on all of them, not only on whatever comes last. A document shorter than one
    segment gives its tail, as before. The training pieces become separate documents, so no
    training window spans a held-out gap.
    """
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    if segment_bytes < 1:
        raise ValueError(f"segment_bytes must be >= 1, got {segment_bytes}")
    train, valid = [], []
    for d in docs:
        n_seg = max(1, len(d) // segment_bytes)
        bounds = [len(d) * i // n_seg for i in range(n_seg + 1)]
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            seg = d[lo:hi]
            cut = len(seg) - max(min_valid_bytes, int(len(seg) * valid_fraction))
            if cut < 1:
                train.append(seg)  # too short to split; keep it for training
                continue
            train.append(seg[:cut])
            valid.append(seg[cut:])
    if not valid:
        raise DataError("cannot hold out validation data: every document is too short")
    return train, valid
