"""Interactive report charts: Vega-Lite specifications built with altair.

Every builder returns a plain Vega-Lite dict (``chart.to_dict()``), which the HTML report embeds
beside the Vega, Vega-Lite and vega-embed JavaScript that vl-convert ships
(:func:`javascript_bundle`), so the report stays one file that needs no network. Charts can be
zoomed and panned (a scale-bound interval selection) and show the values under the pointer.

Axis, legend and title label limits are switched off (``labelLimit: 0``): Vega would otherwise
cut long labels with an ellipsis. Selections carry fixed names, so the same data gives the same
specification, byte for byte, on every call.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import altair as alt
import polars as pl

__all__ = ["WIDTH", "bar_chart", "dot_interval_chart", "histogram", "javascript_bundle",
           "line_chart"]

WIDTH = 560
"""Width of a chart's plot area in pixels (the axes and legend are added around it)."""
_HEIGHT = 240
_CONFIG: dict[str, Any] = {
    "axis": {"labelLimit": 0, "titleLimit": 0, "labelFontSize": 12, "titleFontSize": 12},
    "legend": {"labelLimit": 0, "titleLimit": 0, "labelFontSize": 12},
    "title": {"limit": 0, "fontSize": 14, "anchor": "start"},
    "view": {"stroke": None},
}


@lru_cache(maxsize=1)
def javascript_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script that defines ``window.vegaEmbed``."""
    import vl_convert

    return vl_convert.javascript_bundle()


def _finish(chart: alt.TopLevelMixin, title: str) -> dict[str, Any]:
    spec = chart.properties(title=title).to_dict()
    spec["config"] = {**spec.get("config", {}), **_CONFIG}
    spec["autosize"] = {"type": "pad"}
    return spec


def _zoom() -> alt.Parameter:
    return alt.selection_interval(bind="scales", name="zoom")


def _rows(df: pl.DataFrame) -> alt.Data:
    # Non-finite numbers are not JSON: they become nulls, which Vega leaves out.
    clean = df.with_columns(pl.when(pl.col(c).is_finite()).then(pl.col(c)).alias(c)
                            for c, t in df.schema.items() if t.is_float())
    return alt.Data(values=clean.to_dicts())


def _tips(df: pl.DataFrame, cols: list[str | None]) -> list[alt.Tooltip]:
    """Tooltips of the columns present, typed (altair cannot infer types from plain rows)."""
    return [alt.Tooltip(f"{c}:{'Q' if df.schema[c].is_numeric() else 'N'}")
            for c in dict.fromkeys(cols) if c and c in df.columns]


def line_chart(df: pl.DataFrame, *, x: str, y: str, series: str | None, title: str,
               y_title: str, low: str | None = None, high: str | None = None,
               y_domain: tuple[float, float] | None = None,
               tooltip: list[str] | None = None) -> dict[str, Any]:
    """Lines (one per ``series`` value) with points and an optional interval band.

    Args:
        df: One row per point.
        x: Quantitative x column (e.g. ``round``).
        y: Quantitative y column.
        series: Column naming the line of each row (``None``: one line).
        title: Chart title.
        y_title: Y axis title.
        low: Column of the band's lower edge (e.g. ``ci_low``).
        high: Column of the band's upper edge.
        y_domain: Fixed y limits (e.g. ``(0, 1)`` for shares).
        tooltip: Columns shown under the pointer (default: x, y, series, band).

    Returns:
        The Vega-Lite specification.
    """
    scale = alt.Scale(domain=list(y_domain)) if y_domain else alt.Scale(zero=False)
    colour = alt.Color(f"{series}:N", title=series) if series else alt.value("#1f77b4")
    tips = _tips(df, tooltip or [x, y, series, low, high])
    base = alt.Chart(_rows(df)).encode(
        x=alt.X(f"{x}:Q", title=x, axis=alt.Axis(tickMinStep=1)), color=colour)
    layers = []
    if low and high:
        layers.append(base.mark_area(opacity=0.2).encode(
            y=alt.Y(f"{low}:Q", scale=scale, title=y_title), y2=f"{high}:Q"))
    layers.append(base.mark_line(point=True).encode(
        y=alt.Y(f"{y}:Q", scale=scale, title=y_title), tooltip=tips).add_params(_zoom()))
    chart = alt.layer(*layers).properties(width=WIDTH, height=_HEIGHT)
    return _finish(chart, title)


def bar_chart(df: pl.DataFrame, *, x: str, y: str, title: str, y_title: str,
              color: str | None = None, tooltip: list[str] | None = None
              ) -> dict[str, Any]:
    """Vertical bars of ``y`` per category ``x`` (grouped side by side by ``color``).

    Args:
        df: One row per bar.
        x: Category column.
        y: Bar height column.
        title: Chart title.
        y_title: Y axis title.
        color: Column splitting each category into side-by-side bars.
        tooltip: Columns shown under the pointer.

    Returns:
        The Vega-Lite specification.
    """
    enc: dict[str, Any] = {
        "x": alt.X(f"{x}:N", title=x, sort=None, axis=alt.Axis(labelAngle=0)),
        "y": alt.Y(f"{y}:Q", title=y_title),
        "tooltip": _tips(df, tooltip or [x, y, color]),
    }
    if color:
        enc["color"] = alt.Color(f"{color}:N", title=color)
        enc["xOffset"] = alt.XOffset(f"{color}:N")
    chart = alt.Chart(_rows(df)).mark_bar().encode(**enc).properties(
        width=WIDTH, height=_HEIGHT)
    return _finish(chart, title)


def histogram(df: pl.DataFrame, *, value: str, title: str, color: str | None = None
              ) -> dict[str, Any]:
    """Share of rows at each value of a discrete numeric column (e.g. a ``levels`` choice).

    Args:
        df: Rows ``value``, ``share``, ``n`` (and ``color`` when given), one per bar.
        value: The numeric column on the x axis.
        title: Chart title.
        color: Column splitting each value into side-by-side bars.

    Returns:
        The Vega-Lite specification.
    """
    return bar_chart(df, x=value, y="share", title=title, y_title="share of choices",
                     color=color, tooltip=[c for c in (value, "share", "n", color) if c])


def dot_interval_chart(df: pl.DataFrame, *, label: str, y: str, low: str, high: str,
                       title: str, y_title: str, color: str | None = None
                       ) -> dict[str, Any]:
    """A dot per label with a vertical interval (e.g. estimate and 95% CI).

    Args:
        df: One row per dot.
        label: Category column on the x axis.
        y: Estimate column.
        low: Lower end of the interval.
        high: Upper end of the interval.
        title: Chart title.
        y_title: Y axis title.
        color: Column splitting each label into side-by-side dots.

    Returns:
        The Vega-Lite specification.
    """
    x = alt.X(f"{label}:N", title=label, sort=None, axis=alt.Axis(labelAngle=0))
    enc: dict[str, Any] = {"x": x}
    if color:
        enc["color"] = alt.Color(f"{color}:N", title=color)
        enc["xOffset"] = alt.XOffset(f"{color}:N")
    tips = _tips(df, [label, color, y, low, high, "n", "n_obs", "n_clusters"])
    base = alt.Chart(_rows(df)).encode(**enc)
    scale = alt.Scale(zero=False, nice=True)
    rule = base.mark_rule(strokeWidth=2).encode(
        y=alt.Y(f"{low}:Q", title=y_title, scale=scale), y2=f"{high}:Q", tooltip=tips)
    dots = base.mark_point(filled=True, size=70).encode(
        y=alt.Y(f"{y}:Q", title=y_title, scale=scale), tooltip=tips)
    chart = alt.layer(rule, dots).properties(width=WIDTH, height=_HEIGHT)
    return _finish(chart, title)
