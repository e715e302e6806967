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
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Input, Select, Static, TextArea
from textual.worker import get_current_worker

from ..compare import PATCH_FIELDS, config_from_values, default_second
from ..files import screenshot_or_report, write_text_or_report
from ..inspect_view import PLOT_ROWS, patches_json, plot_text
from ..keys import INSPECTOR_KEYS, bindings
from ..render import entropy_color, visible_text
from ..service import INSPECT_MAX_BYTES, ModelService
from ..settings import FIELD_LABELS, check_field, export_dir
from ..widgets.entropy_plot import EntropyPlot
from ..widgets.error_line import ErrorLine
from ..widgets.key_views import KeyFooter
from ..widgets.patch_controls import patch_controls, read_controls
from ..widgets.text_area import SafeTextArea
from ..widgets.transcript import Transcript
from .closing import close
from .inspector_cursor import ByteCursor
from .inspector_look import LookInside, throttled

if TYPE_CHECKING:
    from textual.worker import Worker

    from ..service import Analysis, Patching

TABLE_MAX_ROWS = 5000
INSPECT_FIELDS = PATCH_FIELDS  # the numeric controls (tests drive them by id)
SAMPLE_TEXT = ("Byte Latent Transformer groups bytes into patches. Where the next byte is hard "
               "to predict, a new patch starts: 2024-12-13, Pagnoni et al.")


class InspectorScreen(ByteCursor, LookInside, Screen):
    CSS_PATH = "inspector.tcss"
    BINDINGS = bindings(INSPECTOR_KEYS)

    def __init__(self, service: ModelService, text: str | None = None, analysis: Analysis | None = None,
                 scheme: str = "entropy", values: dict | None = None,
                 last_answer: Callable[[], bytes] = bytes, dark: bool = True,
                 colour_mode: str = "entropy") -> None:
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
        self.colour_mode = colour_mode
        self._size_for: Analysis | None = None  # the text whose compressed size is wanted
        self.compressed: tuple | None = None  # (analysis, bytes with this model or None)
        self.cursor: int | None = None  # the byte cursor (F8), None outside its mode
        self.alternatives: tuple | None = None  # (analysis, patch config, Alternatives)
        self._alt_pending: tuple | None = None  # (analysis, patch config) being computed
        self.size_text = ""
        self.model_b: ModelService | None = None  # the two-models view's second model (F9), kept

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
        yield from patch_controls("insp", self.scheme, self.values)
        yield ErrorLine(id="insp-error")
        yield Static("Paste text above and press F5.", id="insp-stats")
        yield Static("", id="insp-legend")
        with Vertical(id="insp-plot-scroll"):
            yield EntropyPlot(id="insp-plot")
        with Horizontal(id="insp-lower"):
            yield Transcript(id="insp-text")
            yield DataTable(id="insp-table", zebra_stripes=True, cursor_type="row")
            yield Static("", id="insp-alt")
        yield KeyFooter()

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
        return config_from_values(self.service.config.patching, *read_controls(self, "insp"))

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
        self._stop_background()  # they hold the model's lock; the new text needs it
        self._analysis_started(self._analyse_worker(data), min(len(data), INSPECT_MAX_BYTES))

    @work(thread=True, exclusive=True, group="inspect", exit_on_error=False)
    def _analyse_worker(self, data: bytes) -> None:
        worker = get_current_worker()
        progress = throttled(self.app, worker, lambda done, total: self._analysis_progress(worker, done, total))
        try:
            analysis = self.service.analyze(data, should_stop=lambda: worker.is_cancelled, progress=progress)
        except Exception as e:  # shown to the user, never a crash
            self.app.call_from_thread(self._analysis_failed, worker, f"Analysis failed: {type(e).__name__}: {e}")
            return
        if analysis is not None and not worker.is_cancelled:
            self.app.call_from_thread(self._analysis_ready, worker, analysis)

    def _analysis_ready(self, worker: Worker, analysis: Analysis) -> None:
        if not self.is_attached or worker is not self._analysing:  # stopped (Esc) or replaced
            return
        self._analysing = None
        self.analysis = analysis
        self._size_for = analysis
        self._want_size()
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
        self.query_one("#insp-plot", EntropyPlot).show(plot_text(p, self.threshold_value(), a.data,
                                                                 rows=self.plot_rows), self.plot_rows)
        self._show_cursor()

    def _show_cursor(self) -> None:
        """The byte cursor's column on the laid-out plot (no new layout: cheap on every key)."""
        p = self.patching
        i = self.cursor if p is not None and self.cursor is not None and self.cursor < len(p.starts) else None
        self.query_one("#insp-plot", EntropyPlot).set_cursor(i, bool(p.starts[i]) if i is not None else False)

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
        self._want_surprisals()
        tr.add_answer(self._records(), header=f"{p.n_patches} patches")
        self._render_legend()
        if self.cursor is not None:
            self.set_cursor(self.cursor)  # a new text or patching: its alternatives, the cursor kept in range
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
        self.query_one("#insp-error", ErrorLine).show(text)

    @property
    def error_text(self) -> str:
        return self.query_one("#insp-error", ErrorLine).text

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
        doc = patches_json(self.analysis, self.patching)
        bits = self._current_surprisals()
        if bits is not None:  # computed (colour by surprisal, or the byte cursor): the BLT's p per byte
            doc["actual_byte_probability"] = [2.0 ** -b for b in bits]
        doc = json.dumps(doc, indent=1, ensure_ascii=False)
        if write_text_or_report(self.app, path, doc, "the patches"):
            self.last_export = path
            self.notify(f"Saved patches to {path}", title="Exported JSON")

    def action_compare(self) -> None:
        """The analysed text under the current configuration and a second one, side by side."""
        if self.analysis is None or self.patching is None:
            self.show_error("Nothing to compare yet: analyse a text first.")
            return
        from .compare import CompareScreen

        cfg = self.patching.config
        self.app.push_screen(CompareScreen(self.service, self.analysis, [cfg, default_second(cfg)]))

    def action_two_models(self) -> None:
        """The analysed text under this model and a second one (loaded there, kept here)."""
        if self.analysis is None:
            self.show_error("Nothing to score yet: analyse a text first.")
            return
        from .two_models import TwoModelsScreen

        self._stop_background()  # they hold the model's lock; resumed on return
        self.app.push_screen(TwoModelsScreen(self.service, self.analysis.data, self.model_b,
                                             keep=lambda svc: setattr(self, "model_b", svc), dark=self.dark))

    def action_close(self) -> None:
        # Esc stops a running analysis (or alternatives pass) first, then leaves the byte cursor
        if self.stop_analysis() or self.stop_alternatives() or self.leave_cursor():
            return
        self._stop_background()  # a long compression would hold the model from the chat
        close(self)
