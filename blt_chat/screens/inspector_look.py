"""The inspector's "look inside" views (issue 17), as a mixin of InspectorScreen: colour by
entropy, the BLT's surprisal or their gap (blt_chat/colour_by.py), and the analysed text's real
compressed size with this model next to xz's. Both are computed in thread workers that hold the
model's lock; they stop when the text changes or the inspector closes (Esc)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual import work
from textual.widgets import Static
from textual.worker import get_current_worker

from blt_model import compressor_bits_per_byte

from ..colour_by import SCALES, byte_values, next_mode
from ..inspect_view import size_line
from ..render import ByteRecord
from ..widgets.transcript import Transcript

if TYPE_CHECKING:
    from ..service import Analysis, ModelService, Patching


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
            legend.append(" · computing the BLT's surprisal … (entropy colours until then)", style="italic")
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
        shown = [0.0]

        def progress(done: int) -> None:
            now = time.monotonic()
            if now - shown[0] > 0.25 and not worker.is_cancelled:
                shown[0] = now
                self.app.call_from_thread(self._size_progress, a, done)

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

    def on_screen_resume(self) -> None:
        self._want_size()  # stopped by Esc, measured again on return
        if self.patching is not None:
            self._want_surprisals()
            self._want_alternatives()

    def action_colour_by(self) -> None:
        """Cycle the colours: entropy, the BLT's surprisal, their gap."""
        self.colour_mode = next_mode(self.colour_mode)
        if self.patching is not None:
            self._want_surprisals()
            self._want_alternatives()
            self._render_text()
