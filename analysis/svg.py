"""Hand-written, dependency-free SVG charts for the HTML report (no scripts, no URLs).

Every function returns one ``<svg>`` element as a string, sized in CSS pixels and styled
inline, so that the report stays a single self-contained file.

Example:
    >>> svg = line_chart([Series("cooperation", [1, 2, 3], [0.5, 0.6, 0.4])], title="rate")
    >>> svg.startswith("<svg")
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["PALETTE", "Series", "bar_chart", "interval_chart", "line_chart", "nice_ticks"]

PALETTE: tuple[str, ...] = (
    "#1f6feb", "#d1495b", "#2a9d8f", "#e9a03b", "#7b5ea7", "#5c677d", "#8ab17d", "#c1666b",
)
_W, _H = 640, 300
_M = {"left": 56, "right": 150, "top": 34, "bottom": 50}
_FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif"


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a :func:`line_chart`, with an optional shaded band.

    Attributes:
        name: Legend label.
        x: X values (numbers, ascending).
        y: Y values (``None`` or NaN leave a gap).
        low: Lower edge of the band (same length as ``x``), or ``None``.
        high: Upper edge of the band, or ``None``.
    """

    name: str
    x: Sequence[float]
    y: Sequence[float | None]
    low: Sequence[float | None] | None = None
    high: Sequence[float | None] | None = None


def _ok(v: float | None) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering ``[lo, hi]``.

    Args:
        lo: Smallest value.
        hi: Largest value.
        n: Wanted number of intervals.

    Returns:
        Ascending tick values.
    """
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step + 1e-9) * step
    ticks, t = [], start
    while t <= hi + step * 1e-6:
        ticks.append(round(t, 10))
        t += step
    if ticks[-1] < hi - 1e-12:
        ticks.append(round(t, 10))
    return ticks


def _fmt(v: float) -> str:
    return f"{v:.10g}" if abs(v) >= 1e-9 else "0"


class _Canvas:
    """Plot-area geometry: data -> pixel transforms, axes, legend."""

    def __init__(self, title: str, xlo: float, xhi: float, ylo: float, yhi: float,
                 width: int = _W, height: int = _H) -> None:
        self.w, self.h = width, height
        self.x0, self.x1 = _M["left"], width - _M["right"]
        self.y0, self.y1 = height - _M["bottom"], _M["top"]
        self.xlo, self.xhi = xlo, xhi if xhi > xlo else xlo + 1
        self.ylo, self.yhi = ylo, yhi if yhi > ylo else ylo + 1
        self.parts: list[str] = [
            f'<svg width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
            f'style="{_FONT};font-size:12px;background:#fff">',
            f'<title>{escape(title)}</title>',
            f'<text x="{self.x0}" y="20" font-size="14" font-weight="600" fill="#222">'
            f'{escape(title)}</text>',
        ]

    def px(self, x: float) -> float:
        return self.x0 + (x - self.xlo) / (self.xhi - self.xlo) * (self.x1 - self.x0)

    def py(self, y: float) -> float:
        return self.y0 - (y - self.ylo) / (self.yhi - self.ylo) * (self.y0 - self.y1)

    def y_axis(self, ticks: Sequence[float], label: str) -> None:
        for t in ticks:
            y = self.py(t)
            self.parts.append(f'<line x1="{self.x0}" x2="{self.x1}" y1="{y:.1f}" y2="{y:.1f}" '
                              'stroke="#e5e7eb"/>')
            self.parts.append(f'<text x="{self.x0 - 6}" y="{y + 4:.1f}" text-anchor="end" '
                              f'fill="#555">{_fmt(t)}</text>')
        mid = (self.y0 + self.y1) / 2
        self.parts.append(f'<text transform="translate(14 {mid:.1f}) rotate(-90)" '
                          f'text-anchor="middle" fill="#333">{escape(label)}</text>')

    def x_axis(self, ticks: Sequence[tuple[float, str]], label: str) -> None:
        self.parts.append(f'<line x1="{self.x0}" x2="{self.x1}" y1="{self.y0}" y2="{self.y0}" '
                          'stroke="#888"/>')
        for t, text in ticks:
            x = self.px(t)
            lines = "".join(f'<tspan x="{x:.1f}" dy="{0 if i == 0 else 13}">{escape(w)}</tspan>'
                            for i, w in enumerate(text.split("_")))
            self.parts.append(f'<text x="{x:.1f}" y="{self.y0 + 16}" text-anchor="middle" '
                              f'fill="#555">{lines}</text>')
        self.parts.append(f'<text x="{(self.x0 + self.x1) / 2:.1f}" y="{self.h - 8}" '
                          f'text-anchor="middle" fill="#333">{escape(label)}</text>')

    def legend(self, items: Sequence[tuple[str, str, str]]) -> None:
        """Legend entries ``(label, colour, kind)`` with kind ``line|box|dot|band``."""
        x, y = self.x1 + 14, self.y1 + 6
        for label, colour, kind in items:
            if kind == "line":
                self.parts.append(f'<line x1="{x}" x2="{x + 18}" y1="{y}" y2="{y}" '
                                  f'stroke="{colour}" stroke-width="2.5"/>')
            elif kind == "dot":
                self.parts.append(f'<circle cx="{x + 9}" cy="{y}" r="4.5" fill="{colour}"/>')
            else:
                op = "0.25" if kind == "band" else "0.9"
                self.parts.append(f'<rect x="{x}" y="{y - 6}" width="18" height="12" '
                                  f'fill="{colour}" fill-opacity="{op}"/>')
            self.parts.append(f'<text x="{x + 24}" y="{y + 4}" fill="#333">'
                              f'{escape(label[:18])}</text>')
            y += 18

    def done(self) -> str:
        return "\n".join([*self.parts, "</svg>"])


def line_chart(series: Sequence[Series], *, title: str, x_label: str = "round",
               y_label: str = "", y_range: tuple[float, float] | None = None) -> str:
    """Lines over a numeric x axis, each with an optional shaded band (e.g. a 95% CI).

    Args:
        series: The lines (at most ``len(PALETTE)`` get distinct colours).
        title: Chart title.
        x_label: X axis label.
        y_label: Y axis label.
        y_range: Fixed y limits (default: from the data, including bands).

    Returns:
        An ``<svg>`` element.
    """
    xs = [float(x) for s in series for x in s.x]
    ys = [float(v) for s in series for arr in (s.y, s.low or [], s.high or []) for v in arr
          if _ok(v)]
    if y_range is None:
        y_range = (min(ys, default=0.0), max(ys, default=1.0))
    yt = nice_ticks(*y_range)
    c = _Canvas(title, min(xs, default=0.0), max(xs, default=1.0), yt[0], yt[-1])
    c.y_axis(yt, y_label)
    xt = nice_ticks(c.xlo, c.xhi, min(10, max(1, int(c.xhi - c.xlo))))
    c.x_axis([(t, _fmt(t)) for t in xt if c.xlo <= t <= c.xhi], x_label)
    legend = []
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        if s.low is not None and s.high is not None:
            pts = [(x, lo, hi) for x, lo, hi in zip(s.x, s.low, s.high, strict=True)
                   if _ok(lo) and _ok(hi)]
            if pts:
                top = " ".join(f"{c.px(x):.1f},{c.py(hi):.1f}" for x, _, hi in pts)
                bottom = " ".join(f"{c.px(x):.1f},{c.py(lo):.1f}" for x, lo, _ in reversed(pts))
                c.parts.append(f'<polygon points="{top} {bottom}" fill="{colour}" '
                               'fill-opacity="0.18" stroke="none"/>')
        segments: list[list[str]] = [[]]
        for x, y in zip(s.x, s.y, strict=True):
            if _ok(y):
                segments[-1].append(f"{c.px(x):.1f},{c.py(float(y)):.1f}")  # type: ignore[arg-type]
            elif segments[-1]:
                segments.append([])
        for seg in segments:
            if seg:
                c.parts.append(f'<polyline points="{" ".join(seg)}" fill="none" '
                               f'stroke="{colour}" stroke-width="2.2"/>')
                c.parts.extend(f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="2.8" '
                               f'fill="{colour}"/>' for p in seg)
        legend.append((s.name, colour, "line"))
    c.legend(legend)
    return c.done()


def bar_chart(categories: Sequence[str], groups: dict[str, Sequence[float | None]], *,
              title: str, y_label: str = "") -> str:
    """Grouped vertical bars: one cluster per category, one bar per group.

    Args:
        categories: Category labels on the x axis.
        groups: Group name -> one value per category (``None`` draws no bar).
        title: Chart title.
        y_label: Y axis label.

    Returns:
        An ``<svg>`` element.
    """
    vals = [float(v) for g in groups.values() for v in g if _ok(v)]
    yt = nice_ticks(min(0.0, *vals) if vals else 0.0, max(vals, default=1.0))
    c = _Canvas(title, 0, max(len(categories), 1), yt[0], yt[-1])
    c.y_axis(yt, y_label)
    c.x_axis([(i + 0.5, cat[:12]) for i, cat in enumerate(categories)], "")
    k = max(len(groups), 1)
    width = 0.8 / k
    zero = c.py(0.0)
    legend = []
    for j, (name, values) in enumerate(groups.items()):
        colour = PALETTE[j % len(PALETTE)]
        for i, v in enumerate(values):
            if not _ok(v):
                continue
            xa, xb = c.px(i + 0.1 + j * width), c.px(i + 0.1 + (j + 1) * width)
            ya = c.py(float(v))  # type: ignore[arg-type]
            top, h = min(ya, zero), abs(zero - ya)
            c.parts.append(f'<rect x="{xa + 1:.1f}" y="{top:.1f}" width="{xb - xa - 2:.1f}" '
                           f'height="{h:.1f}" fill="{colour}" fill-opacity="0.9">'
                           f'<title>{escape(name)} {categories[i]}: {float(v):.3f}</title>'  # type: ignore[arg-type]
                           '</rect>')
        legend.append((name, colour, "box"))
    c.legend(legend)
    return c.done()


def interval_chart(labels: Sequence[str], points: dict[str, Sequence[float | None]],
                   bands: dict[str, tuple[Sequence[float | None], Sequence[float | None]]], *,
                   title: str, y_label: str = "") -> str:
    """Dots per label with vertical bands, e.g. real alignment vs a surrogate band.

    Args:
        labels: Category labels on the x axis.
        points: Series name -> one dot value per label.
        bands: Series name -> ``(low, high)`` per label, drawn as translucent boxes.
        title: Chart title.
        y_label: Y axis label.

    Returns:
        An ``<svg>`` element.
    """
    vals = [float(v) for p in points.values() for v in p if _ok(v)]
    vals += [float(v) for lo, hi in bands.values() for v in (*lo, *hi) if _ok(v)]
    yt = nice_ticks(min(vals, default=0.0), max(vals, default=1.0))
    c = _Canvas(title, 0, max(len(labels), 1), yt[0], yt[-1], height=_H + 20)
    c.y_axis(yt, y_label)
    c.x_axis([(i + 0.5, lab[:16]) for i, lab in enumerate(labels)], "")
    names = list(dict.fromkeys([*bands, *points]))
    colours = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}
    nb = max(len(bands), 1)
    legend = []
    for j, (name, (lo, hi)) in enumerate(bands.items()):
        for i, (a, b) in enumerate(zip(lo, hi, strict=True)):
            if _ok(a) and _ok(b):
                xa = c.px(i + 0.15 + j * 0.7 / nb)
                xb = c.px(i + 0.15 + (j + 1) * 0.7 / nb)
                ya, yb = c.py(float(b)), c.py(float(a))  # type: ignore[arg-type]
                c.parts.append(f'<rect x="{xa:.1f}" y="{ya:.1f}" width="{xb - xa - 2:.1f}" '
                               f'height="{max(yb - ya, 1.5):.1f}" fill="{colours[name]}" '
                               'fill-opacity="0.28"/>')
        legend.append((name, colours[name], "band"))
    for name, values in points.items():
        for i, v in enumerate(values):
            if _ok(v):
                c.parts.append(f'<circle cx="{c.px(i + 0.5):.1f}" cy="{c.py(float(v)):.1f}" '  # type: ignore[arg-type]
                               f'r="5" fill="{colours[name]}"/>')
        legend.append((name, colours[name], "dot"))
    c.legend(legend)
    return c.done()
