"""The conversation logic without Textual: turns, templates, stop-string holdback, history."""

import subprocess
import sys

from blt_chat.conversation import (
    CHAT_STOP,
    Conversation,
    PromptHistory,
    StopHoldback,
)
from blt_chat.render import ByteRecord


def events(data: bytes) -> list[ByteRecord]:
    return [ByteRecord(byte=b) for b in data]


def test_templates():
    c = Conversation()
    c.add_user("hi")
    assert c.build_prompt("raw") == b"hi"
    assert c.build_prompt("chat") == b"User: hi\nAssistant:"
    c.begin_answer().data.extend(b" hello ")
    c.add_user("more")
    assert c.build_prompt("chat") == b"User: hi\nAssistant: hello\nUser: more\nAssistant:"
    assert c.build_prompt("raw") == b"more"
    assert c.user_prompts() == ["hi", "more"]
    assert c.last_answer() == b" hello "


def test_regenerate_drops_answers_only():
    c = Conversation()
    assert not c.drop_answers()
    c.add_user("q")
    c.begin_answer()
    c.begin_answer()
    assert c.drop_answers() and [t.role for t in c] == ["user"]


def test_stop_holdback_hides_the_stop_string():
    h = StopHoldback(CHAT_STOP)
    shown = []
    for ev in events(b"ok\nUs then\nUser: more"):
        shown += h.push(ev)
        if h.done:
            break
    assert bytes(e.byte for e in shown) == b"ok\nUs then"
    assert h.done and h.release() == []


def test_stop_holdback_releases_a_partial_match_at_the_end():
    h = StopHoldback(CHAT_STOP)
    shown = []
    for ev in events(b"a\nUse"):
        shown += h.push(ev)
    assert bytes(e.byte for e in shown) == b"a"
    assert bytes(e.byte for e in h.release()) == b"\nUse" and not h.done
    raw = StopHoldback(b"")
    assert [e.byte for e in raw.push(ByteRecord(byte=10))] == [10]


def test_prompt_history_from_an_empty_box():
    h = PromptHistory()
    prompts = ["one", "two", "three"]
    assert h.step(prompts, "typed", -1) is None  # not empty: Up moves the cursor
    assert h.step(prompts, "", 1) is None  # Down in an empty box: nothing to recall
    assert h.step(prompts, "", -1) == "three"
    assert h.step(prompts, "three", -1) == "two"
    assert h.step(prompts, "two", -1) == "one"
    assert h.step(prompts, "one", -1) == "one"  # the oldest stays
    assert h.step(prompts, "one", 1) == "two"
    assert h.step(prompts, "two", 1) == "three"
    assert h.step(prompts, "three", 1) == ""  # past the newest: empty again
    assert h.step(prompts, "two edited", -1) is None  # edited: no longer browsing
    assert h.step([], "", -1) is None


def test_conversation_module_does_not_import_textual_or_torch():
    code = ("import sys, blt_chat.conversation, blt_chat.store; "
            "print(any(m.split('.')[0] in ('textual', 'torch') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
