"use strict";
// The network panel: one circle per agent (or per group of agents above --max-nodes),
// coloured by the last choice or an agent variable and sized by score or a variable.

function drawNetwork() {
  const nodes = $("nodes"), edges = $("edges"), pop = S.pop;
  clear(nodes); clear(edges);
  if (pop.mode === "groups") {
    $("net-note").textContent = `${pop.agents.length} agents shown as ${pop.groups.length} ` +
      `groups by ${pop.group_by} (more than ${pop.max_nodes} agents)`;
    pop.groups.forEach((g, i) => {
      const c = svg("circle", { cx: 30 + 540 * g.x, cy: 30 + 540 * g.y, r: 8,
                                class: "agent group", "data-group": i });
      c.append(svg("title"));
      nodes.append(c);
    });
    return;
  }
  $("net-note").textContent = `${pop.agents.length} agents` +
    (pop.edges.length ? `, ${pop.edges.length} ties` : ", no network: agents in a circle/grid");
  const pos = pop.agents.map((a) => [30 + 540 * a.x, 30 + 540 * a.y]);
  for (const [s, t] of pop.edges) {
    edges.append(svg("line", { x1: pos[s][0], y1: pos[s][1], x2: pos[t][0], y2: pos[t][1],
                               class: "edge" }));
  }
  const r = Math.max(2, Math.min(12, 220 / Math.sqrt(pop.agents.length + 1)));
  pop.agents.forEach((a, i) => {
    const c = svg("circle", { cx: pos[i][0], cy: pos[i][1], r: r, class: "agent",
                              "data-agent": a.key, "data-index": i });
    const title = svg("title");
    title.textContent = describe(a);
    c.append(title);
    c.addEventListener("click", () => selectAgent(a.key));
    nodes.append(c);
    if (pop.agents.length <= 40) {  // names fit beside the nodes of a small population
      const label = svg("text", { x: pos[i][0] + r + 3, y: pos[i][1] + 4, class: "name" });
      label.textContent = a.name;
      edges.append(label);
    }
  });
  S.baseRadius = r;
}

function describe(a) {
  const parts = [`${a.name} (${a.key})`];
  for (const k of ["cohort", "role", "policy", "backend"]) if (a[k]) parts.push(`${k}: ${a[k]}`);
  return parts.join("\n");
}

// What a node shows: the values of the chosen colour and size variables, one per agent.
function colourValues() {
  return S.colourBy === "choice" ? S.snap.choice : (S.snap.state[S.colourBy] || []);
}
function sizeValues() {
  return S.sizeBy === "score" ? S.snap.score : (S.snap.state[S.sizeBy] || []);
}
function numericScale(name, values) {  // [lo, hi] of a variable, else of the values shown
  const v = name === "score" || name === "choice" ? null : variable(name, "agent");
  const seen = values.filter((x) => typeof x === "number");
  const lo = v && v.lo !== null ? v.lo : Math.min(0, ...seen);
  const hi = v && v.hi !== null ? v.hi : Math.max(1, ...seen);
  return (x) => (typeof x !== "number" ? 0 : (x - lo) / (hi - lo || 1));
}
function colourFor(value, scale) {
  const v = S.colourBy === "choice" ? null : variable(S.colourBy, "agent");
  if (value === null || value === undefined) return "#dddddd";
  return v && v.kind === "number" ? rampColour(scale(value)) : colourOf(value);
}

function paintNodes() {
  const snap = S.snap, pop = S.pop, colours = colourValues(), sizes = sizeValues();
  const cScale = numericScale(S.colourBy, colours), sScale = numericScale(S.sizeBy, sizes);
  if (pop.mode === "groups") return paintGroups(colours, sizes, cScale, sScale);
  const names = Object.keys(snap.state);
  const circles = $("nodes").children;
  for (let i = 0; i < circles.length; i++) {
    const c = circles[i];
    c.setAttribute("fill", colourFor(colours[i], cScale));
    c.setAttribute("r", (S.baseRadius * (0.6 + 0.8 * sScale(sizes[i]))).toFixed(2));
    c.classList.toggle("selected", pop.agents[i].key === S.agent);
    const state = names.map((n) => `\n${n}: ${fmt(snap.state[n][i], 2)}`).join("");
    c.firstChild.textContent = describe(pop.agents[i]) +
      `\nlast choice: ${snap.choice[i] ?? "-"}\nscore: ${fmt(snap.score[i], 2)}${state}`;
  }
}

function paintGroups(colours, sizes, cScale, sScale) {
  const circles = $("nodes").children;
  const v = S.colourBy === "choice" ? null : variable(S.colourBy, "agent");
  S.pop.groups.forEach((g, j) => {
    const counts = {};
    let total = 0, sum = 0, numbers = 0;
    for (const i of g.members) {
      const x = colours[i] ?? "(none)";
      counts[x] = (counts[x] || 0) + 1;
      if (typeof colours[i] === "number") { sum += colours[i]; numbers += 1; }
      total += typeof sizes[i] === "number" ? sizes[i] : 0;
    }
    const mode = Object.entries(counts).sort((a, b) => b[1] - a[1])[0][0];
    const mean = total / g.members.length;
    const c = circles[j];
    c.setAttribute("fill", v && v.kind === "number" ? rampColour(cScale(sum / (numbers || 1)))
      : colourOf(mode === "(none)" ? null : mode));
    c.setAttribute("r", (6 + 3 * Math.sqrt(g.members.length) * (0.5 + sScale(mean))).toFixed(1));
    const shares = Object.entries(counts).slice(0, 12).map(([k, n]) => `${k}: ${n}`).join(", ");
    c.firstChild.textContent = `${g.name}: ${g.members.length} agents\n${S.colourBy}: ` +
      `${shares}\nmean ${S.sizeBy}: ${fmt(mean, 2)}`;
  });
}

function drawLegend() {
  const box = $("legend");
  clear(box);
  const v = S.colourBy === "choice" ? null : variable(S.colourBy, "agent");
  if (v && v.kind === "number") {
    const ramp = el("span", null, "ramp");
    ramp.append(document.createTextNode(`${v.name} ${fmt(v.lo, 1)} `));
    for (let k = 0; k <= 4; k++) {
      const sw = el("span", null, "swatch");
      sw.style.background = rampColour(k / 4);
      ramp.append(sw);
    }
    ramp.append(document.createTextNode(` ${fmt(v.hi, 1)}`));
    box.append(ramp);
  } else {
    const names = v ? v.values : Object.keys(S.colours);
    for (const name of names) {
      const item = el("span");
      const sw = el("span", null, "swatch");
      sw.style.background = colourOf(name);
      item.append(sw, document.createTextNode(name));
      box.append(item);
    }
  }
  box.append(el("span", `size: ${S.sizeBy}`, "muted"));
  const world = Object.entries(S.snap.world || {}).map(([k, x]) => `${k} ${fmt(x, 1)}`);
  $("world").textContent = world.length ? `world after this step: ${world.join(", ")}` : "";
}

function fillPickers() {  // the agent variables, once the aggregates name them
  for (const [id, numericOnly] of [["colour-by", false], ["size-by", true]]) {
    const select = $(id);
    for (const v of (S.agg.variables || []).filter((x) => x.scope === "agent")) {
      if (numericOnly && v.kind !== "number") continue;
      if ([...select.options].some((o) => o.value === v.name)) continue;
      const o = el("option", `state: ${v.name}`);
      o.value = v.name;
      select.append(o);
    }
    select.value = id === "colour-by" ? S.colourBy : S.sizeBy;
  }
}
