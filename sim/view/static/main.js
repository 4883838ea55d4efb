"use strict";
// The page's loop: poll the run's meta once a second while it runs, draw the step shown,
// and (with --control) the run's buttons and one button per declared intervention.

async function selectAgent(key) {
  S.agent = key;
  paintNodes();
  drawTranscriptGroups();
  await Promise.all([drawTranscript(), drawCard()]);
}

async function render() {
  const started = performance.now();
  const step = S.step, token = ++S.token;
  const snap = await api(`/api/snapshot?replica=${S.replica}&step=${step}`);
  if (token !== S.token) return;  // a later slider move overtook this one
  S.snap = snap;
  const row = S.meta.steps.find((r) => r[0] === step);
  $("step-label").textContent = row ? `step ${step} · round ${row[1]} · ${row[2]}` : `step ${step}`;
  paintNodes();
  drawLegend();
  if (S.agg) drawCharts();
  drawTranscriptGroups();
  await Promise.all([drawTranscript(), drawCard()]);
  $("render-ms").textContent = (performance.now() - started).toFixed(1);
  document.body.dataset.renderedStep = String(step);
}

function showMeta(m) {
  $("title").textContent = `${m.scenario} · ${m.run_id}`;
  for (const opts of Object.values(m.options)) opts.forEach(colourOf);  // scenario order
  const status = $("status");
  status.textContent = `${m.status} · ${m.committed} step(s)`;
  status.className = m.status;
  const slider = $("slider");
  slider.min = m.committed ? 1 : 0;
  slider.max = m.committed;
  if (m.control && m.status === "running") drawControls(m.control);
  else if (S.controlKey) {
    clear($("controls")); clear($("interventions-control")); S.controlKey = "";
  }
  if (m.control) showControl(m.control);
}

function drawControls(c) {  // rebuilt only when the actions or interventions change
  const key = JSON.stringify([c.actions, c.interventions]);
  if (key === S.controlKey) return;
  S.controlKey = key;
  const box = $("controls"), more = $("interventions-control");
  clear(box); clear(more);
  for (const action of c.actions) {
    box.append(button(action, `control-${action}`, { action }));
  }
  for (const id of c.interventions) {
    const b = button(`apply ${id}`, null, { action: "intervene", intervention: id });
    b.dataset.intervention = id;
    b.title = `apply the intervention ${id} at the next step`;
    more.append(b);
  }
}

function button(text, id, body) {
  const b = el("button", text);
  b.type = "button";
  if (id) b.id = id;
  b.addEventListener("click", async () => {
    try { showControl(await api("/api/control", body)); } catch (err) {
      $("control-state").textContent = String(err.message || err);
    }
  });
  return b;
}

function showControl(c) {
  const parts = [c.stopping ? "stopping" : c.paused ?
    (c.waiting_before ? `paused before step ${c.waiting_before}` : "pausing after this step") :
    "running"];
  if (c.queued && c.queued.length) parts.push(`queued for the next step: ${c.queued.join(", ")}`);
  $("control-state").textContent = parts[0];
  $("control-state").title = parts.join("; ");
  const more = $("interventions-control");
  more.dataset.queued = (c.queued || []).join(",");
  more.dataset.applied = (c.applied || []).map((a) => `${a.id}@${a.step}`).join(",");
}

async function poll() {
  let m;
  try { m = await api("/api/meta"); S.failures = 0; } catch (err) {
    S.failures += 1;
    $("status").textContent = S.failures > 5 ? "disconnected" : "waiting for the run";
    if (S.failures <= 600) setTimeout(poll, 1000);
    return;
  }
  const grew = !S.meta || m.committed !== S.meta.committed;
  const atEnd = !S.meta || S.step >= S.meta.committed;
  S.meta = m;
  showMeta(m);
  if (!S.pop || !S.pop.agents.length) await loadReplica();  // written after the manifest
  if (grew) {
    S.agg = await api("/api/aggregates");
    fillPickers();
    if ((atEnd && $("follow").checked) || S.step === 0 || S.step > m.committed) {
      S.step = m.committed;
    }
    $("slider").value = S.step;
    if (S.step > 0) await render();
  }
  S.polls += 1;
  if (m.status === "running" || m.status === undefined) setTimeout(poll, 1000);
}

async function loadReplica() {
  S.pop = await api(`/api/population?replica=${S.replica}`);
  const started = performance.now();
  drawNetwork();
  $("draw-ms").textContent = (performance.now() - started).toFixed(1);
  const select = $("replica");
  if (!select.childElementCount) {
    for (let r = 0; r < S.meta.replicas; r++) {
      const o = el("option", r);
      o.value = r;
      select.append(o);
    }
    select.value = S.replica;
  }
}

function repaint() { if (S.snap) { paintNodes(); drawLegend(); } }

$("slider").addEventListener("input", () => { S.step = Number($("slider").value); render(); });
$("replica").addEventListener("change", async () => {
  S.replica = Number($("replica").value);
  S.pop = null;
  await loadReplica();
  await render();
});
$("group").addEventListener("change", () => { S.group = $("group").value; drawTranscript(); });
$("colour-by").addEventListener("change", () => { S.colourBy = $("colour-by").value; repaint(); });
$("size-by").addEventListener("change", () => { S.sizeBy = $("size-by").value; repaint(); });
$("play").addEventListener("click", () => {
  if (S.playing) { clearInterval(S.playing); S.playing = null; $("play").textContent = "play"; return; }
  if (S.step >= S.meta.committed) S.step = 0;
  $("play").textContent = "stop playing";
  S.playing = setInterval(async () => {
    if (S.step >= S.meta.committed) { $("play").click(); return; }
    S.step += 1;
    $("slider").value = S.step;
    await render();
  }, 800);
});
// A link may name what to show: #step=4&agent=a003&replica=1&colour=wealth&size=wealth
// (shared views, screenshots).
for (const [k, v] of new URLSearchParams(location.hash.slice(1))) {
  if (k === "step") { S.step = Number(v) || 0; $("follow").checked = false; }
  if (k === "agent") S.agent = v;
  if (k === "replica") S.replica = Number(v) || 0;
  if (k === "colour") S.colourBy = v;
  if (k === "size") S.sizeBy = v;
}
poll();
