"""The chat screen's memory, as a mixin of ChatScreen: saving the conversation (after each answer,
at most once a second while one streams), reopening the last one at start, the conversations
screen's actions, kept answers (Ctrl+N cycles them) and branches (F10; an edited earlier prompt
starts one). The file format and the tree are Textual-free (store.py, conversation.py)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import store
from ..conversation import Conversation, Turn
from ..files import write_text_or_report
from ..keys import CHAT_KEYS, key_display
from ..settings import NUMERIC_FIELDS, Settings
from .branches import BranchesScreen, open_side_by_side
from .conversations import Choice, ConversationsScreen
from .dialogs import ConfirmScreen, TextPromptScreen

if TYPE_CHECKING:
    from ..service import ModelService

SAMPLING_FIELDS = ("temperature", "top_k", "top_p", "repetition_penalty", "max_new_bytes", "seed",
                   "template")
PATCHING_FIELDS = ("scheme", *(n for n in NUMERIC_FIELDS if n not in SAMPLING_FIELDS))
INTERRUPTED = "■ interrupted: blt-chat ended while this answer streamed"
EDIT_TITLE = "Editing an earlier prompt — Enter starts a new branch (the old one stays: F10) · Esc cancels"


def _key(action: str) -> str:
    return next((key_display(k.keys.split(",")[0]) for k in CHAT_KEYS if k.action == action), "")


def answer_meta(svc: ModelService, settings: Settings, patch_config: Any) -> dict[str, Any]:
    """What an answer records about how it was made (the model, sampling and patching)."""
    patching = dataclasses.asdict(patch_config) if dataclasses.is_dataclass(patch_config) else {}
    return {"model": svc.model_record(),
            "sampling": store.plain_settings((n, getattr(settings, n)) for n in SAMPLING_FIELDS),
            "patching": {**store.plain_settings((n, getattr(settings, n)) for n in PATCHING_FIELDS),
                         "used": store.plain_settings(patching.items())},
            "created": time.time(), "complete": False}


class ChatHistory:
    """Mixed into ChatScreen, whose attributes it uses (declared here for the type checker)."""

    if TYPE_CHECKING:
        from textual.app import App

        from ..widgets.prompt import PromptBox
        from ..widgets.status import GenStats
        from ..widgets.transcript import Transcript

        app: App
        conversation: Conversation
        service: ModelService | None
        generating: bool
        n_turns: int
        counters: GenStats
        transcript: Transcript
        prompt_box: PromptBox
        _state: str

        def notify(self, message: str, **kw: Any) -> None: ...
        def action_stop(self) -> None: ...
        def _publish(self) -> None: ...
        def show_welcome(self) -> None: ...

    editing: Turn | None = None
    _saved_revision = -1
    _last_save = 0.0
    _save_failing = False

    @property
    def persist(self) -> bool:
        return bool(getattr(self.app, "save_enabled", True))

    @property
    def conversation_path(self) -> Path:
        return store.path_for(self.conversation)

    # ------------------------------------------------------------------ saving
    def save_conversation(self) -> bool:
        """Write the conversation if it changed since the last write. A failed write is one
        toast (not one a second while an answer streams); the conversation stays in memory."""
        conv = self.conversation
        if not self.persist or not conv.root.children or conv.revision == self._saved_revision:
            return True
        path, revision = self.conversation_path, conv.revision
        ok = write_text_or_report(self.app, path, store.conversation_text(conv), "the conversation",
                                  notify=not self._save_failing,
                                  note=" — it stays open here (F7 exports it elsewhere)")
        self._last_save = time.monotonic()
        if ok:
            self._saved_revision = revision
            if self._save_failing:
                self.notify(f"The conversation is saved again ({path})", title="Saved")
        self._save_failing = not ok
        return ok

    def save_while_streaming(self) -> None:
        """Called by the screen's periodic flush during generation."""
        if time.monotonic() - self._last_save >= store.SAVE_EVERY_S:
            self.conversation.touch()  # the answer has grown (bytes do not touch it one by one)
            self.save_conversation()

    def answer_started(self, turn: Turn, svc: ModelService, settings: Settings, cfg: Any) -> str:
        """Record how the answer `turn` is made; returns its header."""
        turn.meta = answer_meta(svc, settings, cfg)
        return self.turn_header(turn)

    def answer_finished(self, turn: Turn | None, reason: str) -> None:
        if turn is not None:
            turn.meta.update(complete=True, reason=reason)
            self.conversation.touch()
        self.save_conversation()

    def action_side_by_side(self) -> None:
        """The last answer next to another kept answer of its prompt."""
        open_side_by_side(self, self.conversation, self.conversation.last_answer_turn())

    # ------------------------------------------------------------------ showing
    def turn_header(self, turn: Turn) -> str:
        base = "you ›" if turn.role == "user" else "blt ›"
        pos, n = self.conversation.alternatives(turn)
        if n < 2:
            return base
        last = turn.role == "assistant" and turn is self.conversation.last_answer_turn()
        hint = f"{_key('next_answer')} next" if last else f"{_key('branches')} branches"
        return f"{base} {pos}/{n} · {hint}"

    def rebuild_transcript(self) -> None:
        tr = self.transcript
        tr.clear()
        if not self.conversation.turns:
            self.show_welcome()
        for t in self.conversation.turns:
            if t.role == "user":
                tr.add_user(t.text, header=self.turn_header(t))
            else:
                tr.add_answer(t.records, header=self.turn_header(t), note=t.note or None)
        self.n_turns = len(self.conversation.turns)

    def show_conversation(self, conv: Conversation, *, keep_old: bool = True) -> None:
        """Replace the conversation on screen (the old one is saved first, unless deleted)."""
        if self.generating:
            self.action_stop()
        if keep_old:
            self.save_conversation()
        for t in conv.walk():  # answers a crash or kill cut short say so
            if t.role == "assistant" and t.meta and not t.meta.get("complete", True):
                t.note = INTERRUPTED + (f" · {t.note}" if t.note else "")
                t.meta.update(complete=True, reason="interrupted")
        self.conversation = conv
        self._saved_revision = conv.revision
        self.cancel_edit()
        self.counters.reset()
        self._state = "idle"
        self.rebuild_transcript()
        self._publish()

    # ------------------------------------------------------------------ opening
    def report_bad_files(self, bad: list[store.ConversationFileError]) -> None:
        """Unusable conversation files are moved aside, each with a toast naming both names."""
        for err in bad:
            if err.kind == "unreadable":
                self.notify(f"Could not read {err.path}: {err.reason}", severity="error", timeout=12)
                continue
            try:
                where = f"moved aside to {store.set_aside(err.path, err.kind)}"
            except OSError as e:
                where = f"could not move it aside ({e.strerror or e}); it is skipped"
            self.notify(f"{store.describe_problem(err)} — {where}", severity="warning", timeout=15)

    def reopen_last(self) -> None:
        """At start: the most recent conversation that can be read."""
        if not self.persist:
            return
        summaries, bad = store.scan()
        self.report_bad_files(bad)
        for s in summaries:
            if self.open_path(s.path, quiet=True):
                return

    def open_path(self, path: Path, quiet: bool = False) -> bool:
        try:
            conv = store.read_conversation(path)
        except store.ConversationFileError as e:
            self.report_bad_files([e])
            return False
        except OSError as e:
            self.notify(f"Could not read {path}: {e.strerror or e}", severity="error", timeout=12)
            return False
        self.show_conversation(conv)
        store.mark_opened(path)
        if not quiet:
            self.notify(f"Opened «{conv.display_title}»", title="Conversation")
        return True

    def new_conversation(self, keep_old: bool = True) -> None:
        self.show_conversation(Conversation(), keep_old=keep_old)

    # ------------------------------------------------------------------ the conversations screen
    def action_conversations(self) -> None:
        self.save_conversation()
        summaries, bad = store.scan()
        self.report_bad_files(bad)
        self.app.push_screen(ConversationsScreen(summaries, self.conversation_path, store.conversations_dir()),
                             callback=self._conversations_closed)

    def _conversations_closed(self, choice: Choice | None) -> None:
        if choice is None:
            return
        what, path = choice
        if what == "new":
            self.new_conversation()
        elif path is not None and path != self.conversation_path:
            self.open_path(path)

    def _refresh_list(self) -> None:
        screen = self.app.screen
        if isinstance(screen, ConversationsScreen):
            summaries, bad = store.scan()
            self.report_bad_files(bad)
            screen.show(summaries, self.conversation_path)

    def rename_conversation(self, path: Path, title: str) -> None:
        if path == self.conversation_path:
            self.conversation.title = title
            self.conversation.touch()
            self.save_conversation()
        else:
            try:
                conv = store.read_conversation(path)
            except (store.ConversationFileError, OSError) as e:
                self.notify(f"Could not rename {path}: {e}", severity="error", timeout=10)
                return
            conv.title = title
            write_text_or_report(self.app, path, store.conversation_text(conv), "the conversation")
        self._refresh_list()

    def delete_conversation(self, path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as e:
            self.notify(f"Could not delete {path}: {e.strerror or e}", severity="error", timeout=10)
            return
        if path == self.conversation_path:
            self.new_conversation(keep_old=False)
        self.notify(f"Deleted {path}", title="Conversation")
        self._refresh_list()

    def action_rename_conversation(self) -> None:
        path = self.conversation_path

        def done(title: str | None) -> None:
            if title is not None and title.strip():
                self.rename_conversation(path, title.strip())

        self.app.push_screen(TextPromptScreen("Title of this conversation:", self.conversation.display_title),
                             callback=done)

    def action_delete_conversation(self) -> None:
        path = self.conversation_path
        if not path.exists():
            self.notify("This conversation has not been saved yet; Ctrl+L starts a new one.",
                        severity="warning")
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.delete_conversation(path)

        self.app.push_screen(ConfirmScreen(f"Delete «{self.conversation.display_title}»?\n"
                                           f"The file {path} is removed.", yes="Delete"), callback=done)

    # ------------------------------------------------------------------ kept answers and branches
    def action_next_answer(self, step: int = 1) -> None:
        if self.generating:
            self.notify("Still generating — press Esc to stop first.", severity="warning")
            return
        turn = self.conversation.last_answer_turn()
        if turn is None or self.conversation.alternatives(turn)[1] < 2:
            self.notify(f"Only one answer here: {_key('regenerate')} generates another (both are kept).",
                        severity="warning")
            return
        self.conversation.cycle(turn, step)
        self.rebuild_transcript()
        self.save_conversation()
        self._publish()

    def action_branches(self) -> None:
        if self.generating:
            self.notify("Still generating — press Esc to stop first.", severity="warning")
            return
        if not self.conversation.turns:
            self.notify("No conversation yet.", severity="warning")
            return
        self.app.push_screen(BranchesScreen(self.conversation), callback=self._branches_closed)

    def _branches_closed(self, turn: Turn | None) -> None:
        self.rebuild_transcript()
        self.save_conversation()
        self._publish()
        if turn is not None:
            self.start_edit(turn)

    def start_edit(self, turn: Turn) -> None:
        """Put an earlier prompt in the prompt box; Enter then starts a branch in its place."""
        self.editing = turn
        box = self.prompt_box
        box.text = turn.text
        box.move_cursor(box.document.end)
        box.border_title = EDIT_TITLE
        box.add_class("-editing")
        box.focus()

    def cancel_edit(self) -> bool:
        if self.editing is None:
            return False
        self.editing = None
        box = self.prompt_box
        box.clear()
        box.border_title = box.DEFAULT_TITLE
        box.remove_class("-editing")
        return True

    def add_prompt(self, text: str) -> None:
        """A sent prompt: a new turn, or (while editing) a new branch in place of an earlier one."""
        turn = self.editing
        if turn is not None and any(t is turn for t in self.conversation.turns):
            self.conversation.edit(turn, text)
            self.cancel_edit()
            self.rebuild_transcript()
            return
        self.cancel_edit()
        user = self.conversation.add_user(text)
        self.transcript.add_user(text, header=self.turn_header(user))
