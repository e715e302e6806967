"""Model picker: a directory tree showing folders (model folders, those holding config.json,
are marked ◆), a path field, and the recently used models. Choosing one asks the app to load it
in the background; errors are shown here and the current model stays."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ..messages import LoadRequested
from ..service import is_model_dir
from .closing import close


class ModelDirectoryTree(DirectoryTree):
    """Directories only (no hidden ones); model directories are marked."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        out = []
        for p in paths:
            try:
                if p.is_dir() and not p.name.startswith((".", "__")):
                    out.append(p)
            except OSError:
                continue
        return out

    def render_label(self, node, base_style, style):  # type: ignore[override]
        label = super().render_label(node, base_style, style)
        data = node.data
        if data is not None and is_model_dir(Path(data.path)):
            return Text.assemble(("◆ ", "bold #87d787"), label)
        return label


class ModelPicker(ModalScreen[None]):
    CSS_PATH = "model_picker.tcss"
    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, root: Path, recent: list[str], current: str | None = None) -> None:
        super().__init__()
        self.root = root
        self.recent = recent
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            # paths are shown as plain Text: "[" in a directory name is not markup
            yield Static(Text(f"Open a model directory (◆ = holds config.json) — current: "
                              f"{self.current or '?'}"), id="picker-title")
            with Horizontal(id="picker-body"):
                yield ModelDirectoryTree(self.root, id="picker-tree")
                with Vertical(id="recent-box"):
                    yield Label("Recent models")
                    yield OptionList(*self._recent_options(), id="picker-recent")
            with Horizontal(id="picker-path-row"):
                yield Input(placeholder="path to a model directory", id="picker-path")
                yield Button("Load", variant="primary", id="picker-load")
                yield Button("Cancel", id="picker-cancel")
            yield Static("Select a ◆ directory or type a path, then Enter.", id="picker-status")

    def _recent_options(self) -> list[Option]:
        opts = []
        for p in self.recent:
            ok = is_model_dir(Path(p))
            opts.append(Option(Text(p if ok else f"{p} (missing)"), id=p, disabled=not ok))
        if not opts:
            opts.append(Option("(none yet)", disabled=True))
        return opts

    def on_mount(self) -> None:
        self.query_one("#picker-path", Input).focus()

    # ---------------------------------------------------------- choosing
    def request(self, path: Path | str) -> None:
        path = Path(path).expanduser()
        self.set_status(f"Loading {path} …")
        self.post_message(LoadRequested(path))

    def set_status(self, text: str, error: bool = False) -> None:
        st = self.query_one("#picker-status", Static)
        st.update(Text(text))
        st.set_class(error, "-error")

    @property
    def status_text(self) -> str:
        return str(self.query_one("#picker-status", Static).render())

    @on(DirectoryTree.DirectorySelected)
    def _dir_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        self.query_one("#picker-path", Input).value = str(event.path)
        if is_model_dir(event.path):
            self.request(event.path)

    @on(OptionList.OptionSelected, "#picker-recent")
    def _recent_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.request(event.option.id)

    @on(Input.Submitted, "#picker-path")
    def _path_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.request(event.value.strip())

    @on(Button.Pressed, "#picker-load")
    def _load_pressed(self) -> None:
        value = self.query_one("#picker-path", Input).value.strip()
        if value:
            self.request(value)
        else:
            self.set_status("Type or select a directory first.", error=True)

    @on(Button.Pressed, "#picker-cancel")
    def action_close(self) -> None:
        close(self)
