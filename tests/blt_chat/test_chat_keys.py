"""The key table is written once (blt_chat/keys.py): the bindings, the help screen, the palette
and the README's tables must all agree with it."""

from __future__ import annotations

import re
from pathlib import Path

from blt_chat.keys import (
    BRANCH_KEYS,
    CHAT_KEYS,
    COMPARE_KEYS,
    CONVERSATION_KEYS,
    INSPECTOR_KEYS,
    SETTINGS_KEYS,
    SIDE_BY_SIDE_KEYS,
    branch_key_rows,
    chat_key_rows,
    compare_key_rows,
    conversation_key_rows,
    inspector_key_rows,
    key_display,
    palette_commands,
    settings_key_rows,
    side_by_side_key_rows,
    two_models_key_rows,
)
from blt_chat.screens import ChatScreen, InspectorScreen
from blt_chat.screens.branches import BranchesScreen
from blt_chat.screens.compare import CompareScreen
from blt_chat.screens.conversations import ConversationsScreen
from blt_chat.screens.help import help_markdown
from blt_chat.screens.settings import SettingsScreen
from blt_chat.screens.side_by_side import SideBySideScreen

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_tables() -> list[list[tuple[str, str]]]:
    """The `| key | action |` tables of the README's app section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The chat app"):text.index("\n## ", text.index("## The chat app") + 1)]
    tables = []
    for block in re.findall(r"\| key \| action \|\n\|---\|---\|\n((?:\|.*\|\n?)+)", section):
        rows = [tuple(c.strip() for c in line.strip().strip("|").split("|", 1))
                for line in block.strip().splitlines()]
        tables.append(rows)
    return tables


def test_readme_key_tables_match_the_bindings():
    chat, inspector, compare, conversations, branches = readme_tables()
    assert chat == chat_key_rows()
    assert inspector == inspector_key_rows()
    assert compare == compare_key_rows()
    assert conversations == conversation_key_rows()
    assert branches == branch_key_rows()


def binding_rows(screen_cls) -> list[tuple[str, str]]:
    return [(b.key, b.action) for b in screen_cls.BINDINGS]


def test_settings_and_side_by_side_bind_their_tables():
    assert binding_rows(SettingsScreen) == [(k.keys, k.action) for k in SETTINGS_KEYS]
    assert binding_rows(SideBySideScreen) == [(k.keys, k.action) for k in SIDE_BY_SIDE_KEYS]
    for screen_cls in (SettingsScreen, SideBySideScreen):
        for b in screen_cls.BINDINGS:
            assert hasattr(screen_cls, f"action_{b.action.split('(')[0]}"), b.action


def test_screens_bind_exactly_the_key_table():
    assert binding_rows(ChatScreen) == [(k.keys, k.action) for k in CHAT_KEYS]
    assert binding_rows(InspectorScreen) == [(k.keys, k.action) for k in INSPECTOR_KEYS]
    assert binding_rows(ConversationsScreen) == [(k.keys, k.action) for k in CONVERSATION_KEYS if k.action]
    assert binding_rows(BranchesScreen) == [(k.keys, k.action) for k in BRANCH_KEYS if k.action]
    assert binding_rows(CompareScreen) == [(k.keys, k.action) for k in COMPARE_KEYS if k.action]
    for screen_cls in (ChatScreen, InspectorScreen, ConversationsScreen, BranchesScreen, CompareScreen):
        for name in {b.action.split("(")[0] for b in screen_cls.BINDINGS}:
            assert hasattr(screen_cls, f"action_{name}"), name


def test_help_and_palette_come_from_the_table():
    text = help_markdown("/cfg/settings.json", "/data/exports", "/data/conversations")
    assert "/data/conversations" in text
    for key, action in (chat_key_rows() + inspector_key_rows() + compare_key_rows() + conversation_key_rows()
                        + branch_key_rows() + two_models_key_rows() + settings_key_rows()
                        + side_by_side_key_rows()):
        assert f"| {key} | {action} |" in text
    commands = {action for _t, _h, action in palette_commands()}
    assert {k.action for k in CHAT_KEYS if k.palette} <= commands
    for _title, _help, action in palette_commands():
        assert hasattr(ChatScreen, f"action_{action.split('(')[0]}"), action


def test_key_display():
    assert key_display("f3,ctrl+o") == "F3 / Ctrl+O"
    assert key_display("escape") == "Esc"
