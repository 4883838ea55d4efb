"use strict";
// Shared helpers of the view's scripts (loaded first). Agent and user text is data: it
// reaches the document only through textContent and attribute values, never as markup.
const SVGNS = "http://www.w3.org/2000/svg";
const PALETTE = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2",
                 "#edc948", "#ff9da7", "#9c755f", "#bab0ac"];
const RAMP = [[222, 235, 247], [8, 48, 107]];  // a numeric variable: light (low) to dark
const S = { meta: null, pop: null, snap: null, agg: null, replica: 0, step: 0, agent: null,
            group: null, colours: {}, playing: null, polls: 0, failures: 0, token: 0,
            colourBy: "choice", sizeBy: "score", controlKey: "" };
const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}
function svg(tag, attrs) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
async function api(path, body) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 15000);
  try {
    const init = body ? { method: "POST", body: JSON.stringify(body),
                          headers: { "Content-Type": "application/json" } } : {};
    const res = await fetch(path, { ...init, signal: ctl.signal });
    const data = await res.json();
    if (!res.ok) throw new Error(data.error || data.status || res.status);
    return data;
  } finally { clearTimeout(timer); }
}
function fmt(x, digits) {
  if (x === null || x === undefined) return "-";
  return typeof x === "number" ? x.toFixed(digits) : String(x);
}
function colourOf(name) {
  if (name === null || name === undefined) return "#dddddd";
  if (!(name in S.colours)) {
    S.colours[name] = PALETTE[Object.keys(S.colours).length % PALETTE.length];
  }
  return S.colours[name];
}
function rampColour(t) {  // t in [0, 1]
  const u = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0));
  const c = RAMP[0].map((a, i) => Math.round(a + (RAMP[1][i] - a) * u));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}
function dl(pairs) {
  const list = el("dl");
  for (const [k, v] of pairs) list.append(el("dt", k), el("dd", v));
  return list;
}
function row(cells, tag) {
  const tr = el("tr");
  for (const v of cells) tr.append(el(tag, v));
  return tr;
}
function variable(name, scope) {  // a declared variable, from the aggregates payload
  return ((S.agg && S.agg.variables) || []).find((v) => v.name === name && v.scope === scope)
    || null;
}
