"use strict";
// The per-round panels (mean over replicas with a lowest-to-highest band), the interventions
// marked on them as a vertical rule with the id, and the list of applied interventions.

function drawCharts() {
  const box = $("charts");
  clear(box);
  const round = currentRound();
  const marks = interventionMarks();
  for (const panel of S.agg.panels) {
    box.append(el("div", panel.title, "muted"));
    box.append(chart(panel, round, marks));
  }
  $("band-note").textContent = `(mean over ${S.agg.replicas} replica(s); band: ${S.agg.band})`;
  drawInterventions();
}

function interventionMarks() {  // one rule per id and round, whichever replicas it fired in
  const seen = new Map();
  for (const i of S.agg.interventions || []) seen.set(`${i.id} ${i.round}`, [i.round, i.id]);
  return [...seen.values()];
}

function chart(panel, round, marks, xName) {
  const W = 520, H = 125, L = 40, B = 22;
  const g = svg("svg", { viewBox: `0 0 ${W} ${H + 14 * panel.series.length}`, class: "chart",
                         width: "100%" });
  if (panel.state) g.dataset.state = panel.state;
  const pts = panel.series.flatMap((s) => s.points);
  if (!pts.length) return g;
  const x0 = Math.min(...pts.map((p) => p[0])), x1 = Math.max(...pts.map((p) => p[0]));
  const y0 = Math.min(0, ...pts.map((p) => p[2])), y1 = Math.max(1e-9, ...pts.map((p) => p[3]));
  const X = (x) => L + (W - L - 10) * (x1 === x0 ? 0.5 : (x - x0) / (x1 - x0));
  const Y = (y) => 6 + (H - B - 6) * (1 - (y - y0) / (y1 - y0 || 1));
  g.append(svg("line", { x1: L, y1: Y(y0), x2: W - 10, y2: Y(y0), stroke: "#999" }));
  for (const [v, y] of [[y0, Y(y0)], [y1, Y(y1)]]) {
    const t = svg("text", { x: L - 4, y: y + 3, "text-anchor": "end" });
    t.textContent = fmt(v, 2);
    g.append(t);
  }
  const label = svg("text", { x: W - 10, y: H - 6, "text-anchor": "end" });
  label.textContent = `${xName || "round"} (${x0}-${x1})`;
  g.append(label);
  for (const [r, id] of marks || []) {
    // applied at the start of round r: between the ends of rounds r-1 and r
    const x = X(Math.max(x0, Math.min(x1, r - 0.5)));
    g.append(svg("line", { x1: x, y1: 6, x2: x, y2: H - B, stroke: "#b30000",
                           "stroke-width": 1.2, class: "intervention-rule" }));
    const t = svg("text", { x: x + 3, y: 14, class: "mark" });
    t.textContent = id;
    g.append(t);
  }
  if (round !== null) {
    g.append(svg("line", { x1: X(round), y1: 6, x2: X(round), y2: H - B, stroke: "#333",
                           "stroke-dasharray": "3 3", class: "now" }));
  }
  panel.series.forEach((s, k) => {
    const colour = panel.series.length === 1 ? "#4e79a7" : colourOf(s.name);
    const band = s.points.map((p) => `${X(p[0])},${Y(p[3])}`)
      .concat(s.points.slice().reverse().map((p) => `${X(p[0])},${Y(p[2])}`));
    g.append(svg("polygon", { points: band.join(" "), fill: colour, "fill-opacity": 0.18 }));
    g.append(svg("polyline", { points: s.points.map((p) => `${X(p[0])},${Y(p[1])}`).join(" "),
                               fill: "none", stroke: colour, "stroke-width": 1.8 }));
    const key = svg("text", { x: L, y: H + 12 * (k + 1), fill: colour });
    key.textContent = s.name;
    g.append(key);
  });
  return g;
}

function currentRound() {
  const row = S.meta.steps.find((r) => r[0] === S.step);
  return row ? row[1] : null;
}

function drawInterventions() {
  const box = $("interventions");
  clear(box);
  const rows = new Map();  // the same id at the same step in several replicas: one line
  for (const i of S.agg.interventions || []) {
    const key = `${i.id} ${i.step}`;
    if (!rows.has(key)) rows.set(key, { ...i, replicas: [] });
    rows.get(key).replicas.push(i.replica);
  }
  for (const i of rows.values()) {
    const line = el("div", null, "row intervention");
    line.dataset.step = i.step;
    line.append(document.createTextNode("intervention "), el("span", i.id, "intervention-id"));
    line.append(document.createTextNode(` at step ${i.step} (round ${i.round}, before ` +
      `${i.stage}), replica ${i.replicas.join(", ")}` + (i.text ? `: ${i.text}` : "")));
    box.append(line);
  }
}
