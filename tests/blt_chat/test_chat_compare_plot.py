"""The compare screen's plot (issue 17): a histogram of patch lengths per configuration, whose
counts are those of `patch_starts` on the same entropies, redrawn on every add, edit and removal
without calling the entropy model; the JSON export holds each configuration's counts."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from textual.widgets import Input, Static

from blt_chat.app import BLTChatApp
from blt_chat.compare import Comparison, length_histogram
from blt_chat.screens import compare as compare_screen
from blt_chat.screens.compare import CompareScreen, plot_legend
from blt_chat.screens.inspector import InspectorScreen
from blt_chat.settings import Settings
from blt_chat.widgets import plot as plot_module
from blt_model import patch_starts

from .chat_helpers import until

TEXT = ("Byte Latent Transformer groups bytes into patches; 2024-12-13, Pagnoni et al. Zürich 🦊. "
        "Where the next byte is hard to predict, a new patch starts.")


def library_counts(analysis, cfg) -> Counter:
    """Patch lengths straight from the library: the gaps between `patch_starts`' starts."""
    n = len(analysis.data)
    starts = patch_starts(analysis.ids, analysis.entropies if cfg.needs_entropies else None, cfg)[0, 1:n + 1]
    at = [i for i, s in enumerate(starts.tolist()) if s] + [n]
    return Counter(b - a for a, b in zip(at, at[1:]))


def configs(base):
    return [base.replace(entropy_threshold=0.5, max_patch_size=6), base.replace(scheme="fixed", stride=3),
            base.replace(use_monotonic=True, monotonic_threshold=0.01, min_patch_size=2), base.replace(scheme="space")]


def check_histogram(comparison: Comparison, max_bins: int) -> None:
    hist = length_histogram(comparison.rows, max_bins)
    lows = [lo for lo, _hi in hist.bins]
    for row, per_bin in zip(comparison.rows, hist.counts):
        counts = library_counts(comparison.analysis, row.config)
        assert row.length_counts == dict(sorted(counts.items()))
        assert per_bin == [sum(k for n, k in counts.items() if lo <= n <= hi) for lo, hi in hist.bins]
        assert sum(per_bin) == row.n_patches
    assert lows[0] == 1 and hist.bins[-1][1] == max(max(r.length_counts) for r in comparison.rows)
    assert len(hist.bins) <= max_bins


def test_histogram_counts_equal_patch_starts(tiny_service):
    a = tiny_service.analyze(TEXT.encode())
    c = Comparison(a, configs(tiny_service.config.patching), tiny_service.model.flops_per_byte)
    assert len({tuple(r.length_counts.items()) for r in c.rows}) > 1  # the rows really differ
    longest = max(max(r.length_counts) for r in c.rows)
    check_histogram(c, longest)  # one length per bin
    assert length_histogram(c.rows, longest).labels == [str(n) for n in range(1, longest + 1)]
    for max_bins in (1, 3, 4, 7):  # several lengths per bin, all of equal width
        check_histogram(c, max_bins)
        bins = length_histogram(c.rows, max_bins).bins
        assert len({hi - lo for lo, hi in bins[:-1]}) <= 1
    assert [r["patch_length_counts"] for r in c.as_json()] == [
        {str(n): k for n, k in sorted(library_counts(a, r.config).items())} for r in c.rows]


def test_legend_names_rows_in_full_where_they_fit(tiny_service):
    a = tiny_service.analyze(TEXT.encode())
    c = Comparison(a, configs(tiny_service.config.patching), tiny_service.model.flops_per_byte)
    wide, narrow = plot_legend(c.rows, 200).plain, plot_legend(c.rows, 60).plain
    assert "#1 entropy θ 0.5 max 6" in wide and "#4 space" in wide
    assert "#4" in narrow and "space" not in narrow


def drawn(screen: CompareScreen) -> str:
    """The plot as the terminal shows it (plotext's text)."""
    return screen.query_one("#cmp-plot").render().plain


@pytest.mark.anyio
async def test_plot_redraws_on_edits_without_the_entropy_model(tiny_service, monkeypatch):
    calls = []
    em = tiny_service.model.entropy_model
    original = em.entropies
    monkeypatch.setattr(em, "entropies", lambda *a, **kw: calls.append(1) or original(*a, **kw))
    drawings = []  # (the rows' configs, max_bins, the histogram) of each drawing
    real = compare_screen.length_histogram

    def recording(rows, max_bins):
        drawings.append(([r.config for r in rows], max_bins, real(rows, max_bins)))
        return drawings[-1][2]

    monkeypatch.setattr(compare_screen, "length_histogram", recording)
    app = BLTChatApp(service=tiny_service, settings=Settings(), save=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: isinstance(app.screen, InspectorScreen) and app.screen.patching is not None)
        app.screen.inspect_text(TEXT)
        await until(pilot, lambda: app.screen.analysis.data == TEXT.encode() and app.screen.patching is not None)
        n_calls = len(calls)
        await pilot.press("f6")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        screen = app.screen
        c = screen.comparison

        def shows_rows() -> bool:
            """The last drawing is of the current rows; the legend names each of them."""
            if not drawings or drawings[-1][0] != [r.config for r in c.rows]:
                return False
            legend = str(screen.query_one("#cmp-plot-legend", Static).render())
            return all(f"#{i + 1}" in legend for i in range(len(c.rows))) and f"#{len(c.rows) + 1}" not in legend

        await until(pilot, shows_rows)
        check_histogram(c, drawings[-1][1])
        hist = drawings[-1][2]
        assert len(hist.bins) > 4  # 160 columns: a bin per length or nearly
        top = max(max(k) for k in hist.counts)
        assert f"{top}┤" in drawn(screen)  # the plot's axis goes to the largest count
        await pilot.press("f6")  # add a row: three series
        await until(pilot, lambda: len(c.rows) == 3 and shows_rows())
        check_histogram(c, drawings[-1][1])
        screen.query_one("#cmp-stride", Input).value = "5"
        screen.query_one("#cmp-scheme").value = "fixed"
        await until(pilot, lambda: c.rows[2].config.scheme == "fixed" and c.rows[2].config.stride == 5)
        await until(pilot, shows_rows)
        check_histogram(c, drawings[-1][1])
        await pilot.press("f7")  # remove it again
        await until(pilot, lambda: len(c.rows) == 2 and shows_rows())
        check_histogram(c, drawings[-1][1])
        assert len(calls) == n_calls  # no entropy model call after the analysis
        await pilot.press("ctrl+g")
        await until(pilot, lambda: screen.last_export is not None)
        doc = json.loads(screen.last_export.read_text())
        assert [r["patch_length_counts"] for r in doc["configurations"]] == [
            {str(n): k for n, k in sorted(library_counts(c.analysis, r.config).items())} for r in c.rows]
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, InspectorScreen))


@pytest.mark.anyio
async def test_without_the_plots_extra_a_note_takes_its_place(tiny_service, monkeypatch):
    monkeypatch.setattr(plot_module, "PlotextPlot", None)
    a = tiny_service.analyze(TEXT.encode())
    base = tiny_service.config.patching
    app = BLTChatApp(service=tiny_service, settings=Settings(), save=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(CompareScreen(tiny_service, a, [base, base.replace(scheme="space")]))
        await pilot.pause()
        screen = app.screen
        assert plot_module.MISSING_NOTE in str(screen.query_one("#cmp-plot", Static).render())
        await pilot.press("f6")  # the screen works on without the plot
        await until(pilot, lambda: len(screen.comparison.rows) == 3)
        assert "#3" in str(screen.query_one("#cmp-plot-legend", Static).render())
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, CompareScreen))
