"""The inspector's byte cursor (issue 17), as a mixin of InspectorScreen: F8 (or a click on the
plot) puts a cursor on a byte of the plot, Left/Right move it, Esc leaves. The selected byte's
panel shows the BLT's and the entropy model's top 5 alternatives, both entropies, the byte's
surprisal, its patch and its UTF-8 character (blt_chat/alternatives.py), from one pass of both
models in a thread worker, kept per text and patching."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events, work
from textual.actions import SkipAction
from textual.widgets import Static
from textual.worker import get_current_worker

from ..alternatives import TOP_K, panel_text, view_of
from ..inspect_view import GUTTER, PLOT_MAX_BYTES
from .inspector_look import bytes_progress, throttled

if TYPE_CHECKING:
    from ..alternatives import Alternatives
    from ..service import Analysis, ModelService, Patching


class ByteCursor:
    """Needs from the screen: service, analysis, patching, cursor, alternatives, show_error and
    _render_plot (InspectorScreen sets them)."""

    service: ModelService
    analysis: Analysis | None
    patching: Patching | None
    cursor: int | None
    alternatives: tuple | None  # (analysis, patch config, Alternatives)
    _alt_pending: tuple | None  # (analysis, patch config) being computed
    _alt_done: tuple[int, int] = (0, 0)  # (bytes done, bytes in all) of the pass as last reported
    _alt_stopped: tuple | None = None  # (analysis, patch config) whose pass Esc stopped

    def action_byte_cursor(self) -> None:
        self._alt_stopped = None  # asked for again
        if self.patching is None or self.analysis is None:
            self.show_error("Nothing to inspect yet: analyse a text first.")
            return
        self.set_cursor(self.cursor or 0)

    def action_move_cursor(self, step: int) -> None:
        if self.cursor is None:
            raise SkipAction()  # the key goes on to the focused widget
        self.set_cursor(self.cursor + step)

    def set_cursor(self, i: int) -> None:
        n = min(len(self.analysis.data), PLOT_MAX_BYTES)
        self.cursor = max(0, min(n - 1, i))
        self.add_class("-cursor")
        plot = self.query_one("#insp-plot")
        if not plot.has_focus:
            plot.focus()
        plot.scroll_to_column(GUTTER + self.cursor)  # keep the cursor's column in view
        self._want_alternatives()
        self._show_cursor()
        self._render_panel()

    def leave_cursor(self) -> bool:
        """Esc: leave the cursor mode first (True when there was one to leave)."""
        if self.cursor is None:
            return False
        self.cursor = None
        self.remove_class("-cursor")
        self._show_cursor()
        return True

    def on_click(self, event: events.Click) -> None:
        plot = self.query_one("#insp-plot")
        if event.widget is not plot or self.patching is None:
            return
        offset = event.get_content_offset(plot)
        if offset is not None and offset.x >= GUTTER:
            self.set_cursor(offset.x - GUTTER)

    # ---------------------------------------------------------- the panel
    def _current_alternatives(self) -> Alternatives | None:
        if self.alternatives is None or self.patching is None:
            return None
        analysis, cfg, alt = self.alternatives
        return alt if analysis is self.analysis and cfg == self.patching.config else None

    def _want_alternatives(self, force: bool = False) -> None:
        """Compute them for the current text and patching, if the cursor (or `force`: the
        surprisal colours) needs them and they are not there yet."""
        if (self.cursor is not None or force) and self.patching is not None and self._current_alternatives() is None:
            if self._is_current(self._alt_pending) or self._is_current(self._alt_stopped):
                return  # already on its way, or stopped until F7/F8 asks again
            self._alt_pending = (self.analysis, self.patching.config)
            self._alt_done = (0, len(self.analysis.data))
            self._alternatives_worker(self.analysis, self.patching.config)

    def _is_current(self, key: tuple | None) -> bool:
        """Whether (analysis, patch config) `key` is the text and patching on screen."""
        return key is not None and key[0] is self.analysis and self.patching is not None \
            and key[1] == self.patching.config

    def stop_alternatives(self) -> bool:
        """Esc while the pass runs (and has got somewhere): stop it, say so (True)."""
        if self._alt_pending is None or self._alt_done[0] == 0:
            return False
        self.workers.cancel_group(self, "alternatives")
        self._alt_stopped, self._alt_pending = self._alt_pending, None
        self._render_panel()
        self._render_legend()
        return True

    def alternatives_state(self) -> str:
        """The pass's progress, or its stop, in one line ('' when neither)."""
        done, total = self._alt_done
        if self._is_current(self._alt_stopped):
            return f"stopped at {done:,} / {total:,} bytes (Esc); F8 or F7 computes them again"
        if self._is_current(self._alt_pending):
            return bytes_progress(done, total)
        return ""

    def _alternatives_progress(self, analysis: Analysis, cfg, done: int, total: int) -> None:
        pending = self._alt_pending
        if self.is_attached and pending is not None and pending[0] is analysis and pending[1] == cfg:
            self._alt_done = (done, total)
            self._render_panel()
            self._render_legend()

    @work(thread=True, exclusive=True, group="alternatives", exit_on_error=False)
    def _alternatives_worker(self, analysis: Analysis, cfg) -> None:
        worker = get_current_worker()
        progress = throttled(self.app, worker,
                             lambda done, total: self._alternatives_progress(analysis, cfg, done, total))
        try:
            alt = self.service.byte_alternatives(analysis, cfg, TOP_K, should_stop=lambda: worker.is_cancelled,
                                                 progress=progress)
        except Exception as e:  # shown to the user, never a crash
            self.app.call_from_thread(self.show_error, f"Alternatives failed: {type(e).__name__}: {e}")
            return
        if alt is not None and not worker.is_cancelled:
            self.app.call_from_thread(self._alternatives_ready, analysis, cfg, alt)
        else:
            self.app.call_from_thread(self._alternatives_dropped, analysis, cfg)

    def _alternatives_dropped(self, analysis: Analysis, cfg) -> None:
        pending = self._alt_pending
        if pending is not None and pending[0] is analysis and pending[1] == cfg:
            self._alt_pending = None

    def _alternatives_ready(self, analysis: Analysis, cfg, alt: Alternatives) -> None:
        self._alternatives_dropped(analysis, cfg)
        if self.is_attached:
            self.alternatives = (analysis, cfg, alt)
            self._render_panel()
            if self.colour_mode != "entropy" and self._current_alternatives() is alt:
                self._render_text()  # the surprisal colours

    def _render_panel(self) -> None:
        panel = self.query_one("#insp-alt", Static)
        if self.cursor is None or self.patching is None:
            return
        alt = self._current_alternatives()
        if alt is None:
            panel.update(f"byte {self.cursor}: every byte's alternatives (one pass of the BLT and the "
                         f"entropy model): {self.alternatives_state() or 'starting …'}")
            return
        p = self.patching
        rec = p.patches[p.patch_of[self.cursor] - 1]
        panel.update(panel_text(self.analysis.data, self.cursor,
                                view_of(alt, self.cursor, p.entropies[self.cursor]),
                                (rec["index"], rec["start"], rec["length"])))
