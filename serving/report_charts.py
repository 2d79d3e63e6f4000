"""Small PNG charts of the chapter report, as ``data:`` URIs to inline in HTML.

Uses matplotlib's object-oriented API with the Agg canvas only (no pyplot, no global state, no
window), so it is safe in worker threads and on machines without a display.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["SEGMENT_COLOURS", "figure_to_data_uri", "draw_active_trends", "plot_segment_counts"]

#: Colour of each segment in the charts and the page.
SEGMENT_COLOURS: dict[str, str] = {
    "ambassador-at-risk": "#c0392b",
    "ready-now": "#1e8449",
    "at-risk": "#e67e22",
    "nurture": "#7dcea0",
    "ambassador": "#2471a3",
    "steady": "#95a5a6",
    "dormant": "#d5d8dc",
}

_TEXT = "#2c3e50"


def figure_to_data_uri(fig: Figure, dpi: int = 100) -> str:
    """Render a figure to PNG and return it as a ``data:image/png;base64,...`` URI."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _style(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(colors=_TEXT, labelsize=8)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#aab7b8")


def draw_active_trends(
    labels: Sequence[str],
    counts: np.ndarray,
    title: str = "active members per period",
    dpi: int = 100,
) -> list[str]:
    """Bar charts of active members per period, one PNG ``data:`` URI per row of ``counts``.

    All charts share the periods, so one figure is drawn once and only the bar heights and
    labels change from chart to chart (creating a figure per chart would cost ~3x more).

    Args:
        labels: Period labels, oldest first (the last one, the current period, is highlighted).
        counts: Active members, shape ``(charts, periods)``.
        title: Chart title.
        dpi: Resolution of the PNGs.
    """
    counts = np.asarray(counts, dtype=np.int64).reshape(-1, len(labels))
    fig = Figure(figsize=(3.4, 1.55))
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.17, top=0.84)
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    colours = ["#a9cce3"] * (len(labels) - 1) + ["#2471a3"]
    bars = ax.bar(x, np.zeros(len(labels)), color=colours, width=0.7)
    texts = [ax.text(i, 0, "", ha="center", va="bottom", fontsize=8, color=_TEXT) for i in x]
    ax.set_xticks(x, labels)
    ax.set_yticks([])
    ax.set_title(title, fontsize=8, color=_TEXT, loc="left")
    _style(ax)
    ax.spines["left"].set_visible(False)
    uris = []
    for row in counts:
        top = max(int(row.max(initial=0)), 1) * 1.3
        ax.set_ylim(0, top)
        for i, (bar, text, value) in enumerate(zip(bars, texts, row, strict=True)):
            bar.set_height(value)
            text.set_position((i, value + top * 0.02))
            text.set_text(str(int(value)))
        uris.append(figure_to_data_uri(fig, dpi))
    return uris


def plot_segment_counts(counts: dict[str, int]) -> Figure:
    """Horizontal bar chart of members per segment, in the given order (first at the top).

    Args:
        counts: Segment name -> members.
    """
    names = list(counts)
    values = [int(counts[n]) for n in names]
    fig = Figure(figsize=(5.2, 2.4), layout="constrained")
    ax = fig.add_subplot()
    positions = list(range(len(names)))[::-1]
    bars = ax.barh(
        positions, values, color=[SEGMENT_COLOURS.get(n, "#95a5a6") for n in names], height=0.7
    )
    ax.bar_label(bars, labels=[f"{v:,}" for v in values], fontsize=8, color=_TEXT, padding=2)
    ax.set_yticks(positions, names)
    ax.set_xticks([])
    ax.set_xlim(0, max(max(values, default=0), 1) * 1.18)
    ax.set_title("scored members per segment", fontsize=9, color=_TEXT, loc="left")
    _style(ax)
    ax.spines["bottom"].set_visible(False)
    return fig
