"use strict";
// The transcript of a group and the agent card (persona, prompt, memory at the step shown,
// state over time, choices, survey scores).

function drawTranscriptGroups() {
  const select = $("group");
  clear(select);
  for (const g of S.snap.groups) {
    const opt = el("option", `${g.stage} ${g.group} (${g.agents.length})`);
    opt.value = g.group;
    select.append(opt);
  }
  const mine = S.snap.groups.find((g) => S.agent && g.agents.includes(S.agent));
  const keep = S.snap.groups.find((g) => g.group === S.group);
  S.group = mine ? mine.group : keep ? keep.group : (S.snap.groups[0] || {}).group || null;
  if (S.group) select.value = S.group;
}

async function drawTranscript() {
  const box = $("rows");
  clear(box);
  if (!S.group) { box.append(el("div", "no groups at this step", "muted")); return; }
  const t = await api(`/api/transcript?replica=${S.replica}&step=${S.step}` +
                      `&group=${encodeURIComponent(S.group)}`);
  for (const r of t.rows) {
    const line = el("div", null, "row");
    line.append(el("span", r.name, "who"));
    if (r.text !== null) line.append(document.createTextNode(`: ${r.text}`));
    else if (r.choice !== null) {
      line.append(document.createTextNode(` chose ${r.choice}` +
        (r.payoff !== null ? ` (payoff ${fmt(r.payoff, 2)})` : "")));
    } else line.append(document.createTextNode(` [${r.kind}]`));
    box.append(line);
  }
}

async function drawCard() {
  const box = $("card");
  if (!S.agent) { clear(box); return; }
  const c = await api(`/api/agent?replica=${S.replica}&agent=${encodeURIComponent(S.agent)}` +
                      `&step=${S.step}`);
  clear(box);
  $("agent-title").textContent = `${c.persona.name || c.agent} (${c.agent}) at step ${c.step}`;
  const persona = Object.entries(c.persona).map(([k, v]) =>
    [k, typeof v === "number" ? fmt(v, 2) : v]);
  const now = Object.entries(c.state).map(([k, pts]) => [k, fmt(pts[pts.length - 1][2], 2)]);
  box.append(dl([...persona, ["conditioning", c.conditioning || "-"], ...now]));
  box.append(el("h3", "Prompt seen at this step"));
  if (!c.prompts.length) box.append(el("div", "no request at this step", "muted"));
  for (const p of c.prompts) {
    for (const m of p.messages) {
      box.append(el("div", m.role, "muted"));
      box.append(el("pre", m.content, "prompt"));
    }
    if (p.options) box.append(el("div", `options shown: ${p.options.join(", ")}`, "muted"));
  }
  drawMemory(box, c);
  drawAgentState(box, c);
  box.append(el("h3", "Choices"));
  const table = el("table");
  table.append(row(["step", "stage", "choice", "option probabilities"], "th"));
  for (const ch of c.choices.slice(-20)) {
    const probs = (ch.options || []).map((o, i) => `${o} ${fmt(ch.probs ? ch.probs[i] : null, 2)}`);
    table.append(row([ch.step, ch.stage, ch.choice ?? "-", probs.join(", ")], "td"));
  }
  box.append(table);
  if (c.surveys.length) {
    box.append(el("h3", "Survey scores"));
    const st = el("table");
    st.append(row(["round", "instrument", "trait", "score"], "th"));
    for (const s of c.surveys) st.append(row([s.round, s.instrument, s.trait, fmt(s.score, 2)], "td"));
    box.append(st);
  }
}

function drawMemory(box, c) {
  const memory = el("div");
  memory.id = "memory";
  box.append(el("h3", c.memory ? `Memory after step ${c.memory.after_step}` :
                      "History (from the event rows; no checkpoint of this step)"));
  if (c.memory) {
    memory.dataset.step = c.memory.after_step;
    if (!c.memory.moments.length) memory.append(el("div", "nothing yet", "muted"));
    for (const m of c.memory.moments) memory.append(el("div", m, "row moment"));
  } else {
    for (const h of c.history.slice(-12)) {
      memory.append(el("div", `step ${h.step} ${h.stage} ${h.kind}: ` +
        (h.text ?? h.choice ?? "") + (h.payoff !== null ? ` (payoff ${fmt(h.payoff, 2)})` : ""),
        "row"));
    }
  }
  box.append(memory);
}

function drawAgentState(box, c) {  // each agent variable over the steps so far
  for (const [name, pts] of Object.entries(c.state)) {
    box.append(el("h3", `State: ${name}`));
    if (pts.length && typeof pts[0][2] === "number") {
      const panel = { title: name, series: [{ name: name,
        points: pts.map((p) => [p[0], p[2], p[2], p[2]]) }] };
      const g = chart(panel, S.step, [], "step");
      g.classList.add("agent-state");
      box.append(g);
    } else {
      box.append(el("div", pts.slice(-12).map((p) => `step ${p[0]}: ${p[2]}`).join(", "),
                    "row"));
    }
  }
}
