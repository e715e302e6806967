"""Conversation files, without any UI: one JSON file per conversation in
`<data dir>/conversations/` (`BLT_CHAT_DATA_DIR` moves the data dir).

A file holds the whole tree (every kept answer and every branch) with a format version. Answers
keep their bytes' entropies, patch starts, patch indices and probabilities, so a reopened
conversation is coloured exactly as it was streamed, and each byte's alternatives (stored_top.py). Files are written atomically (the UI goes
through files.py so a failed write is a toast); a file that cannot be read is moved aside, never
fatal: `read_conversation` raises ConversationFileError and `set_aside` renames the file.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .conversation import Conversation, StoredByte, Turn
from .settings import data_dir
from .stored_top import pack_tops, unpack_tops

FORMAT = "blt-chat conversation"
VERSION = 1
SUFFIX = ".json"
SAVE_EVERY_S = 1.0  # while an answer streams: a crash loses at most this much


class ConversationFileError(Exception):
    """A conversation file that cannot be used; `kind` is "corrupt", "truncated" or "newer"."""

    def __init__(self, path: Path, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.kind = kind
        self.reason = reason


def conversations_dir() -> Path:
    return data_dir() / "conversations"


def path_for(conv: Conversation, directory: Path | None = None) -> Path:
    return (directory or conversations_dir()) / f"{conv.id}{SUFFIX}"


# ---------------------------------------------------------------- writing
def _num(x: Any) -> float | None:
    """JSON has no NaN: a missing entropy or probability is null."""
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def _dumps(value: Any) -> str:
    # compact: the per-byte columns are most of the file
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def turn_json(t: Turn) -> str:
    """A turn's own fields as JSON (its place in the tree apart). Kept on the turn once it can
    no longer change (a prompt, a finished answer): a save while an answer streams then encodes
    only that answer (measured: 50 finished answers of 512 bytes cost 170 ms per save before)."""
    if t.saved_json is not None:
        return t.saved_json
    doc: dict[str, Any] = {"role": t.role, "bytes_hex": bytes(t.data).hex()}
    if t.role == "assistant":
        recs = t.records
        doc.update(note=t.note, meta=t.meta,
                   entropy=[_num(r.entropy) for r in recs],
                   patch_start="".join("1" if r.patch_start else "0" for r in recs),
                   patch_index=[int(r.patch_index) for r in recs],
                   prob=[_num(getattr(r, "prob", None)) for r in recs])
        top = pack_tops(recs)
        if top is not None:
            doc["top"] = top
    text = _dumps(doc)
    if t.role == "user" or t.meta.get("complete"):
        t.saved_json = text
    return text


def conversation_text(conv: Conversation) -> str:
    """The whole tree, parents before children (`parent` is an index into `turns`, -1 = top)."""
    index: dict[int, int] = {}
    turns = []
    for t in conv.walk():
        index[id(t)] = len(turns)
        place = f'{{"parent":{index.get(id(t.parent), -1)},"active":{int(t.active)},'
        turns.append(place + turn_json(t)[1:])
    head = {"format": FORMAT, "version": VERSION, "id": conv.id, "title": conv.title,
            "created": conv.created, "updated": conv.updated, "root_active": conv.root.active,
            "model": last_model_label(conv)}
    return _dumps(head)[:-1] + ',"turns":[' + ",".join(turns) + "]}"


def last_model_label(conv: Conversation) -> str:
    for t in reversed(conv.turns):
        model = t.meta.get("model") if t.role == "assistant" else None
        if isinstance(model, dict) and model.get("label"):
            return str(model["label"])
    return ""


# ---------------------------------------------------------------- reading
def _fail(path: Path, reason: str, kind: str = "corrupt") -> ConversationFileError:
    return ConversationFileError(path, kind, reason)


def _floats(values: Any, n: int) -> list[float]:
    if not isinstance(values, list) or len(values) != n:
        return [math.nan] * n
    return [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
            for v in values]


def _records(doc: dict[str, Any], data: bytes) -> list[StoredByte]:
    n = len(data)
    starts = doc.get("patch_start")
    index = doc.get("patch_index")
    if not isinstance(starts, str) or len(starts) != n:
        starts = "0" * n
    if not isinstance(index, list) or len(index) != n or not all(isinstance(i, int) for i in index):
        index = [0] * n
    ents, probs = _floats(doc.get("entropy"), n), _floats(doc.get("prob"), n)
    tops = unpack_tops(doc["top"], n) if "top" in doc else [None] * n
    return [StoredByte(b, ents[i], starts[i] == "1", index[i], probs[i], tops[i]) for i, b in enumerate(data)]


def from_document(doc: Any, path: Path) -> Conversation:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _fail(path, "not a blt-chat conversation")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _fail(path, "no format version")
    if version > VERSION:
        raise _fail(path, f"format version {version} is newer than this blt-chat reads ({VERSION})",
                    "newer")
    items = doc.get("turns")
    if not isinstance(items, list):
        raise _fail(path, "no turns")
    conv = Conversation(id=str(doc.get("id") or path.stem), title=str(doc.get("title") or ""),
                        created=_number_or(doc.get("created"), time.time()))
    conv.updated = _number_or(doc.get("updated"), conv.created)
    nodes: list[Turn] = []
    try:
        for i, item in enumerate(items):
            role, parent = item["role"], item["parent"]
            if role not in ("user", "assistant") or not isinstance(parent, int) or not -1 <= parent < i:
                raise ValueError(f"turn {i} is malformed")
            data = bytes.fromhex(item["bytes_hex"])
            t = Turn(role, bytearray(data), active=int(item.get("active", 0)))
            if role == "assistant":
                t.note = str(item.get("note") or "")
                t.meta = item["meta"] if isinstance(item.get("meta"), dict) else {}
                t.records = _records(item, data)
            t.parent = nodes[parent] if parent >= 0 else conv.root
            t.parent.children.append(t)
            nodes.append(t)
    except (KeyError, TypeError, ValueError) as e:
        raise _fail(path, f"malformed turn ({e})") from None
    conv.root.active = int(doc.get("root_active", 0)) if isinstance(doc.get("root_active"), int) else 0
    conv.follow()
    return conv


def _number_or(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


_PARTIAL_TOKEN = re.compile(r'\s*(?:"(?:[^"\\]|\\.)*\\?|-?[0-9.eE+-]*|t(?:r(?:ue?)?)?|f(?:a(?:l(?:se?)?)?)?'
                            r'|n(?:u(?:ll?)?)?)\s*\Z')


def read_conversation(path: Path) -> Conversation:
    """The conversation in `path`; ConversationFileError when it cannot be used (OSError when it
    cannot be read at all)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:  # cut inside a character, or not text at all
        kind = "truncated" if e.reason == "unexpected end of data" else "corrupt"
        raise _fail(path, f"not UTF-8 ({e.reason})", kind) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        # a file cut short (a full disk, a copy that stopped) fails on its last token, which
        # JSON reports where that token starts (an unclosed string, "nul", "0.")
        kind = "truncated" if _PARTIAL_TOKEN.match(text, e.pos) else "corrupt"
        raise _fail(path, f"{'cut short' if kind == 'truncated' else 'not valid JSON'} ({e.msg})",
                    kind) from None
    return from_document(doc, path)


def set_aside(path: Path, kind: str) -> Path:
    """Rename an unusable file out of the way (`x.json.corrupt-<time>`); OSError when it cannot."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    label = {"newer": "newer-version"}.get(kind, kind)
    target = path.with_name(f"{path.name}.{label}-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.{label}-{stamp}-{n}")
        n += 1
    os.replace(path, target)
    return target


def describe_problem(err: ConversationFileError) -> str:
    """The toast for a file that was set aside (or could not be)."""
    what = {"newer": "is from a newer blt-chat", "truncated": "is truncated"}.get(err.kind, "is corrupt")
    return f"Conversation file {err.path} {what}: {err.reason}"


# ---------------------------------------------------------------- listing
@dataclass
class Summary:
    path: Path
    id: str
    title: str
    model: str
    updated: float
    size: int  # bytes on disk
    turns: int  # every turn of the tree, kept answers and branches included


STALE_TEMP_S = 600  # a temporary file this old was left by a write that never finished


def remove_stale_temps(directory: Path, now: float | None = None) -> list[Path]:
    """Temporary files of writes that a kill cut short (`.NAME.json.XXXX.tmp`, atomic writes'
    naming); fresh ones may belong to a save in progress and stay. Best effort."""
    now = time.time() if now is None else now
    removed = []
    try:
        for p in directory.glob(f".*{SUFFIX}.*.tmp"):
            if now - p.stat().st_mtime > STALE_TEMP_S:
                p.unlink()
                removed.append(p)
    except OSError:
        pass
    return removed


def files(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.glob(f"*{SUFFIX}") if p.is_file())
    except OSError:  # no directory yet, or not one: no conversations
        return []


def scan(directory: Path | None = None) -> tuple[list[Summary], list[ConversationFileError]]:
    """Every readable conversation, newest first, and the files that could not be used."""
    out: list[Summary] = []
    bad: list[ConversationFileError] = []
    directory = directory or conversations_dir()
    remove_stale_temps(directory)
    for path in files(directory):
        try:
            conv = read_conversation(path)
            size = path.stat().st_size
        except ConversationFileError as e:
            bad.append(e)
            continue
        except OSError as e:
            bad.append(ConversationFileError(path, "unreadable", e.strerror or str(e)))
            continue
        out.append(Summary(path, conv.id, conv.display_title, last_model_label(conv),
                           max(conv.updated, _mtime(path)), size, sum(1 for _ in conv.walk())))
    out.sort(key=lambda s: s.updated, reverse=True)
    return out, bad


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def mark_opened(path: Path) -> None:
    """Make `path` the most recent conversation, so the next start reopens it (best effort: a
    read-only directory only means the choice is not remembered)."""
    try:
        os.utime(path)
    except OSError:
        pass


def format_size(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KB" if n < 1024 ** 2 else f"{n / 1024 ** 2:.1f} MB"


def plain_settings(values: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Settings as JSON values (numbers, strings, booleans, null)."""
    return {k: v if v is None or isinstance(v, (bool, int, float, str)) else str(v) for k, v in values}
