"""A report as one self-contained HTML file (inline CSS, JavaScript and data) or terminal tables.

The page carries the Vega, Vega-Lite and vega-embed bundle inline, so its charts (hover,
zoom, pan) render with no network. After the charts render, a small script measures every
text label of the charts and page (its box within the chart, no ellipsis, no overflow) and
writes the result as JSON into ``<pre id="label-check">``, where a headless browser's dumped
DOM can be read by a test. Text from agents or users is escaped: table cells and headings by
:func:`html.escape`, chart data inside JSON with ``<`` written as an escape.

The page holds no wall-clock time: rendering the same report twice gives the same bytes.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from analysis.charts import javascript_bundle

if TYPE_CHECKING:
    from analysis.report import Report

__all__ = ["format_cell", "print_report", "render_html"]


def format_cell(v: object) -> str:
    """A table value as short text (4 decimals, ``NaN``, ``–`` for null)."""
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if v == 0:
            return "0"
        return f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) >= 1e-4 else f"{v:.2e}"
    if v is None:
        return "–"
    return str(v)


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1f2328;
background:#f6f8fa}
main{max-width:1100px;margin:0 auto;padding:24px 32px}
h1{font-size:26px;margin:8px 0 10px;overflow-wrap:anywhere}h2{font-size:19px;margin:0 0 6px}
dl.header{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0 0 12px;
background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:12px 16px;font-size:14px}
dl.header dt{font-weight:600;color:#57606a}dl.header dd{margin:0;overflow-wrap:anywhere}
.meta{color:#57606a;margin-bottom:20px;overflow-wrap:anywhere}
section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px 20px;
margin:16px 0}
.note{color:#57606a;margin:0 0 10px;font-size:14px;overflow-wrap:anywhere}
.flag{color:#9a6700;background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;
padding:6px 10px;font-size:14px}
.wrap{overflow-x:auto;max-height:360px;overflow-y:auto}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
th,td{padding:3px 8px;border-bottom:1px solid #eaeef2;text-align:right;white-space:nowrap}
th{background:#f6f8fa;position:sticky;top:0}
td:first-child,th:first-child{text-align:left}
figure{margin:6px 0 12px;overflow-x:auto}
"""

# Renders every chart, then checks labels: a chart text must lie inside its SVG and not end
# in an ellipsis (Vega's cut), a page label must not overflow its box.
_SCRIPT = """
(function () {
  const out = document.getElementById('label-check');
  function check() {
    const clipped = [];
    let checked = 0;
    document.querySelectorAll('.vis svg.marks').forEach(function (svg) {
      const box = svg.getBoundingClientRect();
      svg.querySelectorAll('text').forEach(function (t) {
        const s = (t.textContent || '').trim();
        if (!s) { return; }
        checked += 1;
        const r = t.getBoundingClientRect();
        const outside = r.left < box.left - 1 || r.right > box.right + 1 ||
          r.top < box.top - 1 || r.bottom > box.bottom + 1;
        if (outside || s.endsWith('\\u2026')) {
          clipped.push({text: s, where: svg.closest('section') ? svg.closest('section').id : '',
                        width: r.width, box: box.width});
        }
      });
    });
    // A table wider than its section scrolls sideways: its right columns are out of sight.
    document.querySelectorAll('h1, h2, dt, dd, .note, .flag, th, td, .wrap').forEach(
      function (el) {
      checked += 1;
      if (el.scrollWidth > el.clientWidth + 1) {
        clipped.push({text: el.textContent.slice(0, 80), where: el.tagName,
                      width: el.scrollWidth, box: el.clientWidth});
      }
    });
    return {checked: checked, charts: document.querySelectorAll('.vis svg.marks').length,
            clipped: clipped};
  }
  const jobs = Array.from(document.querySelectorAll('script.vl-spec')).map(function (el) {
    return vegaEmbed('#' + el.dataset.target, JSON.parse(el.textContent), {
      renderer: 'svg', actions: {export: true, source: false, compiled: false, editor: false}});
  });
  Promise.all(jobs).then(function () {
    out.textContent = JSON.stringify(check());
  }, function (err) {
    out.textContent = JSON.stringify({error: String(err), clipped: [], checked: 0});
  });
})();
"""


def _html_table(df: pl.DataFrame, max_rows: int = 500) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in df.columns)
    rows = "".join("<tr>" + "".join(f"<td>{escape(format_cell(v))}</td>" for v in row)
                   + "</tr>" for row in df.head(max_rows).iter_rows())
    more = (f"<p class='note'>{df.height - max_rows} more rows not shown.</p>"
            if df.height > max_rows else "")
    return f"<div class='wrap'><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>" \
           f"</table></div>{more}"


def _spec_json(spec: dict[str, Any]) -> str:
    # Inside <script> only "</" could end the element early: write every "<" as an escape.
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), allow_nan=False
                      ).replace("<", "\\u003c")


def _sections(report: Report) -> list[str]:
    figures: dict[str, list[dict[str, Any]]] = {}
    for fig in report.figures:
        figures.setdefault(fig.section, []).append(fig.spec)
    sections, n = [], 0
    for title, table in report.tables.items():
        parts = [f"<section id='{_slug(title)}'><h2>{escape(title)}</h2>"]
        if title in report.notes:
            parts.append(f"<p class='note'>{escape(report.notes[title])}</p>")
        parts.extend(f"<p class='flag'>{escape(flag)}</p>"
                     for flag in report.flags.get(title, []))
        for spec in figures.get(title, []):
            n += 1
            parts.append(f"<figure><div class='vis' id='vis-{n}'></div></figure>"
                         f"<script type='application/json' class='vl-spec' "
                         f"data-target='vis-{n}'>{_spec_json(spec)}</script>")
        parts.append(_html_table(table) + "</section>")
        sections.append("".join(parts))
    return sections


def render_html(report: Report, path: str | Path) -> Path:
    """Write the report as one self-contained HTML file (no URL is loaded).

    Args:
        report: The report.
        path: Output file.

    Returns:
        The written path.
    """
    path = Path(path)
    header = "".join(f"<div class='field' data-field='{escape(k)}'><dt>{escape(k)}</dt>"
                     f"<dd>{escape(v)}</dd></div>" for k, v in report.header)
    runs = escape(", ".join(report.run_ids[:12])) + (" …" if len(report.run_ids) > 12 else "")
    html = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{escape(report.title)}</title><style>{_CSS}</style>"
            f"<script>{javascript_bundle()}</script></head><body><main>"
            f"<h1>TraitLab report: {escape(report.title)}</h1>"
            f"<dl class='header' id='provenance'>{header}</dl>"
            f"<div class='meta'>runs: {runs}</div>"
            + "\n".join(_sections(report))
            + "<pre id='label-check' hidden></pre>"
            f"<script>{_SCRIPT}</script></main></body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def print_report(report: Report, max_rows: int = 20) -> None:
    """Print the report's header and tables with rich (charts are HTML-only); text is inert."""
    from rich.console import Console
    from rich.markup import escape as rich_escape
    from rich.table import Table

    console = Console(emoji=False, highlight=False)
    console.print(f"[bold]{rich_escape(report.title)}[/bold]")
    for name, value in report.header:
        console.print(f"  {rich_escape(name)}: {rich_escape(value)}", highlight=False)
    for title, df in report.tables.items():
        table = Table(title=rich_escape(title), title_justify="left")
        for col in df.columns:
            numeric = df[col].dtype.is_numeric()
            table.add_column(rich_escape(col), justify="right" if numeric else "left")
        for row in df.head(max_rows).iter_rows():
            table.add_row(*(rich_escape(format_cell(v)) for v in row))
        console.print(table)
        for flag in report.flags.get(title, []):
            console.print(f"[yellow]{rich_escape(flag)}[/yellow]")
        if df.height > max_rows:
            console.print(f"... {df.height - max_rows} more rows (see --html)")
