"""Two models, one text (the inspector's F9): the inspected text scored by the app's model (A)
and a second model (B, loaded here from a directory and kept by the inspector), each byte
coloured by A's bits, B's bits or B − A, with each model's bits per byte (those of
`compute_bits_per_byte`) and a plot of bits per byte per line or per fixed window.

Scoring runs in a thread worker through ModelService.byte_bits (it holds each model's lock),
reports progress and stops with Esc. Pure logic lives in blt_chat/plots.py."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from ..colour_by import DIFFERENCE, SCALES, Scale
from ..files import screenshot_or_report, write_text_or_report
from ..keys import TWO_MODELS_KEYS, bindings
from ..plots import (
    COLOUR_MODES,
    SPAN_KINDS,
    along,
    mode_values,
    next_of,
    totals_line,
    two_models_json,
)
from ..render import NO_BUCKET, ByteRecord
from ..service import ModelService, model_dir_problem
from ..settings import export_dir
from ..widgets.error_line import ErrorLine
from ..widgets.key_views import KeyFooter
from ..widgets.plot import plot_widget, plt_of
from ..widgets.transcript import Transcript
from .closing import close

GROUP = "two-models"
SERIES_COLOURS = {"A": "cyan", "B": "orange"}


def colour_scale(mode: str) -> Scale:
    """The scale of a colour mode: each model's bits on the surprisal scale, B − A diverging."""
    if mode == "B − A":
        return DIFFERENCE
    return dataclasses.replace(SCALES["surprisal"], mode=f"model {mode}'s bits",
                               meaning=f"model {mode}'s bits for the actual byte, −log2 p")


class TwoModelsScreen(Screen):
    CSS_PATH = "two_models.tcss"
    BINDINGS = bindings(TWO_MODELS_KEYS)

    def __init__(self, service: ModelService, data: bytes, second: ModelService | None = None,
                 keep: Callable[[ModelService], None] = lambda svc: None, dark: bool = True) -> None:
        super().__init__()
        self.services: dict[str, ModelService | None] = {"A": service, "B": second}
        self.data = data
        self.keep = keep  # told of a newly loaded model B (the inspector keeps it between openings)
        self.dark = dark
        self.bits: dict[str, list[float] | None] = {"A": None, "B": None}
        self.progress: dict[str, str] = {}  # role -> "scoring … 40%" while a pass runs
        self.colour_mode = "B − A" if second is not None else "A"
        self.span_kind = "line" if data.count(b"\n") >= 2 else "window"
        self._passes: dict[str, tuple] = {}  # role -> (service, worker) of a running pass
        self.loading_path: Path | None = None
        self.last_export: Path | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="tm-title")
        with Horizontal(id="tm-path-row"):
            yield Static("Model B:", id="tm-path-label")
            yield Input(placeholder="path to a model directory, then Enter", id="tm-path", compact=True)
        yield ErrorLine(id="tm-error")
        yield Static("", id="tm-totals")
        yield Static("", id="tm-legend")
        with Horizontal(id="tm-body"):
            yield Transcript(id="tm-text")
            yield plot_widget("tm-plot")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#tm-text", Transcript).set_options(show_entropy=True, show_marks=False, dark=self.dark)
        self._render_all()
        self._score()
        if self.services["B"] is None:
            self.query_one("#tm-path", Input).focus()

    # ---------------------------------------------------------- scoring
    def _score(self) -> None:
        """Score, in the background, each model whose bits are missing (one worker per model:
        each holds its own model's lock; a new model B stops the pass of the one it replaces)."""
        for role, svc in self.services.items():
            if svc is None or self.bits[role] is not None or self._passes.get(role, (None,))[0] is svc:
                continue
            old = self._passes.pop(role, None)
            if old is not None:
                old[1].cancel()
            self.progress[role] = "scoring …"
            self._passes[role] = (svc, self._score_worker(role, svc))
        self._render_totals()

    @work(thread=True, group=GROUP, exit_on_error=False)
    def _score_worker(self, role: str, svc: ModelService) -> None:
        worker = get_current_worker()
        shown = [0.0]

        def progress(done: int) -> None:
            now = time.monotonic()
            if now - shown[0] > 0.25 and not worker.is_cancelled:
                shown[0] = now
                self.app.call_from_thread(self._progress, role, svc, done)

        try:
            bits = svc.byte_bits(self.data, should_stop=lambda: worker.is_cancelled, progress=progress)
        except Exception as e:  # one line, never a crash (e.g. out of memory on a large model)
            self.app.call_from_thread(self._scored, role, svc, None, f"{type(e).__name__}: {e}")
            return
        if bits is not None and not worker.is_cancelled:
            self.app.call_from_thread(self._scored, role, svc, bits, "")

    def _progress(self, role: str, svc: ModelService, done: int) -> None:
        if self.is_attached and self.services[role] is svc and role in self.progress:
            self.progress[role] = f"scoring … {100 * done // max(1, len(self.data))}%"
            self._render_totals()

    def _scored(self, role: str, svc: ModelService, bits: list[float] | None, error: str) -> None:
        if not self.is_attached or self.services[role] is not svc:
            return
        self._passes.pop(role, None)
        self.progress.pop(role, None)
        if error:
            self.show_error(f"Model {role} could not score the text: {error}")
        self.bits[role] = bits
        self._render_all()

    @property
    def scoring(self) -> bool:
        return bool(self.progress)

    # ---------------------------------------------------------- loading model B
    @on(Input.Submitted, "#tm-path")
    def _path_submitted(self, event: Input.Submitted) -> None:
        raw = event.value.strip()
        if not raw:
            self.show_error("Type the directory of a second model first.")
            return
        path = Path(raw).expanduser()
        try:
            problem = model_dir_problem(path)
        except (OSError, ValueError) as e:  # ValueError: a path with a NUL byte
            problem = str(e)
        if problem:
            self.show_error(f"Model B not loaded: {path}: {problem}")
            return
        if self.loading_path is not None:
            self.show_error(f"Still loading {self.loading_path} …")
            return
        self.show_error("")
        self.loading_path = path
        self._render_title()
        settings = getattr(self.app, "settings", None)
        self._load_worker(path, settings.device if settings is not None else "auto")

    @work(thread=True, group=GROUP + "-load", exit_on_error=False)
    def _load_worker(self, path: Path, device: str) -> None:
        try:
            svc = ModelService.load(path, device)
        except Exception as e:  # ModelLoadError, or anything else the loader raised
            self.app.call_from_thread(self._load_failed, path, str(e) or type(e).__name__)
            return
        svc.model_record()  # hashes the weights here (the export names them), not in the UI thread
        self.app.call_from_thread(self._loaded, svc)

    def _load_failed(self, path: Path, message: str) -> None:
        self.loading_path = None
        if self.is_attached:
            self.show_error(f"Model B not loaded: {message}")
            self._render_title()

    def _loaded(self, svc: ModelService) -> None:
        self.loading_path = None
        self.keep(svc)  # kept even when this screen has closed meanwhile
        if not self.is_attached:
            return
        self.services["B"] = svc
        self.bits["B"] = None
        self.colour_mode = "B − A"
        self.query_one("#tm-path", Input).value = ""
        self.notify(f"Loaded {svc.label} ({svc.params_text} params) as model B", title="Two models")
        self._render_all()
        self._score()

    # ---------------------------------------------------------- rendering
    def show_error(self, text: str) -> None:
        self.query_one("#tm-error", ErrorLine).show(text)

    @property
    def error_text(self) -> str:
        return self.query_one("#tm-error", ErrorLine).text

    def _render_all(self) -> None:
        self._render_title()
        self._render_totals()
        self._render_text()
        self._render_plot()

    def _render_title(self) -> None:
        t = Text()
        t.append(f"Two models, one text · {len(self.data)} bytes", style="bold")
        for role, svc in self.services.items():
            t.append(f" · {role}: ")
            if svc is not None:
                t.append(f"{svc.label} ({svc.params_text})", style="#ff8700" if svc.random_weights else "bold")
            elif self.loading_path is not None:
                t.append(f"loading {self.loading_path} …", style="italic")
            else:
                t.append("not loaded: type its directory below", style="italic")
        self.query_one("#tm-title", Static).update(t)

    def _render_totals(self) -> None:
        names = tuple(svc.label if svc else None for svc in self.services.values())
        t = Text(totals_line(names, self.bits["A"], self.bits["B"]), style="bold")
        for role, text in self.progress.items():
            t.append(f" · {role} {text}", style="italic")
        if self.progress:
            t.append(" (Esc stops)", style="dim")
        self.query_one("#tm-totals", Static).update(t)

    def shown_values(self) -> list[float] | None:
        """The per-byte values the colours show now; None until the models they need are scored."""
        return mode_values(self.colour_mode, self.bits["A"], self.bits["B"])

    def _render_text(self) -> None:
        scale = colour_scale(self.colour_mode)
        values = self.shown_values()
        records = [ByteRecord(byte=b, bucket=scale.bucket(values[i]) if values is not None else NO_BUCKET)
                   for i, b in enumerate(self.data)]
        tr = self.query_one("#tm-text", Transcript)
        tr.clear()
        tr.add_answer(records, header=f"the inspected text, {len(self.data)} bytes")
        legend = scale.legend()
        legend.append(f" · {scale.meaning}", style="dim")
        if values is None:
            legend.append(" · (no colours until it is scored)", style="italic")
        self.query_one("#tm-legend", Static).update(legend)

    def _render_plot(self) -> None:
        plt = plt_of(self.query_one("#tm-plot"))
        if plt is None:
            return
        series = {role: bits for role, bits in self.bits.items() if bits is not None}
        plt.title(f"bits per byte per {self.span_kind}")
        if not series:
            return
        a = along(self.data, series, self.span_kind)
        for role, ys in a.series.items():
            # one line or window is a point, which a line plot does not draw
            draw = plt.scatter if len(a.xs) == 1 else plt.plot
            draw(a.xs, ys, label=f"{role} {self.services[role].label}", color=SERIES_COLOURS[role], marker="braille")
        ys = [y for v in a.series.values() for y in v if math.isfinite(y)]
        if ys:  # a quarter of headroom above the data keeps the legend (top left) off the lines
            lo, hi = min(ys), max(ys)
            plt.ylim(lo - 0.05 * (hi - lo or 1), hi + 0.25 * (hi - lo or 1))
        plt.xticks(a.xs[::max(1, len(a.xs) // 6)])  # whole line numbers and byte offsets, not 1.50
        plt.xlabel(a.xlabel)
        self.query_one("#tm-plot").refresh()

    # ---------------------------------------------------------- keys
    def action_colour_by(self) -> None:
        self.colour_mode = next_of(COLOUR_MODES, self.colour_mode)
        self._render_text()

    def action_plot_spans(self) -> None:
        self.span_kind = next_of(SPAN_KINDS, self.span_kind)
        self._render_plot()

    def action_export_svg(self) -> None:
        path = screenshot_or_report(self.app, export_dir(), f"two-models-{time.strftime('%Y%m%d-%H%M%S')}.svg")
        if path is not None:
            self.last_export = path
            self.notify(f"Saved view to {path}", title="Exported SVG")

    def action_export_json(self) -> None:
        a, b = self.bits["A"], self.bits["B"]
        if a is None:
            self.show_error("Nothing to export yet: model A is still scoring the text.")
            return
        models = [svc.model_record() for svc in self.services.values() if svc is not None]
        doc = two_models_json(self.data, models, a, b)
        path = export_dir() / f"two-models-{time.strftime('%Y%m%d-%H%M%S')}.json"
        if write_text_or_report(self.app, path, json.dumps(doc, indent=1, ensure_ascii=False), "the bits"):
            self.last_export = path
            self.notify(f"Saved both models' bits to {path}", title="Exported JSON")

    def action_close(self) -> None:
        self.workers.cancel_group(self, GROUP)  # a pass lets go of its model within a window
        self._passes.clear()
        self.progress.clear()
        close(self)
