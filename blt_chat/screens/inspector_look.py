"""The inspector's "look inside" views (issue 17), as a mixin of InspectorScreen: colour by
entropy, the BLT's surprisal or their gap (blt_chat/colour_by.py), and the analysed text's real
compressed size with this model next to xz's. Both are computed in thread workers that hold the
model's lock; they stop when the text changes or the inspector closes (Esc). Also the entropy
analysis's progress line, and its stop: Esc while it runs stops it and keeps the previous view."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.widgets import Static
from textual.worker import get_current_worker

from blt_model import compressor_bits_per_byte

from ..colour_by import SCALES, byte_values, next_mode
from ..inspect_view import size_line
from ..render import ByteRecord
from ..widgets.transcript import Transcript

if TYPE_CHECKING:
    from textual.app import App
    from textual.worker import Worker

    from ..service import Analysis, ModelService, Patching


def throttled(app: App, worker: Worker, callback: Callable[..., None], every: float = 0.25) -> Callable[..., None]:
    """A progress callback for a thread worker: hands its arguments to `callback` on the UI
    thread (the first call at once, then at most every `every` seconds; call_from_thread blocks
    the worker), never once the worker is cancelled."""
    shown = [0.0]

    def progress(*args) -> None:
        now = time.monotonic()
        if now - shown[0] > every and not worker.is_cancelled:
            shown[0] = now
            app.call_from_thread(callback, *args)

    return progress


def bytes_progress(done: int, total: int) -> str:
    """A long pass's progress in bytes (the entropy analysis, the alternatives pass)."""
    return f"{done:,} / {total:,} bytes ({100 * done // max(1, total)}%) — Esc stops"


def analysis_progress_line(done: int, total: int) -> str:
    return f"Computing entropies … {bytes_progress(done, total)}"


class LookInside:
    """Needs from the screen: service, analysis, patching, colour_mode, _size_for,
    size, size_text, show_error (InspectorScreen sets them)."""

    service: ModelService
    analysis: Analysis | None
    patching: Patching | None
    colour_mode: str
    _size_for: Analysis | None
    compressed: tuple | None
    size_text: str

    # ---------------------------------------------------------- colour by
    def _records(self) -> list[ByteRecord]:
        """The text's bytes, coloured by the current mode (entropy while surprisals are pending)."""
        a, p = self.analysis, self.patching
        assert a is not None and p is not None
        values = byte_values(self.colour_mode, p.entropies, self._current_surprisals())
        scale = SCALES[self.colour_mode]
        return [ByteRecord(byte=b, entropy=p.entropies[i], patch_start=p.starts[i], patch_index=p.patch_of[i],
                           bucket=scale.bucket(values[i]) if values is not None else None)
                for i, b in enumerate(a.data)]

    def _current_surprisals(self) -> list[float] | None:
        """Surprisals of the analysed text under the current patching, if computed (they come
        with every byte's alternatives: one pass of both models, see inspector_cursor.py)."""
        alt = self._current_alternatives()
        return alt.surprisal if alt is not None else None

    def _want_surprisals(self) -> None:
        if self.colour_mode != "entropy":
            self._want_alternatives(force=True)

    def _render_text(self) -> None:
        tr = self.query_one("#insp-text", Transcript)
        tr.clear()
        tr.add_answer(self._records(), header=f"{self.patching.n_patches} patches")
        self._render_legend()

    def _render_legend(self) -> None:
        legend = SCALES[self.colour_mode].legend()
        if self.colour_mode != "entropy" and self._current_surprisals() is None:
            state = self.alternatives_state()
            legend.append(f" · the BLT's surprisal: {state or 'computing …'} (entropy colours until then)",
                          style="italic")
        elif self.colour_mode != "entropy":
            s = self._current_surprisals()
            legend.append(f" · BLT {sum(s) / max(1, len(s)):.3f} bits/byte", style="dim")
        if self.size_text:
            legend.append(f" · {self.size_text}")
        self.query_one("#insp-legend", Static).update(legend)

    # ---------------------------------------------------------- compressed size
    def _want_size(self) -> None:
        """Measure the analysed text's compressed size (once per text, in the background)."""
        a = self.analysis
        if a is None or a is not self._size_for or (self.compressed is not None and self.compressed[0] is a):
            return
        self.size_text = f"compressing {len(a.data)} bytes with this model …"
        self._size_worker(a)
        self._render_legend()

    @work(thread=True, exclusive=True, group="compress", exit_on_error=False)
    def _size_worker(self, a: Analysis) -> None:
        worker = get_current_worker()
        progress = throttled(self.app, worker, lambda done: self._size_progress(a, done))
        try:
            sizes = self.service.compressed_size(a.data, should_stop=lambda: worker.is_cancelled, progress=progress)
            if sizes is None or worker.is_cancelled:
                return
            n = sizes[0]
            text = size_line(*sizes, len(a.data), compressor_bits_per_byte(a.data)["lzma"])
        except Exception as e:  # e.g. constriction missing: one line, never a crash
            n, text = None, f"compressed size not measured: {e}"
        self.app.call_from_thread(self._size_done, a, n, text)

    def _size_progress(self, a: Analysis, done: int) -> None:
        if self.is_attached and a is self.analysis and (self.compressed is None or self.compressed[0] is not a):
            self.size_text = f"compressing with this model … {100 * done // max(1, len(a.data))}%"
            self._render_legend()

    def _size_done(self, a: Analysis, n: int | None, text: str) -> None:
        if not self.is_attached or a is not self.analysis:
            return
        self.compressed = (a, n)
        self.size_text = text
        self._render_legend()

    def _stop_background(self) -> None:
        for group in ("compress", "alternatives"):
            self.workers.cancel_group(self, group)
        self._alt_pending = None
        if self.compressed is None or self.compressed[0] is not self.analysis:
            self.size_text = ""

    # ---------------------------------------------------------- the entropy analysis: progress, stop
    _analysing: Worker | None = None  # the analysis running now
    _analysis_done = (0, 0)  # (bytes done, bytes in all) as last reported
    _stats_before: object = ""  # the stats line of the view the analysis will replace
    _stopped_line: Text | None = None  # the line stop_analysis showed

    def _analysis_started(self, worker: Worker, n_bytes: int) -> None:
        stats = self.query_one("#insp-stats", Static)
        if self._analysing is None and stats.content is not self._stopped_line:  # the view's own stats
            self._stats_before = stats.content
        self._analysing = worker
        self._analysis_progress(worker, 0, n_bytes)

    def _analysis_progress(self, worker: Worker, done: int, total: int) -> None:
        if worker is self._analysing and self.is_attached:
            self._analysis_done = (done, total)
            self.query_one("#insp-stats", Static).update(analysis_progress_line(done, total))

    def _analysis_failed(self, worker: Worker, message: str) -> None:
        if worker is self._analysing and self.is_attached:
            self._analysing = None
            self.query_one("#insp-stats", Static).update(self._stats_before)
            self.show_error(message)

    def stop_analysis(self) -> bool:
        """Stop a running analysis (Esc): the view stays the previous text's, the stats line
        says so. False when none runs, or when it has not computed anything yet (waiting for
        the model while the chat answers, say): then Esc closes the screen as everywhere, and
        the analysis finishes when the model is free."""
        worker = self._analysing
        if worker is None or self._analysis_done[0] == 0:
            return False
        self._analysing = None
        worker.cancel()  # the service checks before each chunk and lets go of the model
        done, total = self._analysis_done
        line = Text()
        line.append(f"Analysis stopped at {done:,} / {total:,} bytes (Esc). ", style="bold #ff8700")
        if self.patching is None:
            line.append("Press F5 to analyse again.")
        else:
            line.append("Showing the previous text: ")
            line.append(self._stats_before if isinstance(self._stats_before, Text) else str(self._stats_before))
        self._stopped_line = line
        self.query_one("#insp-stats", Static).update(line)
        self.on_screen_resume()  # the previous text's background work, stopped for the analysis
        return True

    def on_screen_resume(self) -> None:
        self._want_size()  # stopped by Esc, measured again on return
        if self.patching is not None:
            self._want_surprisals()
            self._want_alternatives()

    def action_colour_by(self) -> None:
        """Cycle the colours: entropy, the BLT's surprisal, their gap."""
        self._alt_stopped = None  # asked for again
        self.colour_mode = next_mode(self.colour_mode)
        if self.patching is not None:
            self._want_surprisals()
            self._want_alternatives()
            self._render_text()
