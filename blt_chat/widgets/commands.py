"""Command palette provider: every app action, searchable by name."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

# (title, help, action name on the app)
ACTIONS = [
    ("Stop generation", "Stop the answer being generated (Esc)", "stop"),
    ("Regenerate last answer", "Generate the last answer again (F5 / Ctrl+R)", "regenerate"),
    ("Clear conversation", "Remove every turn (Ctrl+L)", "clear"),
    ("Copy last answer", "Copy to the clipboard, also saved to a file (F6)", "copy_answer"),
    ("Export transcript", "Write Markdown and JSON files (F7)", "export"),
    ("Open model…", "Pick a model directory or a recent model (F3 / Ctrl+O)", "open_model"),
    ("Patch inspector", "See entropies and patches of any text (F4)", "inspector"),
    ("Inspect last answer", "Open the patch inspector on the last answer", "inspect_last"),
    ("Settings", "Show or hide the settings panel (F2)", "settings"),
    ("Toggle light/dark theme", "Switch between the light and dark theme (F8)", "toggle_theme"),
    ("Toggle entropy colours", "Show or hide entropy backgrounds", "toggle_entropy"),
    ("Toggle patch marks", "Show or hide patch boundary marks", "toggle_marks"),
    ("Use raw continuation template", "Prompts are continued as raw text", "template('raw')"),
    ("Use chat transcript template", "Prompts are wrapped as User:/Assistant: turns", "template('chat')"),
    ("Help", "Key bindings and file locations (F1)", "help"),
    ("Screenshot", "Save an SVG screenshot of the app", "screenshot_svg"),
]


class BLTCommands(Provider):
    async def discover(self) -> Hits:
        for title, help_text, action in ACTIONS:
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in ACTIONS:
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self.app.run_action, action), help=help_text)
