"""The static leaderboard page: one self-contained HTML file, sortable and filterable, plots inline.

Every string that came from a submission passes through `html.escape` and the script only ever
sets `textContent`/`hidden`, never HTML. A Content-Security-Policy allows exactly the one inline
script (by its sha256) and data: images, so even a missed escape could not run injected code.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from nmlbench.report.aggregate import DisplayConfig
from nmlbench.report.table import EXPLAIN, TEXT_COLUMNS, display_rows

# (key, label, column index in `display_rows`)
FILTERS = (
    ("data", "Data", 2),
    ("model", "Model", 3),
    ("noise", "Noise", 4),
    ("method", "Method", 5),
    ("flags", "Flags", 6),
)
NUMERIC_FROM = len(TEXT_COLUMNS) - 1  # columns from "Seeds" on sort as numbers

SCRIPT = """
(function () {
  "use strict";
  var table = document.getElementById("board");
  var body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;
  function key(row, col, numeric) {
    var cell = row.cells[col];
    if (!numeric) { return cell.textContent.toLowerCase(); }
    var v = parseFloat(cell.getAttribute("data-sort"));
    return isNaN(v) ? -Infinity : v;
  }
  function sortBy(col) {
    var th = heads[col];
    var numeric = th.getAttribute("data-type") === "num";
    var dir = th.getAttribute("aria-sort") === "descending" ? 1 : -1;
    if (!numeric && th.getAttribute("aria-sort") !== "ascending") { dir = 1; }
    for (var i = 0; i < heads.length; i++) { heads[i].removeAttribute("aria-sort"); }
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (r, i) { r.setAttribute("data-pos", i); });
    rows.sort(function (a, b) {
      var ka = key(a, col, numeric), kb = key(b, col, numeric);
      if (ka < kb) { return -dir; }
      if (ka > kb) { return dir; }
      return a.getAttribute("data-pos") - b.getAttribute("data-pos");
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  Array.prototype.forEach.call(heads, function (th, col) {
    th.querySelector("button").addEventListener("click", function () { sortBy(col); });
  });
  var selects = document.querySelectorAll("select[data-filter]");
  function applyFilters() {
    var shown = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var ok = Array.prototype.every.call(selects, function (s) {
        return s.value === "" || row.getAttribute("data-" + s.getAttribute("data-filter")) === s.value;
      });
      row.hidden = !ok;
      if (ok) { shown++; }
    });
    document.getElementById("count").textContent = shown + " of " + body.rows.length + " rows shown";
  }
  Array.prototype.forEach.call(selects, function (s) { s.addEventListener("change", applyFilters); });
  applyFilters();
})();
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; font-size: 0.85rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.5rem; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th button { font: inherit; font-weight: 600; background: none; border: none; cursor: pointer; padding: 0; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; }
th[aria-sort="descending"] button::after { content: " \\25BC"; }
.filters label { margin-right: 1rem; }
figure { display: inline-block; margin: 1rem 1rem 0 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
.wrap { overflow-x: auto; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _sort_value(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(float(value))


def _table(summary: pd.DataFrame, tasks: list[str], cfg: DisplayConfig, table_id: str = "board") -> str:
    header, rows = display_rows(summary, tasks, cfg)
    sort_cols = ["n_seeds", "id_avg_mean", "id_delta_mean", "ood_avg_mean", "ood_delta_mean"] + [
        f"{t}_mean" for t in tasks
    ]
    ths = "".join(
        f'<th scope="col" data-type="{"num" if i >= NUMERIC_FROM else "text"}">'
        f'<button type="button">{_e(h)}</button></th>'
        for i, h in enumerate(header)
    )
    body = []
    for rec, cells in zip(summary.to_dict("records"), rows, strict=True):
        attrs = "".join(f' data-{k}="{_e(cells[c])}"' for k, _, c in FILTERS)
        attrs += f' data-modality="{_e(rec.get("modality") or "image")}"'
        tds = [f"<td>{_e(c)}</td>" for c in cells[:NUMERIC_FROM]]
        tds += [
            f'<td class="num" data-sort="{_sort_value(rec[col])}">{_e(c)}</td>'
            for col, c in zip(sort_cols, cells[NUMERIC_FROM:], strict=True)
        ]
        body.append(f"<tr{attrs}>{''.join(tds)}</tr>")
    return (
        f'<div class="wrap"><table id="{_e(table_id)}"><thead><tr>{ths}</tr></thead>'
        f"<tbody>\n{chr(10).join(body)}\n</tbody></table></div>"
    )


def _filters(rows: list[list[str]], summary: pd.DataFrame) -> str:
    modalities = sorted(set(summary["modality"]) if "modality" in summary else {"image"})
    options = "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in modalities)
    parts = [  # image and text rows never share tasks: the page can show one modality at a time
        f'<label>Modality <select id="filter-modality" data-filter="modality">'
        f'<option value="">all</option>{options}</select></label>'
    ]
    for key, label, col in FILTERS:
        values = sorted({r[col] for r in rows} - {""})  # "" is the "all" option's value
        options = "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)
        parts.append(
            f'<label>{label} <select id="filter-{key}" data-filter="{key}">'
            f'<option value="">all</option>{options}</select></label>'
        )
    return f'<p class="filters">{"".join(parts)}</p><p id="count"></p>'


def _figures(figures: dict[str, Path], captions: dict[str, str]) -> str:
    out = []
    for name, png in figures.items():
        data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
        cap = _e(captions.get(name, name))
        out.append(
            f'<figure id="fig-{_e(name)}"><img alt="{cap}" src="data:image/png;base64,{data}">'
            f"<figcaption>{cap}</figcaption></figure>"
        )
    return "\n".join(out)


def _dense(sections: Sequence[tuple[pd.DataFrame, list[str], DisplayConfig]]) -> str:
    """Dense tasks' tables (box AP, mask AP), apart from the classification board, sorted by ID AP."""
    out = []
    for summary, tasks, cfg in sections:
        metric = cfg.metric_names.get(cfg.metric, cfg.metric)
        out.append(f"<h2>Dense transfer: {_e(metric)}</h2>\n<p>COCO {_e(metric)} (COCOeval, percent) on "
                   "detection / instance segmentation tasks; never averaged with classification.</p>\n"
                   + _table(summary, tasks, cfg, f"dense-{cfg.metric}"))
    return "\n".join(out)


def render(
    summary: pd.DataFrame | None,
    tasks: list[str],
    cfg: DisplayConfig,
    figures: dict[str, Path],
    captions: dict[str, str],
    dense: Sequence[tuple[pd.DataFrame, list[str], DisplayConfig]] = (),
) -> str:
    """The whole page as a string; `figures` maps a figure name to its PNG. `summary` None: a board
    of dense results only; `dense`: (summary, tasks, config) per AP metric, shown after the board."""
    script_hash = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
    csp = (
        f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; "
        "base-uri 'none'; form-action 'none'"
    )
    metric = cfg.metric_names.get(cfg.metric, cfg.metric)
    board = ""
    if summary is not None:
        _, rows = display_rows(summary, tasks, cfg)
        board = (f"<p>Metric: {_e(metric)}. {_e(EXPLAIN)} Click a column header to sort.</p>\n"
                 f"{_filters(rows, summary)}\n{_table(summary, tasks, cfg)}\n")
    figs = f"<h2>Figures</h2>\n{_figures(figures, captions)}\n" if summary is not None or figures else ""
    script = f"<script>{SCRIPT}</script>" if summary is not None else ""  # it drives the board table
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(cfg.title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{_e(cfg.title)}</h1>
{board}{_dense(dense)}
{figs}{script}
</body>
</html>
"""
