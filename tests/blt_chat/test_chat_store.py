"""Conversation files without the UI: the tree round-trips exactly (every kept answer, every
branch, every byte's entropy, patch and probability), and unusable files are named for what
they are (corrupt, truncated, newer) and moved aside."""

from __future__ import annotations

import json
import math

import pytest

from blt_chat import store
from blt_chat.conversation import Conversation

from .chat_helpers import recorded_events


def answer(conv: Conversation, data: bytes, **meta) -> None:
    t = conv.begin_answer()
    t.data.extend(data)
    t.records = recorded_events(data)
    t.meta = {"model": {"label": "tiny", "weights": "abc123"}, "complete": True, **meta}
    t.note = f"■ end of text · {len(data)} bytes"


def branched() -> Conversation:
    """first -> 3 kept answers (the 2nd shown) -> second; first edited into "other" (shown)."""
    c = Conversation(title="")
    first = c.add_user("first")
    for text in (b"one", b"two \xff", b"three"):
        c.drop_answers()
        answer(c, text)
    c.cycle(c.turns[-1], -1)  # show the second answer
    c.add_user("second")
    answer(c, b"reply")
    c.turns[1].records[0].entropy = math.nan  # a byte without an entropy stays one
    c.edit(first, "other")
    answer(c, b"new branch")
    return c


def shape(c: Conversation) -> list:
    """Everything of every turn, NaN made comparable."""
    def num(x: float) -> float | str:
        return "nan" if math.isnan(x) else x

    return [(t.role, bytes(t.data), t.note, t.meta, t.parent.children.index(t), t.parent.active,
             [(r.byte, num(r.entropy), r.patch_start, r.patch_index, num(r.prob)) for r in t.records])
            for t in c.walk()]


def test_tree_round_trips_exactly(tmp_path):
    c = branched()
    assert [t.text for t in c.turns] == ["other", "new branch"]
    path = tmp_path / "c.json"
    path.write_text(store.conversation_text(c))
    back = store.read_conversation(path)
    assert back.id == c.id and back.display_title == "first" and back.created == c.created
    assert [t.text for t in back.turns] == ["other", "new branch"]
    assert shape(back) == shape(c)
    # the old branch is there: switch back to "first" and its shown (second) answer
    back.cycle(back.turns[0], -1)
    assert [t.text for t in back.turns][:3] == ["first", "two \ufffd", "second"]
    assert back.alternatives(back.turns[1]) == (2, 3)
    doc = json.loads(path.read_text())
    assert doc["format"] == store.FORMAT and doc["version"] == store.VERSION
    assert json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in the file"))


@pytest.mark.parametrize("kind,content", [
    ("corrupt", "{this is not json"),
    ("corrupt", '{"format": "something else", "version": 1}'),
    ("corrupt", '{"format": "blt-chat conversation", "version": 1, "turns": [{"role": "x"}]}'),
    ("truncated", None),
    ("newer", '{"format": "blt-chat conversation", "version": 99, "turns": []}'),
])
def test_unusable_files_are_named_and_set_aside(tmp_path, kind, content):
    path = tmp_path / "x.json"
    if content is None:  # a real file cut short, as a full disk or a copy that stopped leaves it
        content = store.conversation_text(branched())[:-40]
    path.write_text(content)
    with pytest.raises(store.ConversationFileError) as err:
        store.read_conversation(path)
    assert err.value.kind == kind
    summaries, bad = store.scan(tmp_path)
    assert summaries == [] and [e.path for e in bad] == [path]
    target = store.set_aside(path, kind)
    assert not path.exists() and target.read_text() == content
    assert target.name.startswith("x.json." + {"newer": "newer-version"}.get(kind, kind))
    assert store.scan(tmp_path) == ([], [])  # set aside: no longer listed
    assert str(path) in store.describe_problem(err.value)


def test_a_file_cut_anywhere_is_truncated(tmp_path):
    data = store.conversation_text(branched()).encode()
    assert b"\xe2\x96\xa0" in data  # "■" in the notes: a cut can fall inside a character too
    path = tmp_path / "cut.json"
    for end in [*range(1, len(data) - 1, 7), data.index(b"\xe2\x96\xa0") + 1]:
        path.write_bytes(data[:end])  # inside strings, numbers, characters, between items
        with pytest.raises(store.ConversationFileError) as err:
            store.read_conversation(path)
        assert err.value.kind == "truncated", (end, err.value.reason)


def test_scan_lists_newest_first_with_title_model_and_size(tmp_path):
    old, new = branched(), Conversation(title="Renamed")
    new.add_user("x")
    answer(new, b"y")
    old.updated, new.updated = 1000.0, 2000.0
    for c in (old, new):
        store.path_for(c, tmp_path).write_text(store.conversation_text(c))
    import os
    os.utime(store.path_for(old, tmp_path), (1, 1))
    os.utime(store.path_for(new, tmp_path), (2, 2))
    summaries, bad = store.scan(tmp_path)
    assert bad == [] and [s.title for s in summaries] == ["Renamed", "first"]
    assert summaries[0].model == "tiny" and summaries[0].turns == 2
    assert summaries[1].turns == 8 and summaries[1].size == store.path_for(old, tmp_path).stat().st_size
    store.mark_opened(store.path_for(old, tmp_path))  # opened now: the next start reopens it
    assert store.scan(tmp_path)[0][0].title == "first"
    assert store.scan(tmp_path / "missing") == ([], [])


def test_stale_temporary_files_of_killed_writes_are_removed(tmp_path):
    import os
    import time

    old, fresh = tmp_path / ".a.json.x1y2.tmp", tmp_path / ".b.json.z3.tmp"
    for p in (old, fresh):
        p.write_text('{"format": "blt-chat conv')
    os.utime(old, (time.time() - 2 * store.STALE_TEMP_S,) * 2)
    assert store.scan(tmp_path) == ([], [])
    assert not old.exists() and fresh.exists()  # a save in progress keeps its file
