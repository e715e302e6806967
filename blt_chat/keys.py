"""The key table, written once. The chat screen's and the inspector's BINDINGS, the help screen,
the command palette and the README's key tables all come from these lists (a test compares the
README with them)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    keys: str  # Textual key spec, e.g. "f5,ctrl+r"
    action: str  # action name on the screen that owns the binding ("" = handled by a widget)
    label: str  # short footer label
    help: str  # what it does (help screen, README, palette)
    id: str = ""  # binding id for the settings file's "keymap"
    show: bool = True  # shown in the footer
    priority: bool = False
    palette: str = ""  # command palette title ("" = not in the palette)


# Keys the prompt box handles itself (documented, but not Bindings).
PROMPT_KEYS = [
    Key("enter", "", "", "send the prompt"),
    Key("ctrl+j", "", "", "new line in the prompt (Shift+Enter too, where the terminal reports it)"),
    Key("up,down", "", "", "in an empty prompt: earlier prompts of this conversation"),
]

CHAT_KEYS = [
    Key("escape", "stop", "Stop", "stop generation (within one byte); closes any open screen first",
        id="stop", show=False, palette="Stop generation"),
    # F-keys are priority bindings: the footer lists priority bindings first, so all F-keys
    # are, to keep them in order (and the prompt's TextArea binds F6/F7 itself). F9 and F10 are
    # not in the footer: F1-F8 fill it at 80 columns (the welcome, help and palette show them).
    Key("f1", "help", "Help", "help: keys and file locations", id="help", priority=True,
        palette="Help"),
    Key("f2", "settings", "Settings", "settings: patching scheme and thresholds, sampling, device, "
        "prompt template, theme", id="settings", priority=True, palette="Settings"),
    Key("f3,ctrl+o", "open_model", "Model", "open a model (directory tree, recent models)",
        id="open_model", priority=True, palette="Open model…"),
    Key("f4", "inspector", "Inspect", "patch inspector (paste text, open a file, inspect the last "
        "answer)", id="inspector", priority=True, palette="Patch inspector"),
    Key("f5,ctrl+r", "regenerate", "Regen", "regenerate the last answer (the earlier answers are "
        "kept)", id="regenerate", priority=True, palette="Regenerate last answer"),
    Key("f6", "copy_answer", "Copy", "copy the last answer (clipboard, and a file as fallback)",
        id="copy_answer", priority=True, palette="Copy last answer"),
    Key("f7", "export", "Export", "export the transcript of the current branch (Markdown and JSON)",
        id="export", priority=True, palette="Export transcript"),
    Key("f8", "toggle_theme", "Theme", "light/dark theme", id="toggle_theme", priority=True,
        palette="Toggle light/dark theme"),
    Key("f9", "conversations", "Chats", "conversations: open, rename, delete, start a new one",
        id="conversations", show=False, priority=True, palette="Conversations…"),
    Key("f10", "branches", "Branches", "branches: kept answers, edited prompts; edit an earlier prompt",
        id="branches", show=False, priority=True, palette="Branches / edit an earlier prompt"),
    Key("ctrl+n", "next_answer", "Next", "next kept answer of the last prompt (it shows 2/3)",
        id="next_answer", show=False, palette="Next kept answer"),
    Key("ctrl+l", "clear", "New", "new conversation (the current one is kept: F9 lists it)", id="clear",
        show=False, palette="New conversation"),
    Key("ctrl+b", "byte_cursor", "Bytes", "byte cursor on the answers (a click puts it too; arrows move it): "
        "each byte's top 5 alternatives of both models, entropies, surprisal, patch, character; Esc "
        "leaves it", id="byte_cursor", show=False, palette="Byte cursor: every byte's alternatives"),
]

# Textual's own app keys (App.BINDINGS / App.COMMAND_PALETTE_BINDING), listed for the help.
APP_KEYS = [
    Key("ctrl+p", "command_palette", "Palette", "command palette (every action)"),
    Key("ctrl+q", "quit", "Quit", "quit"),
]

INSPECTOR_KEYS = [
    Key("escape", "close", "Back", "back to the chat; while an analysis runs, stops it first"),
    Key("f5,ctrl+r", "analyse", "Analyse", "analyse the text in the box"),
    Key("ctrl+l", "last_answer", "Last", "inspect the last answer"),
    Key("ctrl+n", "clear_text", "Clear", "clear the text box"),
    Key("ctrl+s", "export_svg", "SVG", "export the view as SVG"),
    Key("ctrl+g", "export_json", "JSON", "export the patches as JSON"),
    Key("f6", "compare", "Compare", "compare patchings: two to four configurations side by side",
        priority=True),
    Key("f7", "colour_by", "Colour", "colour by: entropy, the BLT's surprisal of each byte, or their gap",
        priority=True),
    Key("f8", "byte_cursor", "Bytes", "byte cursor on the plot (a click puts it too): each byte's top 5 "
        "alternatives of both models, entropies, surprisal, patch, character; Esc leaves it",
        priority=True),
    # not in the footer, which the keys above fill at 80 columns; the help and the README list it
    Key("f9", "two_models", "Models", "two models, one text: load a second model and see each byte's bits "
        "under both, their difference and each model's bits per byte", show=False, priority=True),
    Key("left", "move_cursor(-1)", "", "with the byte cursor: previous byte", show=False, priority=True),
    Key("right", "move_cursor(1)", "", "with the byte cursor: next byte", show=False, priority=True),
]

# The inspector's compare screen (F6 there); "" = handled by the table.
COMPARE_KEYS = [
    Key("escape", "close", "Back", "back to the inspector"),
    Key("f6", "add_row", "Add", "add a configuration (a copy of the selected one; at most four)",
        priority=True),
    Key("f7", "remove_row", "Remove", "remove the selected configuration (two stay)", priority=True),
    Key("ctrl+g", "export_json", "JSON", "export every configuration's patches and numbers as JSON"),
    Key("up,down", "", "", "in the table: select a configuration; the controls above edit it"),
]

# The two-models screen (F9 in the inspector); "" = handled by the path field.
TWO_MODELS_KEYS = [
    Key("escape", "close", "Back", "stop a running pass and go back to the inspector"),
    Key("enter", "", "", "in the path field: load that model directory as model B"),
    Key("f7", "colour_by", "Colour", "colour by: model A's bits, model B's bits, or B − A", priority=True),
    Key("f8", "plot_spans", "Lines", "plot bits per byte per line or per fixed window", priority=True),
    Key("ctrl+s", "export_svg", "SVG", "export the view as SVG"),
    Key("ctrl+g", "export_json", "JSON", "export both models' per-byte bits and totals as JSON"),
]

# The conversations screen (F9) and the branches screen (F10); "" = handled by the list widget.
CONVERSATION_KEYS = [
    Key("escape", "close", "Back", "back to the chat"),
    Key("enter", "", "Open", "open the selected conversation"),
    Key("n", "new", "New", "start a new conversation"),
    Key("r", "rename", "Rename", "rename the selected conversation"),
    Key("d,delete", "delete", "Delete", "delete the selected conversation (asks first)"),
]

# The settings panel (F2): values apply when a field is committed (Enter, Tab, leaving it).
SETTINGS_KEYS = [
    Key("escape,f2", "close", "Close", "close the settings (the focused field's value is applied)"),
    Key("f5,ctrl+r", "regenerate", "Regen", "apply these values and regenerate the last answer with "
        "them (the earlier answers are kept)"),
]

BRANCH_KEYS = [
    Key("escape", "close", "Back", "back to the chat, showing the chosen branch"),
    Key("left", "switch(-1)", "Prev", "previous alternative of the selected turn (1/3 shows which)"),
    Key("right", "switch(1)", "Next", "next alternative of the selected turn; the branch below follows"),
    Key("enter", "", "Edit", "edit the selected prompt: Enter in the prompt box starts a new branch"),
    Key("s", "side_by_side", "Side by side", "the selected answer next to another kept answer of the "
        "same prompt"),
]

SIDE_BY_SIDE_KEYS = [
    Key("escape", "close", "Back", "back"),
    Key("left", "other(-1)", "Prev", "the previous kept answer on the right"),
    Key("right", "other(1)", "Next", "the next kept answer on the right"),
]

# Palette commands without a key: (title, help, action on the chat screen).
EXTRA_COMMANDS = [
    ("Rename conversation", "Give the current conversation a title", "rename_conversation"),
    ("Delete conversation", "Delete the current conversation's file (asks first)",
     "delete_conversation"),
    ("Previous kept answer", "Show the previous kept answer of the last prompt", "next_answer(-1)"),
    ("Inspect last answer", "Open the patch inspector on the last answer", "inspect_last"),
    ("Toggle entropy colours", "Show or hide entropy backgrounds", "toggle_entropy"),
    ("Toggle patch marks", "Show or hide patch boundary marks", "toggle_marks"),
    ("Use raw continuation template", "Prompts are continued as raw text", "template('raw')"),
    ("Use chat transcript template", "Prompts are wrapped as User:/Assistant: turns",
     "template('chat')"),
    ("Patching: model default", "Use the model's own patching settings", "scheme('model')"),
    ("Patching: entropy threshold", "A patch starts where the entropy exceeds θ",
     "scheme('entropy')"),
    ("Patching: entropy + monotonic", "A patch starts where the entropy rises by more than θr",
     "scheme('monotonic')"),
    ("Patching: fixed stride", "A patch every `stride` bytes", "scheme('fixed')"),
    ("Patching: space", "A patch starts after a run of spaces", "scheme('space')"),
    ("Screenshot", "Save an SVG screenshot of the app", "screenshot_svg"),
    ("Kept answers side by side", "The last answer next to another kept answer of its prompt "
     "(F10, then S, for any answer)", "side_by_side"),
]


def bindings(keys: list[Key]) -> list[Binding]:
    return [Binding(k.keys, k.action, k.label, show=k.show, priority=k.priority, id=k.id or None,
                    tooltip=k.help, key_display=key_display(k.keys.split(",")[0]))
            for k in keys if k.action]


def key_display(keys: str) -> str:
    """"f3,ctrl+o" -> "F3 / Ctrl+O" (the spelling of the help screen and the README)."""
    def one(key: str) -> str:
        special = {"escape": "Esc", "enter": "Enter", "up": "Up", "down": "Down", "left": "Left",
                   "right": "Right", "delete": "Delete"}
        return "+".join(special.get(p, p.upper() if p[:1] == "f" and p[1:].isdigit() else p.title())
                        for p in key.split("+"))
    return " / ".join(one(k) for k in keys.split(","))


def key_rows(keys: list[Key]) -> list[tuple[str, str]]:
    return [(key_display(k.keys), k.help) for k in keys]


def chat_key_rows() -> list[tuple[str, str]]:
    return key_rows(PROMPT_KEYS + CHAT_KEYS + APP_KEYS)


def inspector_key_rows() -> list[tuple[str, str]]:
    return key_rows(INSPECTOR_KEYS)


def compare_key_rows() -> list[tuple[str, str]]:
    return key_rows(COMPARE_KEYS)


def two_models_key_rows() -> list[tuple[str, str]]:
    return key_rows(TWO_MODELS_KEYS)


def conversation_key_rows() -> list[tuple[str, str]]:
    return key_rows(CONVERSATION_KEYS)


def settings_key_rows() -> list[tuple[str, str]]:
    return key_rows(SETTINGS_KEYS)


def side_by_side_key_rows() -> list[tuple[str, str]]:
    return key_rows(SIDE_BY_SIDE_KEYS)


def branch_key_rows() -> list[tuple[str, str]]:
    return key_rows(BRANCH_KEYS)


def key_hint(keys: list[Key]) -> str:
    """One line of a screen's keys, for screens without a footer."""
    return " · ".join(f"{key_display(k.keys)} {k.label}" for k in keys)


def palette_commands() -> list[tuple[str, str, str]]:
    """(title, help, action) for every command palette entry of the chat screen."""
    out = [(k.palette, f"{k.help[:1].upper()}{k.help[1:]} ({key_display(k.keys)})", k.action)
           for k in CHAT_KEYS if k.palette]
    return out + EXTRA_COMMANDS


def markdown_table(rows: list[tuple[str, str]]) -> str:
    return "\n".join(["| key | action |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])
