"""Patch inspector: where does the model cut a text into patches, and why?

Entropies are computed once per text (in a thread worker); changing the scheme or a threshold
re-patches with `blt_model.patching.patch_starts` on the stored entropies. Shows the text coloured
by entropy with patch marks, an entropy-per-byte plot with the threshold line and patch starts
(the BLT paper's Figure 4, in the terminal), a patch table and statistics. Exports the view as SVG
and the patches as JSON.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, HorizontalScroll, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, Select, Static, TextArea
from textual.worker import get_current_worker

from ..files import screenshot_or_report, write_text_or_report
from ..keys import INSPECTOR_KEYS, bindings
from ..render import ByteRecord, entropy_color, visible_text
from ..service import INSPECT_MAX_BYTES, ModelService
from ..settings import FIELD_LABELS, check_field, export_dir
from ..widgets.text_area import SafeTextArea
from ..widgets.transcript import Transcript
from .closing import close
from .settings import numeric_input

if TYPE_CHECKING:
    from ..service import Analysis, Patching

PLOT_ROWS = 10
PLOT_MAX_BYTES = 4096
TABLE_MAX_ROWS = 5000
GUTTER = 8
BARS = " ▁▂▃▄▅▆▇█"
INSPECT_SCHEMES = [("entropy", "entropy"), ("monotonic", "monotonic"), ("fixed", "fixed"),
                   ("space", "space")]
INSPECT_FIELDS = ("threshold", "monotonic_threshold", "stride", "min_patch_size", "max_patch_size")
# short labels: six controls share one row, down to 80 columns
INSPECT_LABELS = {"threshold": "θ (nats)", "monotonic_threshold": "θr (nats)", "stride": "Stride",
                  "min_patch_size": "Min patch", "max_patch_size": "Max patch"}
SAMPLE_TEXT = ("Byte Latent Transformer groups bytes into patches. Where the next byte is hard "
               "to predict, a new patch starts: 2024-12-13, Pagnoni et al.")


def plot_text(patching: Patching, threshold: float | None, data: bytes, rows: int = PLOT_ROWS) -> Text:
    """Entropy per byte as bars; threshold as a line; patch starts marked below the axis."""
    n = min(len(patching.entropies), PLOT_MAX_BYTES)
    ents = [h if math.isfinite(h) else 0.0 for h in patching.entropies[:n]]
    top = max([4.0, threshold or 0.0] + ents)
    top = math.ceil(top * 2) / 2
    th_row = None
    if threshold is not None and math.isfinite(threshold):
        th_row = rows - 1 - min(rows - 1, int(threshold / top * rows))
    line_style = Style(color="#ff5f5f")
    start_bg = Style(bgcolor="#3a2a44")
    t = Text(no_wrap=True, overflow="crop")
    heights = [round(h / top * rows * 8) for h in ents]
    colors = [entropy_color(h) for h in ents]
    for r in range(rows):
        if r == 0:
            label = f"{top:5.1f} ┤"
        elif r == th_row:
            label = f"θ{threshold:4.2f} ┤"
        elif r == rows - 1:
            label = "  0.0 ┤"
        else:
            label = "      │"
        t.append(label.rjust(GUTTER - 1) + " ", style="dim")
        from_bottom = rows - 1 - r
        for i in range(n):
            fill = max(0, min(8, heights[i] - from_bottom * 8))
            start = patching.starts[i]
            if fill == 0 and r == th_row:
                t.append("─", style=line_style + start_bg if start else line_style)
                continue
            c = colors[i]
            st = Style(color=c.rich_color if c else None)
            if start:
                st = st + start_bg
            t.append(BARS[fill], style=st)
        t.append("\n")
    # the bytes themselves, shaded per patch
    t.append(" " * (GUTTER - 2) + "└─", style="dim")
    text_cells = []
    for i in range(n):
        ch = visible_text(data[i:i + 1]) if data[i] < 0x80 else "·"
        text_cells.append(ch if len(ch) == 1 and ch not in "\n" else "·")
    for i, ch in enumerate(text_cells):
        shade = "#2e2e3e" if patching.patch_of[i] % 2 else "#1c1c28"
        t.append(ch, style=Style(bgcolor=shade, color="#e0e0e0"))
    t.append("\n")
    t.append(" " * GUTTER)
    for i in range(n):
        t.append("▲" if patching.starts[i] else " ", style=Style(color="#ff5fd7", bold=True))
    if len(patching.entropies) > n:
        t.append(f"  … plot shows the first {n} of {len(patching.entropies)} bytes", style="dim")
    return t


def patches_json(analysis: Analysis, patching: Patching) -> dict:
    data = analysis.data
    cfg = patching.config
    return {
        "format": "blt-chat patches v1",
        "bytes": len(data),
        "patch_config": cfg.to_dict() if cfg is not None else None,
        "n_patches": patching.n_patches,
        "mean_patch_size": patching.mean_patch_size,
        "entropies": [h if math.isfinite(h) else None for h in patching.entropies],
        "patches": [
            {
                "index": p["index"], "start": p["start"], "length": p["length"],
                "text": data[p["start"]:p["start"] + p["length"]].decode("utf-8", errors="replace"),
                "bytes_hex": data[p["start"]:p["start"] + p["length"]].hex(),
                "mean_entropy": p["mean_entropy"] if math.isfinite(p["mean_entropy"]) else None,
            }
            for p in patching.patches
        ],
    }


class InspectorScreen(Screen):
    CSS_PATH = "inspector.tcss"
    BINDINGS = bindings(INSPECTOR_KEYS)

    def __init__(self, service: ModelService, text: str | None = None, analysis: Analysis | None = None,
                 scheme: str = "entropy", values: dict | None = None,
                 last_answer: Callable[[], bytes] = bytes, dark: bool = True) -> None:
        super().__init__()
        self.service = service
        self.initial_text = text
        self.analysis: Analysis | None = analysis
        self.patching: Patching | None = None
        self.scheme = scheme
        self.values = dict(values or {})
        self.last_answer = last_answer
        self.dark = dark
        self.repatch_count = 0
        self.last_export: Path | None = None
        self.plot_rows = PLOT_ROWS

    def compose(self) -> ComposeResult:
        text = self.initial_text if self.initial_text is not None else (
            self.analysis.data.decode("utf-8", errors="replace") if self.analysis else SAMPLE_TEXT)
        yield SafeTextArea(text, id="insp-input", soft_wrap=True)
        with Horizontal(id="insp-actions"):
            yield Input(placeholder="file path, then Enter", id="insp-file", compact=True)
            for label, bid in (("Analyse F5", "insp-analyse"), ("Last ^L", "insp-last"),
                               ("Clear ^N", "insp-clear"), ("SVG ^S", "insp-svg"),
                               ("JSON ^G", "insp-json")):
                yield Button(label, id=bid, compact=True,
                             variant="primary" if bid == "insp-analyse" else "default")
        with Horizontal(id="insp-controls"):
            with Vertical():
                yield Label("Scheme")
                yield Select(INSPECT_SCHEMES, value=self.scheme, allow_blank=False, id="insp-scheme",
                             compact=True)
            for name in INSPECT_FIELDS:
                with Vertical():
                    yield Label(INSPECT_LABELS[name])
                    yield numeric_input(name, self.values.get(name), f"insp-{name}",
                                        "none" if name == "max_patch_size" else "")
        yield Static("", id="insp-error")
        yield Static("Paste text above and press F5.", id="insp-stats")
        with HorizontalScroll(id="insp-plot-scroll"):
            yield Static("", id="insp-plot")
        with Horizontal(id="insp-lower"):
            yield Transcript(id="insp-text")
            yield DataTable(id="insp-table", zebra_stripes=True, cursor_type="row")
        yield Footer(show_command_palette=False, compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#insp-table", DataTable)
        table.add_columns("#", "start", "len", "mean H", "text")
        self.query_one("#insp-text", Transcript).set_options(show_entropy=True, show_marks=True,
                                                             dark=self.dark)
        if self.analysis is not None:
            self.repatch()
        else:  # the text in the box (the sample at first) is analysed at once
            self.action_analyse()

    def on_resize(self) -> None:
        # the plot gets the rows its box has: bars, then the bytes, the marks and a scrollbar
        rows = max(3, self.query_one("#insp-plot-scroll").size.height - 3)
        if rows != self.plot_rows:
            self.plot_rows = rows
            if self.patching is not None:
                self._render_plot()

    # ---------------------------------------------------------- patch config from the controls
    def patch_config(self):
        """The config the controls describe; ValueError names the first invalid field."""
        cfg = self.service.config.patching
        scheme = self.query_one("#insp-scheme", Select).value
        changes: dict = {}
        if scheme == "monotonic":
            changes.update(scheme="entropy", use_monotonic=True)
        elif scheme == "entropy":
            changes.update(scheme="entropy", use_monotonic=False)
        else:
            changes.update(scheme=scheme)
        for name in INSPECT_FIELDS:
            v, error = check_field(name, self.query_one(f"#insp-{name}", Input).value)
            if error:
                raise ValueError(f"{FIELD_LABELS[name]}: {error}")
            key = {"threshold": "entropy_threshold"}.get(name, name)
            if name == "max_patch_size":
                changes[key] = None if not v else v
            elif v is not None:
                changes[key] = v
        mx = changes.get("max_patch_size", cfg.max_patch_size)
        mn = changes.get("min_patch_size", cfg.min_patch_size)
        if mx is not None and mx < mn:
            changes["max_patch_size"] = mn
        return cfg.replace(**changes)

    def threshold_value(self) -> float | None:
        cfg = self.patching.config if self.patching else None
        if cfg is None or cfg.scheme != "entropy" or cfg.use_monotonic:
            return None
        return cfg.entropy_threshold

    # ---------------------------------------------------------- analyse / re-patch
    def action_analyse(self) -> None:
        text = self.query_one("#insp-input", TextArea).text
        self.analyse_bytes(text.encode("utf-8"))

    def analyse_bytes(self, data: bytes) -> None:
        if not data:
            self.show_error("Nothing to analyse: paste some text first.")
            return
        self.show_error("")
        self.query_one("#insp-stats", Static).update(f"Computing entropies for {len(data)} bytes …")
        self._analyse_worker(data)

    @work(thread=True, exclusive=True, group="inspect", exit_on_error=False)
    def _analyse_worker(self, data: bytes) -> None:
        try:
            analysis = self.service.analyze(data)
        except Exception as e:  # shown to the user, never a crash
            self.app.call_from_thread(self.show_error, f"Analysis failed: {type(e).__name__}: {e}")
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._analysis_ready, analysis)

    def _analysis_ready(self, analysis: Analysis) -> None:
        if not self.is_attached:
            return
        self.analysis = analysis
        self.patching = None  # belongs to the previous text, even if re-patching fails now
        self.repatch()

    def repatch(self) -> None:
        """Re-patch the stored entropies with the current controls (no model call)."""
        if self.analysis is None:
            return
        try:
            cfg = self.patch_config()
        except ValueError as e:
            self.show_error(f"Not re-patched: {e}")
            return
        self.patching = ModelService.repatch(self.analysis, cfg)
        self.repatch_count += 1
        self.show_error("")
        self._render_all()

    def _render_plot(self) -> None:
        a, p = self.analysis, self.patching
        if a is None or p is None:
            return
        self.query_one("#insp-plot", Static).update(plot_text(p, self.threshold_value(), a.data,
                                                              rows=self.plot_rows))

    def _render_all(self) -> None:
        a, p = self.analysis, self.patching
        assert a is not None and p is not None
        cfg = p.config
        ents = [h for h in p.entropies if math.isfinite(h)]
        mean_h = sum(ents) / len(ents) if ents else float("nan")
        scheme = "monotonic" if cfg.scheme == "entropy" and cfg.use_monotonic else cfg.scheme
        rule = {
            "entropy": f"start where H > θ = {cfg.entropy_threshold:.3g}",
            "monotonic": f"start where H_t − H_(t−1) > θr = {cfg.monotonic_threshold:.3g}",
            "fixed": f"every {cfg.stride} bytes",
            "space": "after a run of space-like bytes",
        }[scheme]
        stats = Text()
        stats.append(f"{len(a.data)} bytes", style="bold")
        stats.append(f" · {p.n_patches} patches", style="bold")
        stats.append(f" · mean patch {p.mean_patch_size:.2f} B · mean H {mean_h:.2f} nats · {scheme}: {rule}")
        stats.append(f" · min {cfg.min_patch_size} max {cfg.max_patch_size or '∞'}")
        if a.truncated:
            stats.append(" · (text truncated)", style="bold #ff8700")
        if self.service.random_weights:
            stats.append(" · model: random weights (untrained)", style="#ff8700")
        self.query_one("#insp-stats", Static).update(stats)
        self._render_plot()
        tr = self.query_one("#insp-text", Transcript)
        tr.clear()
        records = [ByteRecord(byte=b, entropy=p.entropies[i], patch_start=p.starts[i], patch_index=p.patch_of[i])
                   for i, b in enumerate(a.data)]
        tr.add_answer(records, header=f"{p.n_patches} patches")
        table = self.query_one("#insp-table", DataTable)
        table.clear()
        for rec in p.patches[:TABLE_MAX_ROWS]:
            chunk = a.data[rec["start"]:rec["start"] + rec["length"]]
            mh = rec["mean_entropy"]
            c = entropy_color(mh)
            table.add_row(str(rec["index"]), str(rec["start"]), str(rec["length"]),
                          Text(f"{mh:.2f}" if math.isfinite(mh) else "–",
                               style=Style(bgcolor=c.rich_color if c else None)),
                          Text(visible_text(chunk).replace("\n", "\\n")))

    def show_error(self, text: str) -> None:
        err = self.query_one("#insp-error", Static)
        err.update(Text(text))
        err.set_class(bool(text), "-shown")

    @property
    def error_text(self) -> str:
        return str(self.query_one("#insp-error", Static).render())

    @property
    def stats_text(self) -> str:
        return str(self.query_one("#insp-stats", Static).render())

    # ---------------------------------------------------------- controls
    @on(Select.Changed, "#insp-scheme")
    def _scheme_changed(self) -> None:
        self.repatch()

    @on(Input.Changed)
    def _value_changed(self, event: Input.Changed) -> None:
        # re-patching is cheap (no model call), so complete valid values apply as typed
        name = (event.input.id or "")[5:]
        if name not in INSPECT_FIELDS:
            return
        _value, error = check_field(name, event.value)
        if error:
            self.show_error(f"{FIELD_LABELS[name]}: {error} — not applied")
            return
        self.repatch()

    @on(Input.Submitted, "#insp-file")
    def _open_file(self, event: Input.Submitted) -> None:
        path = Path(event.value.strip()).expanduser()
        try:
            with open(path, "rb") as f:
                data = f.read(INSPECT_MAX_BYTES + 1)
        except (OSError, ValueError) as e:  # ValueError: a path with a NUL byte
            self.show_error(f"Cannot open {path}: {getattr(e, 'strerror', None) or e}")
            return
        self.query_one("#insp-input", TextArea).text = data[:4096].decode("utf-8", errors="replace")
        self.analyse_bytes(data)

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        actions = {"insp-analyse": self.action_analyse, "insp-last": self.action_last_answer,
                   "insp-clear": self.action_clear_text, "insp-svg": self.action_export_svg,
                   "insp-json": self.action_export_json}
        action = actions.get(event.button.id or "")
        if action is not None:
            action()

    def action_last_answer(self) -> None:
        data = self.last_answer()
        if not data:
            self.show_error("No answer yet: ask something in the chat first.")
            return
        self.inspect_text(data.decode("utf-8", errors="replace"))

    def inspect_text(self, text: str) -> None:
        self.query_one("#insp-input", TextArea).text = text
        self.analyse_bytes(text.encode("utf-8"))

    def action_clear_text(self) -> None:
        box = self.query_one("#insp-input", TextArea)
        box.clear()
        box.focus()
        self.show_error("")

    def action_export_svg(self) -> None:
        name = f"inspector-{time.strftime('%Y%m%d-%H%M%S')}.svg"
        path = screenshot_or_report(self.app, export_dir(), name)
        if path is not None:
            self.last_export = path
            self.notify(f"Saved view to {path}", title="Exported SVG")

    def action_export_json(self) -> None:
        if self.analysis is None or self.patching is None:
            self.show_error("Nothing to export yet: analyse a text first.")
            return
        path = export_dir() / f"patches-{time.strftime('%Y%m%d-%H%M%S')}.json"
        doc = json.dumps(patches_json(self.analysis, self.patching), indent=1, ensure_ascii=False)
        if write_text_or_report(self.app, path, doc, "the patches"):
            self.last_export = path
            self.notify(f"Saved patches to {path}", title="Exported JSON")

    def action_close(self) -> None:
        close(self)
