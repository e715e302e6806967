"""The chat screen's one-shot commands, as a mixin of ChatScreen: copy, export, screenshot and
the setting toggles of the key table and the command palette."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from ..conversation import Conversation
from ..export import transcript_documents
from ..files import screenshot_or_report, write_text_or_report
from ..messages import SettingChanged
from ..settings import THEMES, Settings, export_dir

if TYPE_CHECKING:
    from textual.app import App

    from ..service import ModelService


class ChatCommands:
    """Mixed into ChatScreen, whose attributes it uses (declared here for the type checker)."""

    if TYPE_CHECKING:
        app: App
        conversation: Conversation
        service: ModelService | None
        settings: Settings

        @property
        def turns(self) -> list: ...
        def notify(self, message: str, **kw: Any) -> None: ...

    def action_copy_answer(self) -> None:
        data = self.conversation.last_answer()
        if not data:
            self.notify("No answer to copy yet.", severity="warning")
            return
        text = data.decode("utf-8", errors="replace")
        self.app.copy_to_clipboard(text)
        path = export_dir() / "last-answer.txt"
        if write_text_or_report(self.app, path, text, "a copy of the answer"):
            self.notify(f"Copied {len(data)} bytes (also saved to {path}, in case your terminal "
                        "ignores clipboard requests)", title="Copied")

    def action_export(self) -> None:
        if not self.turns:
            self.notify("Nothing to export yet.", severity="warning")
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        md_path = export_dir() / f"transcript-{stamp}.md"
        js_path = md_path.with_suffix(".json")
        svc = self.service
        md, doc = transcript_documents(self.conversation, svc.label if svc else "?",
                                       str(svc.path) if svc and svc.path else None, self.settings)
        if (write_text_or_report(self.app, md_path, md, "the transcript")
                and write_text_or_report(self.app, js_path, json.dumps(doc, indent=1, ensure_ascii=False),
                                         "the transcript")):
            self.notify(f"{md_path}\n{js_path}", title="Transcript exported")

    def _change(self, name: str, value: Any) -> None:
        """Settings changed from here go through the app, like the settings screen's."""
        self.app.post_message(SettingChanged(name, value))

    def action_toggle_theme(self) -> None:
        dark = self.app.current_theme.dark if self.app.current_theme else True
        self._change("theme", THEMES[1] if dark else THEMES[0])

    def action_toggle_entropy(self) -> None:
        self._change("show_entropy", not self.settings.show_entropy)

    def action_toggle_marks(self) -> None:
        self._change("show_patch_marks", not self.settings.show_patch_marks)

    def action_template(self, name: str) -> None:
        self._change("template", name)
        self.notify(f"Prompt template: {name}")

    def action_scheme(self, name: str) -> None:
        self._change("scheme", name)
        self.notify(f"Patching scheme: {name}")

    def action_screenshot_svg(self) -> None:
        path = screenshot_or_report(self.app, export_dir())
        if path is not None:
            self.notify(f"Saved {path}", title="Screenshot")
