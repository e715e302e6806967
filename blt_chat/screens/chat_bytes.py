"""The chat screen's byte cursor, as a mixin of ChatScreen: Ctrl+B (or a click on an answer)
puts a cursor on the answers' bytes; arrows move it (the transcript has focus meanwhile, so the
prompt box keeps its own keys); a panel beside the transcript shows the byte's alternatives as
generation reported them (both models' top 5, entropies, surprisal, patch, character); Esc
leaves it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widgets import Static

from ..alternatives import panel_text, view_of_top
from ..conversation import Conversation, Turn
from ..widgets.transcript_cursor import CursorMoved

if TYPE_CHECKING:
    from ..widgets.prompt import PromptBox
    from ..widgets.transcript import Transcript

NO_ANSWER = "No answer bytes to put the cursor on yet: ask something first."


def find_record(conversation: Conversation, record: Any) -> tuple[Turn, int] | None:
    """The answer turn holding `record` (by identity) and the byte's index in it."""
    for turn in conversation.walk():
        for i, r in enumerate(turn.records):
            if r is record:
                return turn, i
    return None


def byte_panel(turn: Turn, i: int) -> Text:
    """The panel for byte i of an answer: its alternatives as generation reported them."""
    rec = turn.records[i]
    data = bytes(turn.data[:len(turn.records)])
    same = [j for j, r in enumerate(turn.records) if r.patch_index == rec.patch_index]
    # numbered within the answer, as its start is (the model counts from the prompt's first byte)
    number = sorted({r.patch_index for r in turn.records}).index(rec.patch_index) + 1
    patch = (number, same[0], len(same))
    if rec.top is None:
        return Text(f"byte {i} of this answer (0x{data[i]:02x}), patch #{patch[0]} "
                    f"(start {patch[1]}, length {patch[2]}), entropy {rec.entropy:.2f} nats\n"
                    "No alternatives were recorded for this byte (an answer saved before blt-chat "
                    "kept them, or a step without them).")
    return panel_text(data, i, view_of_top(rec.top, rec.entropy), patch)


class ChatBytes:
    """Mixed into ChatScreen, whose attributes it uses (declared here for the type checker)."""

    if TYPE_CHECKING:
        conversation: Conversation
        transcript: Transcript
        prompt_box: PromptBox

        def notify(self, message: str, **kw: Any) -> None: ...
        def query_one(self, selector: str, expect_type: Any = None) -> Any: ...
        def set_focus(self, widget: Any) -> None: ...

    def action_byte_cursor(self) -> None:
        tr = self.transcript
        tr.flush()
        if tr.cursor is None and not tr.cursor_enter():
            self.notify(NO_ANSWER, severity="warning")
            return
        self.set_focus(tr)  # now: Widget.focus() waits a turn, and typed-ahead arrows would miss it

    def leave_byte_cursor(self) -> bool:
        """Esc: leave the cursor (True) or do nothing (False: not in cursor mode)."""
        if self.transcript.cursor is None:
            return False
        self.transcript.cursor_leave()
        return True

    def on_cursor_moved(self, message: CursorMoved) -> None:  # by name: @on misses mixins
        panel = self.query_one("#byte-panel", Static)
        found = find_record(self.conversation, message.record) if message.record is not None else None
        if found is None:
            panel.set_class(False, "-shown")
            if message.record is not None:  # a byte of a turn no longer shown
                self.transcript.cursor_leave()
            elif self.transcript.has_focus:
                self.prompt_box.focus()
            return
        panel.update(byte_panel(*found))
        panel.set_class(True, "-shown")
        if not self.transcript.has_focus:
            self.set_focus(self.transcript)

    @property
    def byte_panel_text(self) -> str:
        """What the panel shows ('' when hidden); for tests."""
        panel = self.query_one("#byte-panel", Static)
        return str(panel.render()) if panel.has_class("-shown") else ""
