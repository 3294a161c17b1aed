"use strict";
// The investigator page: rings, the review queue, cases and lists on the left; the graph
// (cytoscape, vendored) in the middle; evidence, history, labels, cases and actions on the right.
const COLORS = { user: "#3d6bd6", card: "#e39b1b", device: "#1f9d6b", ip: "#8b5cc7", merchant: "#7b8494" };
const SHAPES = { user: "ellipse", card: "round-rectangle", device: "diamond", ip: "hexagon", merchant: "rectangle" };
// a payee's account (the counterparty of transfers; the graph keeps it as a merchant node): its
// owner's colour, a merchant's shape, so money moved between accounts does not read as shopping
const PAYEE_COLOR = "#8fb0ec";
const PAGE = 25;
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const enc = encodeURIComponent;
const day = (ts) => (ts ? new Date(ts * 1000).toISOString().slice(0, 10) : "?");
const when = (ts) => (ts ? new Date(ts * 1000).toISOString().slice(0, 16).replace("T", " ") : "?");
const state = { offset: 0, view: null, graph: null, expanded: new Set(), ring: null, evidence: null };

const keyInput = $("key");
keyInput.value = localStorage.getItem("fraudring-key") || "";
keyInput.addEventListener("change", () => { localStorage.setItem("fraudring-key", keyInput.value); refreshLeft(); });

function status(text) { $("status").textContent = text; }

async function call(path, opts = {}) {
  const t0 = performance.now();
  const res = await fetch(path, { ...opts, headers: { "X-API-Key": keyInput.value, "Content-Type": "application/json", ...(opts.headers || {}) } });
  status(`${opts.method || "GET"} ${path.split("?")[0]} → ${res.status} in ${(performance.now() - t0).toFixed(0)} ms`);
  return res;
}

async function api(path, opts = {}) {
  const res = await call(path, opts);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    // a person reads this, not a client: say where the key goes rather than which header
    const text = res.status === 401 ? "Enter your API key in the box at the top right." : body.message || res.statusText;
    const err = new Error(text);
    err.status = res.status; err.body = body;
    throw err;
  }
  return body;
}
const post = (path, body, method = "POST") => api(path, { method, body: JSON.stringify(body) });

function detail(html) { $("detail").innerHTML = html; }
function msg(el, text, err = false) { el.innerHTML = `<div class="msg${err ? " err" : ""}">${text}</div>`; }

// --- left: tabs -------------------------------------------------------------------------------
document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => {
  document.querySelectorAll(".tabs button").forEach((x) => x.classList.toggle("on", x === b));
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("hidden", t.id !== `tab-${b.dataset.tab}`));
  ({ rings: loadRings, review: loadReview, cases: loadCases, lists: loadLists })[b.dataset.tab]();
}));

function refreshLeft() { loadRings(); }

function ringQuery() {
  const p = new URLSearchParams({ limit: PAGE, offset: state.offset });
  if ($("q").value.trim()) p.set("q", $("q").value.trim());
  if ($("fmin").value) p.set("min_size", $("fmin").value);
  if (Number($("frisk").value) > 0) p.set("min_risk", $("frisk").value);
  if ($("ftyp").value) p.set("typology", $("ftyp").value);
  if ($("fnew").value) p.set("new_since", String(Date.parse($("fnew").value) / 1000));
  return p;
}

const FLAGGED = {
  labels: "on its labels: two or more labelled members tied by unusual sharing",
  shape: "on its shape: most groups like it in this population turned out to be rings",
  size: "on its size alone",
  none: "not suspicious: a group that shares entities; its members carry its ring risk",
};

async function loadRings() {
  const tbody = $("rings").querySelector("tbody");
  try {
    const page = await api(`/v1/rings/search?${ringQuery()}`);
    tbody.innerHTML = page.rings.map((r) => `<tr class="row" data-id="${esc(r.id)}" title="${esc(r.id)} · ${esc(page.typology[r.id])}">
      <td>${esc(r.id)}</td><td>${r.size}</td><td>${r.fraud_n}/${r.size}</td>
      <td><span class="bar" style="width:${Math.round(30 * r.risk)}px"></span> ${r.risk.toFixed(2)}</td></tr>`).join("")
      || `<tr><td colspan="4" class="muted">no rings match</td></tr>`;
    tbody.querySelectorAll("tr.row").forEach((tr) => tr.addEventListener("click", () => showRing(tr.dataset.id).catch(showError)));
    const last = Math.min(state.offset + PAGE, page.total);
    $("pageinfo").textContent = `${page.total ? state.offset + 1 : 0}–${last} of ${page.total}`;
    $("prev").disabled = state.offset === 0;
    $("next").disabled = last >= page.total;
  } catch (e) { tbody.innerHTML = `<tr><td colspan="4" class="muted">${esc(e.message)}</td></tr>`; }
}
$("filters").addEventListener("input", () => { state.offset = 0; clearTimeout(state.t); state.t = setTimeout(loadRings, 250); });
$("filters").addEventListener("submit", (e) => e.preventDefault());
$("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadRings(); });
$("next").addEventListener("click", () => { state.offset += PAGE; loadRings(); });

async function loadReview() {
  const tbody = $("review").querySelector("tbody");
  try {
    const page = await api("/v1/review?limit=100");
    state.review = new Map(page.items.map((i) => [i.txn_id, i]));
    tbody.innerHTML = page.items.map((i) => `<tr class="row" data-id="${esc(i.txn_id)}"><td>${esc(i.txn_id)}</td><td>${when(i.decided_at)}</td>
      <td>${i.decision && i.decision.score != null ? i.decision.score.toFixed(2) : ""}</td><td>${i.ring ? esc(i.ring.id) : ""}</td></tr>`).join("")
      || `<tr><td colspan="4" class="muted">nothing to review</td></tr>`;
    tbody.querySelectorAll("tr.row").forEach((tr) => tr.addEventListener("click", () => showReview(state.review.get(tr.dataset.id))));
  } catch (e) { tbody.innerHTML = `<tr><td colspan="4" class="muted">${esc(e.message)}</td></tr>`; }
}

async function loadCases() {
  const tbody = $("cases").querySelector("tbody");
  try {
    const s = $("cstatus").value;
    const page = await api(`/v1/cases?limit=200${s ? `&status=${s}` : ""}`);
    tbody.innerHTML = page.cases.map((c) => `<tr class="row" data-id="${esc(c.id)}"><td>${esc(c.id)}</td><td title="${esc(c.subject_id)}">${esc(c.subject_kind)} ${esc(c.subject_id)}</td>
      <td>${esc(c.status)}</td><td>${esc(c.assignee || "")}</td></tr>`).join("") || `<tr><td colspan="4" class="muted">no cases</td></tr>`;
    tbody.querySelectorAll("tr.row").forEach((tr) => tr.addEventListener("click", () => showCase(tr.dataset.id).catch(showError)));
  } catch (e) { tbody.innerHTML = `<tr><td colspan="4" class="muted">${esc(e.message)}</td></tr>`; }
}
$("cstatus").addEventListener("change", loadCases);

async function loadLists() {
  const tbody = $("lists").querySelector("tbody");
  try {
    const page = await api("/v1/lists?limit=500");
    tbody.innerHTML = page.entries.map((e) => `<tr title="${esc(e.reason)}"><td>${esc(e.list)}</td><td>${esc(e.kind)}:${esc(e.id)}</td><td>${when(e.expires_at)}</td><td>${esc(e.by)}</td></tr>`).join("")
      || `<tr><td colspan="4" class="muted">no list entries</td></tr>`;
  } catch (e) { tbody.innerHTML = `<tr><td colspan="4" class="muted">${esc(e.message)}</td></tr>`; }
}

function showError(e) { detail(`<div class="msg err">${esc(e.message)}</div>`); }

// --- the graph ----------------------------------------------------------------------------------
const cy = cytoscape({
  container: $("cy"),
  wheelSensitivity: 0.25, minZoom: 0.05, maxZoom: 5, hideEdgesOnViewport: true, textureOnViewport: true,
  style: [
    { selector: "node", style: { "background-color": "data(color)", shape: "data(shape)", width: 14, height: 14, label: "data(label)", "font-size": 8, "min-zoomed-font-size": 7, color: "#394150", "text-valign": "bottom", "text-margin-y": 2, "border-width": 1, "border-color": "#fff" } },
    { selector: "node[kind = 'user']", style: { width: 16, height: 16 } },
    { selector: "node.fraudtx", style: { "border-width": 2, "border-style": "dashed", "border-color": "#e39b1b" } },
    { selector: "node.fraud", style: { "border-width": 3, "border-style": "solid", "border-color": "#d1343a" } },
    { selector: "node.start", style: { "border-width": 5, "border-style": "double", "border-color": "#111", width: 24, height: 24 } },
    { selector: "node.group", style: { shape: "round-rectangle", "background-color": "#c9ced8", width: 46, height: 18, "text-valign": "center", "text-margin-y": 0, "font-size": 9 } },
    { selector: "node:selected", style: { "overlay-color": "#3d6bd6", "overlay-opacity": 0.25 } },
    { selector: "node.hl", style: { "overlay-color": "#d1343a", "overlay-opacity": 0.3 } },
    { selector: "edge", style: { width: "data(w)", "line-color": "#b7bec9", "curve-style": "haystack", opacity: 0.8 } },
    { selector: "edge.fraud", style: { "line-color": "#d1343a" } },
  ],
});
window.fraudringCy = cy;  // for the browser test and the console
cy.on("tap", "node", (ev) => {
  const d = ev.target.data();
  if (d.group) { state.expanded.add(d.hub); redraw({ keep: true }); return; }
  nodeDetail(d.kind, d.id).catch(showError);
});
$("fit").addEventListener("click", () => cy.fit(undefined, 30));
document.querySelectorAll(".kinds input").forEach((i) => i.addEventListener("change", () => {
  if (state.view && state.view.type === "entity") showEntity(state.view.kind, state.view.id, state.view.hops).catch(showError);
  else redraw({ keep: true });
}));
$("hubcap").addEventListener("change", () => redraw({ keep: true }));

function visibleKinds() {
  return new Set(["user", ...[...document.querySelectorAll(".kinds input")].filter((i) => i.checked).map((i) => i.dataset.kind)]);
}

function elements(graph) {
  const kinds = visibleKinds();
  const cap = Math.max(2, Number($("hubcap").value) || 20);
  const keyOf = (n) => `${n.kind}:${n.id}`;
  const nodes = new Map(graph.nodes.filter((n) => kinds.has(n.kind)).map((n) => [keyOf(n), n]));
  const edges = graph.edges.filter((e) => nodes.has(`user:${e.user_id}`) && nodes.has(`${e.kind}:${e.entity_id}`));
  const keep = graph.keep || new Set();
  // hubs: an entity tied to more than `cap` accounts in view; its accounts with no other link
  // in view fold into one counted node (click it to expand)
  const byUser = new Map(), byEntity = new Map();
  for (const e of edges) {
    const u = `user:${e.user_id}`, x = `${e.kind}:${e.entity_id}`;
    (byUser.get(u) || byUser.set(u, []).get(u)).push(x);
    (byEntity.get(x) || byEntity.set(x, []).get(x)).push(u);
  }
  const hidden = new Set(), groups = [];
  for (const [x, users] of byEntity) {
    if (users.length <= cap || state.expanded.has(x)) continue;
    const leaves = users.filter((u) => byUser.get(u).length === 1 && !keep.has(u) && u !== graph.start);
    if (leaves.length < 2) continue;
    leaves.forEach((u) => hidden.add(u));
    groups.push({ hub: x, n: leaves.length });
  }
  const els = [];
  for (const [k, n] of nodes) {
    if (hidden.has(k)) continue;
    if (n.kind === "user" && !byUser.has(k) && k !== graph.start && !keep.has(k)) continue;
    const fraud = n.props && n.props.fraud_label === "fraud";
    const fraudtx = !fraud && n.props && Number(n.props.fraud_txn_n || 0) > 0;
    const payee = n.kind === "merchant" && Boolean(n.props && n.props.account_of);
    els.push({ group: "nodes", data: { id: k, kind: n.kind, ident: n.id, payee, label: payee ? `${n.id} (account)` : n.id, color: payee ? PAYEE_COLOR : COLORS[n.kind], shape: SHAPES[n.kind] },
      classes: [fraud ? "fraud" : "", fraudtx ? "fraudtx" : "", k === graph.start ? "start" : ""].join(" ") });
  }
  for (const g of groups) {
    els.push({ group: "nodes", data: { id: `group:${g.hub}`, group: true, hub: g.hub, label: `${g.n} accounts`, color: "#c9ced8", shape: "round-rectangle" }, classes: "group" });
    els.push({ group: "edges", data: { id: `ge:${g.hub}`, source: `group:${g.hub}`, target: g.hub, w: Math.min(6, 1 + Math.log1p(g.n)) } });
  }
  for (const e of edges) {
    const u = `user:${e.user_id}`;
    if (hidden.has(u)) continue;
    els.push({ group: "edges", data: { id: `${u}|${e.kind}:${e.entity_id}`, source: u, target: `${e.kind}:${e.entity_id}`, w: Math.min(4, 0.8 + Math.log1p(e.n)), n: e.n }, classes: e.fraud_n > 0 ? "fraud" : "" });
  }
  return els;
}

function redraw({ keep = false } = {}) {
  if (!state.graph) return;
  const t0 = performance.now();
  const old = new Map();
  if (keep) cy.nodes().forEach((n) => old.set(n.id(), { ...n.position() }));
  cy.batch(() => { cy.elements().remove(); cy.add(elements(state.graph)); });
  const fresh = cy.nodes().filter((n) => !old.has(n.id()));
  if (keep && old.size && fresh.length < cy.nodes().length) {
    // stable: old nodes stay where they were, new ones circle the node they hang on
    cy.nodes().forEach((n) => { if (old.has(n.id())) n.position(old.get(n.id())); });
    fresh.forEach((n, i) => {
      const anchor = n.neighborhood("node").filter((m) => old.has(m.id()))[0];
      const c = anchor ? anchor.position() : { x: 0, y: 0 };
      const a = (2 * Math.PI * i) / Math.max(1, fresh.length), r = 40 + 4 * Math.sqrt(fresh.length);
      n.position({ x: c.x + r * Math.cos(a), y: c.y + r * Math.sin(a) });
    });
  } else if (cy.nodes().length <= 150) {
    cy.layout({ name: "cose", animate: false, randomize: false, numIter: 600, nodeRepulsion: () => 6000, idealEdgeLength: () => 40 }).run();
    cy.fit(undefined, 30);
  } else {
    rings(cy, state.graph.start);
    cy.fit(undefined, 30);
  }
  requestAnimationFrame(() => {
    const ms = performance.now() - t0;
    window.fraudringDraw = { nodes: cy.nodes().length, edges: cy.edges().length, ms };
    $("drawinfo").textContent = `${cy.nodes().length} nodes, ${cy.edges().length} links drawn in ${ms.toFixed(0)} ms`;
    $("legend-payee").hidden = !cy.nodes("[?payee]").length;
  });
}

// Big pictures: rings by hop distance from the start (or the best-linked node), one pass over
// the nodes (a force layout of several hundred nodes takes seconds); a node's place on its
// ring follows its parent's, so a hub's accounts sit together.
function rings(cy, startId) {
  let start = startId ? cy.getElementById(startId) : cy.collection();
  if (!start.length) start = cy.nodes().max((n) => n.degree()).ele;
  const depth = new Map([[start.id(), 0]]), order = [[start]];
  let frontier = [start];
  while (frontier.length) {
    const next = [];
    for (const n of frontier) n.neighborhood("node").forEach((m) => {
      if (!depth.has(m.id())) { depth.set(m.id(), depth.get(n.id()) + 1); next.push(m); }
    });
    if (next.length) order.push(next);
    frontier = next;
  }
  const rest = cy.nodes().filter((n) => !depth.has(n.id()));
  if (rest.length) order.push(rest.toArray());
  cy.batch(() => order.forEach((ring, d) => {
    const r = d === 0 ? 0 : 60 + d * Math.max(80, ring.length * 2.2);
    ring.forEach((n, i) => { const a = (2 * Math.PI * i) / ring.length; n.position({ x: r * Math.cos(a), y: r * Math.sin(a) }); });
  }));
}

function draw(graph) { state.graph = graph; state.expanded = new Set(); redraw(); }

// --- exports and links ------------------------------------------------------------------------
async function download(fmt) {
  const v = state.view;
  if (!v) return;
  const path = v.type === "ring" ? `/v1/rings/${enc(v.id)}/export?format=${fmt}`
    : `/v1/entities/${enc(v.kind)}/${enc(v.id)}/export?format=${fmt}&hops=${v.hops}&max_nodes=600${followParam()}`;
  const res = await call(path);
  if (!res.ok) { showError(new Error((await res.json().catch(() => ({}))).message || res.statusText)); return; }
  const blob = await res.blob();
  const name = (res.headers.get("content-disposition") || "").match(/filename="([^"]+)"/)?.[1] || `export.${fmt}`;
  window.fraudringLastExport = { fmt, bytes: blob.size, name };
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = name; document.body.appendChild(a); a.click(); a.remove();
}
document.querySelectorAll(".export button").forEach((b) => b.addEventListener("click", () => download(b.dataset.fmt)));
$("share").addEventListener("click", async () => {
  await navigator.clipboard?.writeText(location.href).catch(() => {});
  status(`link: ${location.href}`);
});
function followParam() {
  const k = [...visibleKinds()].filter((x) => x !== "user");
  return k.length === 4 ? "" : `&follow=${k.join(",")}`;
}

// --- ring -------------------------------------------------------------------------------------
async function showRing(id) {
  document.querySelectorAll("#rings tr.sel").forEach((x) => x.classList.remove("sel"));
  document.querySelector(`#rings tr[data-id="${CSS.escape(id)}"]`)?.classList.add("sel");
  state.view = { type: "ring", id };
  history.replaceState(null, "", `#ring=${enc(id)}`);
  const [ev, sub, cases] = await Promise.all([
    api(`/v1/rings/${enc(id)}/evidence`),
    api(`/v1/rings/${enc(id)}/export?format=json`),
    api(`/v1/cases?subject=${enc(`ring:${id}`)}`),
  ]);
  state.ring = ev.ring; state.evidence = ev;
  draw({ ...sub, start: null, keep: new Set(ev.ring.members.map((m) => `user:${m}`)) });
  const r = ev.ring, c = ev.components;
  const open = cases.cases.find((x) => x.status !== "closed");
  const comp = [["fraud rate", c.fraud_rate], ["size", c.size], ["density", c.density], ["young accounts", c.youth]]
    .map(([k, v]) => `<span>${k}</span><div class="b" style="width:${Math.round(400 * v)}%"></div><span>${v.toFixed(3)}</span>`).join("");
  detail(`<h2>Ring ${esc(r.id)}</h2>
    <dl><dt>resembles</dt><dd id="typology">${esc(ev.typology.replace("_", " "))} (${ev.typologies.map((t) => `${esc(t.typology)} ${t.score.toFixed(2)}`).join(", ")})</dd>
    <dt>size</dt><dd>${r.size} accounts, ${Object.keys(ev.homes).length} homes</dd>
    <dt>fraud</dt><dd id="ringfraud">${r.fraud_n} of ${r.size} (${(100 * r.fraud_rate).toFixed(0)}%)</dd>
    <dt>flagged</dt><dd id="ringflag">${esc(FLAGGED[r.flagged_by] || FLAGGED.none)}</dd>
    <dt>risk</dt><dd>${r.risk.toFixed(3)}</dd><dt>active</dt><dd>${when(r.first_activity)} → ${when(r.last_activity)}</dd>
    <dt>case</dt><dd id="ringcase">${open ? `<a href="#" data-case="${esc(open.id)}">${esc(open.id)}</a> (${esc(open.status)})` : `<button id="opencase">Open case</button>`}</dd></dl>
    <h3>Narrative <button id="copynarr">copy</button></h3><pre id="narrative">${esc(ev.narrative)}</pre>
    <h3>Risk ${c.total.toFixed(3)} = recency ${c.recency.toFixed(2)} × parts</h3><div class="comp">${comp}</div>
    <h3>Links, by the risk each carries</h3>
    <table id="evidence-links"><thead><tr><th>entity</th><th>members</th><th>outside</th><th>txns</th><th>risk drop</th></tr></thead><tbody>
    ${ev.links.map((l, i) => `<tr class="row" data-key="${esc(l.kind)}:${esc(l.id)}" title="${esc(l.members.join(", "))} · ${day(l.first_seen)} → ${day(l.last_seen)}"><td>${i + 1}. ${l.account_of ? `account ${esc(l.id)} (of ${esc(l.account_of)})` : `${esc(l.kind)} ${esc(l.id)}`}</td><td>${l.members.length}</td><td>${l.others}</td><td>${l.txn_n}</td><td>${l.risk_drop.toFixed(3)}</td></tr>`).join("")}</tbody></table>
    <h3>Timeline</h3><div id="timeline" class="muted">loading…</div>
    <h3>Members</h3><table id="members"><thead><tr><th>account</th><th>fraud</th><th>joined</th><th>home</th></tr></thead><tbody>
    ${ev.members.map((m) => `<tr class="row" data-id="${esc(m.id)}"><td>${esc(m.id)}</td><td>${m.fraud ? "yes" : ""}${m.fraud_label ? ` (${esc(m.fraud_label)})` : ""}</td><td>${day(m.joined)}</td><td>${esc(m.home || "")}</td></tr>`).join("")}</tbody></table>
    <h3>Label the whole ring</h3><input id="ringreason" placeholder="reason (required)" size="28">
    <button class="fraud" id="ringfraudbtn">Fraud</button><button id="ringlegitbtn">Legitimate</button><div id="ringlabelmsg"></div>
    ${actionForm()}`);
  $("copynarr").onclick = () => navigator.clipboard?.writeText(ev.narrative).catch(() => {});
  document.querySelectorAll("#evidence-links tr.row").forEach((tr) => tr.addEventListener("click", () => {
    cy.nodes().removeClass("hl"); cy.getElementById(tr.dataset.key).addClass("hl").neighborhood("node").addClass("hl");
  }));
  document.querySelectorAll("#members tr.row").forEach((tr) => tr.addEventListener("click", () => nodeDetail("user", tr.dataset.id).catch(showError)));
  const caseLink = document.querySelector("#ringcase a");
  if (caseLink) caseLink.onclick = (e) => { e.preventDefault(); showCase(caseLink.dataset.case).catch(showError); };
  if ($("opencase")) $("opencase").onclick = () => openCase("ring", r.id, $("ringcase"));
  $("ringfraudbtn").onclick = () => labelFlow({ kind: "ring", id: r.id, label: "fraud", reason: $("ringreason").value }, $("ringlabelmsg"));
  $("ringlegitbtn").onclick = () => labelFlow({ kind: "ring", id: r.id, label: "legitimate", reason: $("ringreason").value }, $("ringlabelmsg"));
  wireActions({ ring_id: r.id });
  // a slow answer for a ring no longer on screen is dropped
  const current = () => state.view && state.view.type === "ring" && state.view.id === id && $("timeline");
  api(`/v1/rings/${enc(id)}/timeline`).then((tl) => { if (current()) drawTimeline(tl); }).catch((e) => { if (current()) $("timeline").textContent = e.message; });
}

function ringChanges(tl) {
  // the ring's recorded events (appeared, grew, split, merged ...), oldest first
  const ring = (r) => `<a href="#" data-ring="${esc(r)}">${esc(r)}</a>`;
  // the detail names the related rings: make each a link (longest first: "-2" suffixes)
  const linked = (e) => [...e.related].sort((a, b) => b.length - a.length).reduce(
    (html, r) => html.split(esc(r)).join(`\u0000${e.related.indexOf(r)}\u0000`), esc(e.detail)
  ).replace(/\u0000(\d+)\u0000/g, (_, i) => ring(e.related[Number(i)]));
  const items = tl.events.filter((e) => RING_EVENTS.has(e.event)).map((e) =>
    `<li class="ev-${esc(e.event)}"><span class="muted">${when(e.ts)}</span> <b title="${esc(e.event)}">${linked(e)}</b></li>`).join("");
  return `<ol id="ringevents" class="ringevents">${items || "<li class=\"muted\">no recorded changes yet</li>"}</ol>`;
}
const RING_EVENTS = new Set(["appeared", "grew", "shrank", "split", "split_off", "merged", "merged_into", "dissolved"]);

function wireRingLinks(root) {
  root.querySelectorAll("a[data-ring]").forEach((a) => { a.onclick = (e) => { e.preventDefault(); showRing(a.dataset.ring).catch((err) => goneRing(a.dataset.ring, err)); }; });
}

async function goneRing(id, err) {
  // a ring merged away or dissolved keeps its history: show that instead of the error
  if (err.status !== 404) { showError(err); return; }
  try {
    const tl = await api(`/v1/rings/${enc(id)}/timeline`);
    detail(`<h2>ring ${esc(id)} (gone)</h2><div id="timeline">${ringChanges(tl)}</div>`);
    wireRingLinks($("timeline"));
  } catch (e) { showError(e); }
}

function drawTimeline(tl) {
  const days = tl.days;
  if (!days.length) { $("timeline").innerHTML = `no transactions${ringChanges(tl)}`; wireRingLinks($("timeline")); return; }
  const max = Math.max(...days.map((d) => d.txn_n)), w = 100 / days.length;
  const bars = days.map((d, i) => `<rect x="${i * w}%" y="${70 - 60 * d.txn_n / max}" width="${Math.max(w - 0.3, 0.3)}%" height="${60 * d.txn_n / max}" fill="${d.fraud_txn_n ? "#d1343a" : "#8aa4e0"}"><title>${d.day}: ${d.txn_n} txns, ${d.amount.toFixed(2)}, ${d.fraud_txn_n} fraud</title></rect>`).join("");
  const joined = tl.events.filter((e) => e.event === "joined");
  $("timeline").innerHTML = `<svg class="timeline">${bars}<text x="0" y="86" font-size="10">${days[0].day}</text><text x="100%" y="86" font-size="10" text-anchor="end">${days[days.length - 1].day}</text></svg>
    <div>${joined.length} accounts joined between ${when(joined[0]?.ts)} and ${when(joined[joined.length - 1]?.ts)}; detected ${when(tl.events.find((e) => e.event === "detected")?.ts)}</div>${ringChanges(tl)}`;
  wireRingLinks($("timeline"));
}

// --- labels (with confirmation and undo) ---------------------------------------------------
async function labelFlow(body, out, confirmed = false) {
  if (!body.reason.trim()) { msg(out, "say why: a reason is kept with the label", true); return; }
  try {
    const r = await post("/v1/investigate/labels", { ...body, confirm: confirmed, case_id: state.caseId || null });
    const ring = r.rings.find((x) => state.ring && x.id === state.ring.id) || r.rings[0];
    msg(out, `${r.changed} labelled ${esc(body.label)} by ${esc(r.who)}${ring ? `; ring ${esc(ring.id)} now ${ring.fraud_n} of ${ring.size} fraud, risk ${ring.risk.toFixed(2)}` : ""} <button id="undo-${r.event_id}">Undo</button>`);
    $("who").textContent = `you are ${r.who}`;
    mark(r.targets);
    if (ring && $("ringfraud") && state.ring && ring.id === state.ring.id) $("ringfraud").textContent = `${ring.fraud_n} of ${ring.size} (${(100 * ring.fraud_rate).toFixed(0)}%)`;
    $(`undo-${r.event_id}`).onclick = async () => {
      try {
        const u = await post(`/v1/investigate/labels/${r.event_id}/undo`, { reason: `undo: ${body.reason}` });
        const ring2 = u.rings.find((x) => state.ring && x.id === state.ring.id) || u.rings[0];
        mark(u.targets);
        msg(out, `undone (${u.changed}) by ${esc(u.who)}${ring2 ? `; ring ${esc(ring2.id)} back to ${ring2.fraud_n} of ${ring2.size} fraud` : ""}`);
        if (ring2 && $("ringfraud") && state.ring && ring2.id === state.ring.id) $("ringfraud").textContent = `${ring2.fraud_n} of ${ring2.size} (${(100 * ring2.fraud_rate).toFixed(0)}%)`;
      } catch (e) { msg(out, esc(e.message), true); }
    };
  } catch (e) {
    if (e.status === 409 && e.body.error === "confirmation_required") {
      out.innerHTML = `<div class="confirm">${esc(e.message)}<br><button class="fraud" id="confirmlabel">Yes, label them</button> <button id="cancellabel">Cancel</button></div>`;
      $("confirmlabel").onclick = () => labelFlow(body, out, true);
      $("cancellabel").onclick = () => { out.innerHTML = ""; };
    } else msg(out, esc(e.message), true);
  }
}

// a label shows on the picture at once: [kind, id, old, new] per target
function mark(targets) {
  for (const [kind, id, , now] of targets) {
    const n = cy.getElementById(`${kind}:${id}`);
    if (!n.length) continue;
    n.toggleClass("fraud", now === "fraud");
    const g = state.graph && state.graph.nodes.find((x) => x.kind === kind && x.id === id);
    if (g) g.props = { ...(g.props || {}), fraud_label: now };
  }
}

// --- actions (preview, then apply) -----------------------------------------------------------
function actionForm() {
  return `<h3>Action</h3><div id="actionform">
    <select id="act"><option value="block">block</option><option value="step_up">step up</option><option value="allow">allow</option></select>
    <select id="scope"><option value="members_and_shared">accounts + shared entities</option><option value="members">accounts only</option><option value="shared">shared entities only</option></select>
    <select id="ttl"><option value="3600">1 hour</option><option value="86400">1 day</option><option value="604800" selected>7 days</option><option value="2592000">30 days</option></select>
    <input id="actreason" placeholder="reason (required)" size="24"> <button id="preview">Preview</button><div id="actionmsg"></div></div>`;
}

function wireActions(target) {
  const scopeSel = $("scope");
  if (!target.ring_id) scopeSel.style.display = "none";
  const body = () => ({ ...target, action: $("act").value, ttl_s: Number($("ttl").value), reason: $("actreason").value, case_id: state.caseId || null, ...(target.ring_id ? { scope: scopeSel.value } : {}) });
  $("preview").onclick = async () => {
    const out = $("actionmsg");
    try {
      const p = await post("/v1/actions/preview", body());
      out.innerHTML = `<div class="confirm" id="blast"><b>${esc(p.action)}</b> touches ${Object.entries(p.counts).map(([k, n]) => `${n} ${esc(k)}`).join(", ")};
        ${p.collateral_accounts} accounts outside the ring share a listed entity; ${p.decisions_last_day} transactions of these accounts in the last day;
        ${p.legitimate_looking.length} accounts with no fraud on record${p.legitimate_looking.length ? ` (${p.legitimate_looking.slice(0, 8).map(esc).join(", ")}${p.legitimate_looking.length > 8 ? ", …" : ""})` : ""};
        ${p.already_listed.length} already listed.<br><button class="fraud" id="apply">Apply ${esc(p.action)}</button> <button id="cancelaction">Cancel</button></div>`;
      $("cancelaction").onclick = () => { out.innerHTML = ""; };
      $("apply").onclick = async () => {
        try {
          const a = await post("/v1/actions", body());
          msg(out, `${a.entries.length} entries on the ${esc(a.entries[0]?.list || "")} until ${when(a.entries[0]?.expires_at)}, by ${esc(a.entries[0]?.by || "")}`);
        } catch (e) { msg(out, esc(e.message), true); }
      };
    } catch (e) { msg(out, esc(e.message), true); }
  };
}

// --- entity ------------------------------------------------------------------------------------
async function showEntity(kind, id, hops) {
  state.view = { type: "entity", kind, id, hops };
  history.replaceState(null, "", `#entity=${enc(kind)}:${enc(id)}&hops=${hops}`);
  const hood = await api(`/v1/entities/${enc(kind)}/${enc(id)}/neighbourhood?hops=${hops}&max_nodes=600${followParam()}`);
  draw({ ...hood, start: `${kind}:${id}` });
  await nodeDetail(kind, id);
  if (hood.truncated) $("drawinfo").textContent += " (stopped at 600 nodes)";
}

async function nodeDetail(kind, id, before = null) {
  const [ev, txns] = await Promise.all([
    api(`/v1/entities/${enc(kind)}/${enc(id)}/evidence`),
    api(`/v1/entities/${enc(kind)}/${enc(id)}/transactions?limit=20${before ? `&before=${before}` : ""}`),
  ]);
  detail(`<h2>${esc(kind)} ${esc(id)}</h2><pre id="entitynarr">${esc(ev.narrative)}</pre>
    <dl><dt>label</dt><dd id="entlabel">${esc(ev.label || "none")}${ev.labelled_by ? ` by ${esc(ev.labelled_by)}` : ""}</dd>
    <dt>rings</dt><dd>${ev.rings.map((r) => `<a href="#" data-ring="${esc(r)}">${esc(r)}</a>`).join(", ") || "none"}</dd></dl>
    <button id="hood">Show neighbourhood</button> <button id="opencase">Open case</button> <span id="entcase"></span>
    <h3>Label</h3><input id="reason" placeholder="reason (required)" size="28">
    <button class="fraud" id="lf">Fraud</button><button id="ll">Legitimate</button><div id="lmsg"></div>
    <h3>Transactions</h3><table id="txns"><thead><tr><th>txn</th><th>when</th><th>amount</th><th>label</th></tr></thead><tbody>
    ${txns.transactions.map((t) => `<tr title="${esc(t.user_id)} · ${esc(t.card_id || "")} · ${esc(t.device_id || "")} · ${esc(t.ip || "")} · ${esc(t.merchant_id || "")}"><td>${esc(t.txn_id)}</td><td>${when(t.ts)}</td><td>${t.amount.toFixed(2)}</td><td>${esc(t.label || "")}</td></tr>`).join("") || `<tr><td colspan="4" class="muted">none</td></tr>`}</tbody></table>
    ${txns.next_before ? `<button id="older">older ›</button>` : ""}
    ${kind === "txn" ? "" : actionForm()}`);
  document.querySelectorAll("#detail a[data-ring]").forEach((a) => { a.onclick = (e) => { e.preventDefault(); showRing(a.dataset.ring).catch(showError); }; });
  $("hood").onclick = () => showEntity(kind, id, 2).catch(showError);
  $("opencase").onclick = () => openCase(kind, id, $("entcase"));
  $("lf").onclick = () => labelFlow({ kind, id, label: "fraud", reason: $("reason").value }, $("lmsg"));
  $("ll").onclick = () => labelFlow({ kind, id, label: "legitimate", reason: $("reason").value }, $("lmsg"));
  if ($("older")) $("older").onclick = () => nodeDetail(kind, id, txns.next_before).catch(showError);
  if ($("preview")) wireActions({ kind, id });
}

// --- review queue -----------------------------------------------------------------------------
function showReview(item) {
  const d = item.decision || {}, ex = d.explanation || {}, t = item.txn;
  detail(`<h2>Review ${esc(item.txn_id)}</h2>
    <dl><dt>decided</dt><dd>${when(item.decided_at)}: ${esc(d.decision)} (${esc(d.review_means || "")}), score ${d.score == null ? "n/a" : d.score.toFixed(3)}</dd>
    ${t ? `<dt>payment</dt><dd>${t.amount.toFixed(2)} by ${esc(t.user_id)} at ${esc(t.merchant_id || "?")}; card ${esc(t.card_id || "-")}, device ${esc(t.device_id || "-")}, ip ${esc(t.ip || "-")}</dd>` : `<dt>payment</dt><dd class="muted">not in the graph yet</dd>`}
    <dt>rules</dt><dd>${(ex.rules || []).map((r) => `${esc(r.name)} → ${esc(r.action)}`).join("; ") || "none"}</dd>
    <dt>model</dt><dd>${(ex.contributions || []).slice(0, 5).map((c) => `${esc(c.feature)} ${c.contribution >= 0 ? "+" : ""}${c.contribution.toFixed(2)}`).join(", ") || "none"}</dd>
    <dt>ring</dt><dd>${item.ring ? `<a href="#" id="revring">${esc(item.ring.id)}</a>: ${item.ring.size} accounts, ${item.ring.fraud_n} fraud, risk ${item.ring.risk.toFixed(2)}` : "none"}</dd>
    <dt>notes</dt><dd>${(ex.notes || []).map(esc).join("<br>") || "none"}</dd></dl>
    <h3>Resolve</h3><input id="rreason" placeholder="reason (required)" size="28">
    <button class="fraud" id="rf">Fraud</button><button id="rl">Legitimate</button><div id="rmsg"></div>`);
  if ($("revring")) $("revring").onclick = (e) => { e.preventDefault(); showRing(item.ring.id).catch(showError); };
  const resolve = async (label) => {
    try {
      const r = await post(`/v1/review/${enc(item.txn_id)}/resolve`, { label, reason: $("rreason").value });
      msg($("rmsg"), `resolved: ${esc(label)} by ${esc(r.who)}`);
      loadReview();
    } catch (e) { msg($("rmsg"), esc(e.message), true); }
  };
  $("rf").onclick = () => resolve("fraud");
  $("rl").onclick = () => resolve("legitimate");
}

// --- cases ------------------------------------------------------------------------------------
async function openCase(kind, id, out) {
  try {
    const c = await post("/v1/cases", { subject_kind: kind, subject_id: id, reason: "opened from the investigator page" });
    state.caseId = c.id;
    out.innerHTML = `<a href="#" id="caselink">${esc(c.id)}</a> (open, by ${esc(c.created_by)}); labels and actions now go into it`;
    $("caselink").onclick = (e) => { e.preventDefault(); showCase(c.id).catch(showError); };
  } catch (e) { msg(out, esc(e.message), true); }
}

async function showCase(id) {
  const c = await api(`/v1/cases/${enc(id)}`);
  state.caseId = c.status === "closed" ? null : c.id;
  const opt = (vals, cur) => vals.map((v) => `<option${v === cur ? " selected" : ""}>${v}</option>`).join("");
  detail(`<h2>${esc(c.id)}: ${esc(c.title)}</h2>
    <dl><dt>subject</dt><dd><a href="#" id="subj">${esc(c.subject_kind)} ${esc(c.subject_id)}</a></dd><dt>opened</dt><dd>${when(c.created_at)} by ${esc(c.created_by)}</dd></dl>
    <div><select id="cst">${opt(["open", "investigating", "closed"], c.status)}</select>
    <select id="cdisp"><option value="">no disposition</option>${opt(["fraud_confirmed", "legitimate", "inconclusive"], c.disposition)}</select>
    <input id="cassign" placeholder="assignee" value="${esc(c.assignee || "")}" size="10"></div>
    <textarea id="cnote" rows="3" placeholder="note"></textarea><button class="primary" id="csave">Save</button><div id="cmsg"></div>
    <h3>History</h3><table><thead><tr><th>what</th><th>who</th><th>when</th></tr></thead><tbody>
    ${c.events.map((e) => `<tr title="${esc(e.why)} ${esc(JSON.stringify(e.detail))}"><td>${esc(e.type)}${e.detail.text ? `: ${esc(e.detail.text)}` : ""}${e.detail.to ? ` → ${esc(e.detail.to)}` : ""}</td><td>${esc(e.who)}</td><td>${when(e.at)}</td></tr>`).join("")}</tbody></table>`);
  $("subj").onclick = (e) => { e.preventDefault(); (c.subject_kind === "ring" ? showRing(c.subject_id) : nodeDetail(c.subject_kind, c.subject_id)).catch(showError); };
  $("csave").onclick = async () => {
    const body = { status: $("cst").value, assignee: $("cassign").value, note: $("cnote").value || null, reason: $("cnote").value || "updated on the investigator page" };
    if ($("cdisp").value) body.disposition = $("cdisp").value;
    try { await post(`/v1/cases/${enc(id)}`, body, "PATCH"); await showCase(id); loadCases(); } catch (e) { msg($("cmsg"), esc(e.message), true); }
  };
}

// --- start --------------------------------------------------------------------------------------
$("lookup").addEventListener("submit", (e) => {
  e.preventDefault();
  showEntity($("kind").value, $("entity").value.trim(), Number($("hops").value) || 2).catch(showError);
});
const hash = new URLSearchParams(location.hash.slice(1));
if (hash.get("ring")) showRing(hash.get("ring")).catch(showError);
else if (hash.get("entity")) {
  const [k, ...rest] = hash.get("entity").split(":");
  showEntity(k, rest.join(":"), Number(hash.get("hops")) || 2).catch(showError);
}
loadRings();
