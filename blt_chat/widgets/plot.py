"""Terminal plots through textual-plotext (the `plots` extra): a maintained plotting widget with
axes, ticks, legends and several series, which the hand-drawn entropy chart of the inspector
does not need but histograms and line series do. Without the extra, a one-line note says how to
get it, in the place the plot would be."""

from __future__ import annotations

from textual.widget import Widget
from textual.widgets import Static

try:
    from textual_plotext import PlotextPlot
except ImportError:  # the optional extra is not installed
    PlotextPlot = None  # type: ignore[assignment,misc]

MISSING_NOTE = "Plots need textual-plotext: pip install 'blt-chat[plots]'"


def plot_widget(widget_id: str) -> Widget:
    """A PlotextPlot with this id, or a Static holding MISSING_NOTE when the extra is missing
    (callers draw through `draw`, which does nothing on the note)."""
    if PlotextPlot is None:
        return Static(MISSING_NOTE, id=widget_id, classes="plot-missing", markup=False)  # "[plots]" is text
    return PlotextPlot(id=widget_id)


def plt_of(widget: Widget):
    """The plotext module of a plot widget, cleared for a new figure; None for the note."""
    if PlotextPlot is None or not isinstance(widget, PlotextPlot):
        return None
    plt = widget.plt
    plt.clear_data()
    plt.clear_figure()
    return plt
