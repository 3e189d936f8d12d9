// MedMatch review console: plain JavaScript, no framework, no build step.
// The token lives in sessionStorage (this tab only) and travels in the Authorization header;
// WebSockets cannot send headers from a browser, so they carry it as the `token` parameter.
// Patient data is only ever in response bodies and on screen, never in a URL.
"use strict";

const API = "/api/v1";
const TOKEN_KEY = "medmatch.token";
const FIELDS = [
  ["name_first", "First name"], ["name_middle", "Middle name"], ["name_last", "Surname"],
  ["name_suffix", "Suffix"], ["date_of_birth", "Date of birth"], ["gender", "Sex"],
  ["phone", "Phone"], ["email", "Email"], ["address_line", "Address"], ["city", "City"],
  ["state", "State"], ["postal_code", "Postcode"], ["ssn", "SSN"], ["mrn", "MRN"],
];
const LABEL = Object.fromEntries(FIELDS);

const state = { token: null, me: null, queue: new Map(), item: null, events: null, run: null };
const $ = (id) => document.getElementById(id);

// -- small helpers --------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

function say(text, kind = "info") {
  const box = $("message");
  box.textContent = text;
  box.dataset.kind = kind;
}

function may(permission) {
  return Boolean(state.me && state.me.permissions.includes(permission));
}

function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}?token=${encodeURIComponent(state.token)}`;
}

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401 && path !== "/me") signOut("Your token is no longer valid.");
  if (!response.ok) throw new ApiError(response.status, detailOf(body) || response.statusText);
  return body;
}

function detailOf(body) {
  if (typeof body.detail === "string") return body.detail;
  if (Array.isArray(body.detail)) return body.detail.map((d) => `${d.loc.slice(1).join(".")}: ${d.msg}`).join("; ");
  return "";
}

function show(screen) {
  for (const node of document.querySelectorAll(".screen")) node.hidden = node.id !== `screen-${screen}`;
  for (const button of document.querySelectorAll("#nav button")) {
    if (button.dataset.screen === screen) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  state.screen = screen;
  const heading = document.querySelector(`#screen-${screen} h1`);
  if (heading) heading.focus();
}

// near certainty shows more digits: 99.99% and 100% are different claims
function percent(p) {
  const tail = Math.min(p, 1 - p);
  if (tail > 0 && tail < 1e-6) return p > 0.5 ? "> 99.9999%" : "< 0.0001%";
  const digits = tail > 0 && tail < 0.001 ? Math.min(4, Math.ceil(-Math.log10(tail)) - 1) : 1;
  return `${(100 * p).toFixed(digits)}%`;
}
const recordLabel = (r) => `${r.source_system} #${r.id}`;
const personLabel = (d) => [d.name_last, d.name_first].filter(Boolean).join(", ") || "(no name)";

// -- sign in --------------------------------------------------------------------------
async function signIn(token) {
  state.token = token;
  let me;
  try {
    me = await api("/me");
  } catch (error) {
    state.token = null;
    say(error.status === 401 ? "That token was not accepted." : `Sign-in failed: ${error.message}`, "error");
    return false;
  }
  if (!me.permissions.includes("review")) {
    state.token = null;
    say(`A ${me.role} token cannot use the review console: ask for a reviewer or operator token.`, "error");
    return false;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  state.me = me;
  $("who-name").textContent = me.name;
  $("who-role").textContent = me.role;
  $("who").hidden = $("nav").hidden = false;
  $("split-controls").hidden = !may("curate");
  $("split-denied").hidden = may("curate");
  $("batch-start").disabled = !may("batch");
  $("batch-denied").hidden = may("batch");
  say(`Signed in as ${me.name}.`);
  connectEvents();
  await loadQueue();
  show("queue");
  return true;
}

function signOut(reason = "Signed out.") {
  sessionStorage.removeItem(TOKEN_KEY);
  if (state.events) state.events.close();
  if (state.run) state.run.close();
  Object.assign(state, { token: null, me: null, item: null, events: null, run: null, golden: null });
  state.queue.clear();
  $("who").hidden = $("nav").hidden = true;
  $("token").value = "";
  $("queue-rows").replaceChildren();
  say(reason);
  show("signin");
}

// -- the queue, kept live by /ws/events -------------------------------------------------
async function loadQueue() {
  const page = await api("/review/pending?size=100");
  state.queue = new Map(page.items.map((item) => [item.id, item]));
  renderQueue();
}

function renderQueue() {
  const rows = [...state.queue.values()].sort((a, b) => b.priority - a.priority || a.id - b.id);
  $("queue-rows").replaceChildren(...rows.map(queueRow));
  $("queue-empty").hidden = rows.length > 0;
  $("queue-count").textContent = String(rows.length);
}

function queueRow(item) {
  const side = (r) => el("td", {}, personLabel(r.demographics), el("br"), el("span", { class: "muted" }, recordLabel(r)));
  return el("tr", { "data-review-id": item.id },
    el("td", {}, item.priority), el("td", {}, `#${item.id}`), side(item.left), side(item.right),
    el("td", {}, item.match ? percent(item.match.confidence) : "–"),
    el("td", {}, new Date(item.created_at).toLocaleString()),
    el("td", {}, el("button", { type: "button", onclick: () => openPair(item.id), "aria-label": `Review pair #${item.id}` }, "Review")));
}

let refreshTimer = null;
function refreshQueueSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => loadQueue().catch(() => {}), 300);
}

function connectEvents(delay = 1000) {
  const socket = new WebSocket(wsUrl("/ws/events"));
  state.events = socket;
  socket.onopen = () => { $("live").textContent = "live"; $("live").dataset.on = "1"; delay = 1000; };
  socket.onmessage = (message) => onEvent(JSON.parse(message.data));
  socket.onclose = () => {
    $("live").textContent = "offline";
    delete $("live").dataset.on;
    if (state.events === socket && state.token) setTimeout(() => state.token && connectEvents(Math.min(delay * 2, 30000)), delay);
  };
}

function onEvent(event) {
  if (event.type === "review_assigned" || event.type === "review_resolved") {
    if (state.queue.delete(event.review_id)) renderQueue();
    if (event.resolution === "defer") refreshQueueSoon(); // a deferred pair comes back
  } else if ((event.type === "lookup" && event.decision === "review_required") || event.type === "run_finished") {
    refreshQueueSoon();
  } else if ((event.type === "split" || event.type === "merge") && state.golden) {
    const touched = [event.golden_id, event.new_golden_id, ...(event.golden_ids || [])];
    if (touched.includes(state.golden)) openGolden(state.golden, false);
  }
}

// -- one pair -------------------------------------------------------------------------
async function openPair(reviewId) {
  let item;
  try {
    item = await api(`/review/${reviewId}/assign`, { method: "POST", body: { assigned_to: state.me.name } });
  } catch (error) {
    state.queue.delete(reviewId);
    renderQueue();
    say(error.status === 409 ? `Pair #${reviewId} was taken by a colleague.` : error.message, "error");
    return;
  }
  state.item = item;
  $("pair-title").textContent = `Review pair #${item.id} (priority ${item.priority})`;
  $("left-head").textContent = recordLabel(item.left);
  $("right-head").textContent = recordLabel(item.right);
  renderComparison(item.left, item.right);
  renderEvidence(item.match);
  $("note").value = "";
  show("pair");
}

function shown(value) {
  if (value === null || value === undefined || value === "") return "";
  return Array.isArray(value) ? value.join(", ") : String(value);
}

const same = (a, b) => a.trim().toLowerCase() === b.trim().toLowerCase();

function renderComparison(left, right) {
  const keys = FIELDS.map(([k]) => k).filter((k) => shown(left.demographics[k]) || shown(right.demographics[k]));
  const rows = keys.map((key) => compareRow(LABEL[key], shown(left.demographics[key]), shown(right.demographics[key])));
  for (const key of ["conditions", "medications"]) {
    const a = shown(left.medical_data[key]), b = shown(right.medical_data[key]);
    if (a || b) rows.push(compareRow(key[0].toUpperCase() + key.slice(1), a, b));
  }
  const golden = (r) => el("td", {}, r.golden_record_id
    ? el("button", { type: "button", class: "link", onclick: () => openGolden(r.golden_record_id) }, r.golden_record_id) : "–");
  rows.push(el("tr", {}, el("th", { scope: "row" }, "Golden record"), golden(left), golden(right)));
  $("compare-rows").replaceChildren(...rows);
}

function compareRow(label, a, b) {
  const kind = !a || !b ? "missing" : same(a, b) ? "same" : "differs";
  const note = { differs: " (differs)", missing: " (one side only)", same: "" }[kind];
  return el("tr", { class: kind },
    el("th", { scope: "row" }, label, el("span", { class: "sr-only" }, note)),
    el("td", {}, a || el("span", { class: "muted" }, "—")),
    el("td", {}, b || el("span", { class: "muted" }, "—")));
}

// Match weights are log2 Bayes factors: the bars add up to the pair's weight w, and the
// probability is 2^w / (1 + 2^w). Each bar starts where the previous one ended.
function renderEvidence(match) {
  const box = $("waterfall");
  box.replaceChildren();
  $("ai-card").hidden = true;
  if (!match) {
    $("explanation").textContent = "No stored comparison for this pair.";
    return;
  }
  $("explanation").textContent = `${match.explanation} (decided by ${match.stage}, model ${match.model_version})`;
  if (match.ai_reasoning) {
    $("ai-card").hidden = false;
    const similarity = match.medical_similarity == null ? "" : `Medical similarity ${Math.round(100 * match.medical_similarity)}%.`;
    $("ai-reasoning").textContent = match.ai_reasoning.replace(/\.?$/, ".");
    $("ai-similarity").textContent = similarity;
  }
  const bars = (match.evidence && match.evidence.waterfall) || [];
  if (!bars.length) {
    const rule = match.evidence && match.evidence.rule;
    box.append(el("p", { class: "muted" }, rule ? `Decided by the rule ${rule}.` : "This comparison stored no per-field weights (batch runs keep the decision and its explanation)."), el("p", {}, `Probability ${percent(match.confidence)}`));
    return;
  }
  const steps = [];
  let total = 0;
  for (const bar of bars) {
    const weight = Number(bar.match_weight) + Number(bar.tf_adjustment || 0);
    steps.push({ label: bar.comparison === "prior" ? "prior (start)" : `${bar.comparison.replaceAll("_", " ")}: ${bar.level}`, from: total, weight });
    total += weight;
  }
  const ends = steps.flatMap((s) => [s.from, s.from + s.weight]).concat([0, total]);
  const low = Math.min(...ends), high = Math.max(...ends), span = high - low || 1;
  const at = (w) => `${(100 * (w - low)) / span}%`;
  const list = el("ol", { class: "bars", "aria-label": "Match weight per comparison" });
  for (const step of steps) {
    const start = Math.min(step.from, step.from + step.weight);
    const bar = el("span", { class: `step ${step.weight >= 0 ? "up" : "down"}` });
    bar.style.left = at(start);
    bar.style.width = `${(100 * Math.abs(step.weight)) / span}%`;
    const sign = step.weight >= 0 ? "+" : "−";
    list.append(el("li", {}, el("span", { class: "bar-label", title: step.label }, step.label),
      el("span", { class: "track" }, el("span", { class: "zero" }), bar),
      el("span", { class: "bar-value" }, `${sign}${Math.abs(step.weight).toFixed(2)}`)));
  }
  for (const zero of list.querySelectorAll(".zero")) zero.style.left = at(0);
  const probability = 1 / (1 + 2 ** -total);
  list.append(el("li", { class: "total", "data-weight": total, "data-probability": probability }, el("span", { class: "bar-label" }, "sum: match weight"),
    el("span", { class: "track" }, `→ probability ${percent(probability)}`),
    el("span", { class: "bar-value" }, total.toFixed(2))));
  box.append(list);
}

async function resolve(resolution) {
  const item = state.item;
  if (!item || state.busy) return;
  const note = $("note").value.trim();
  if (resolution === "defer" && !note) {
    say("Add a note saying why you defer this pair, then press Defer again.", "error");
    $("note").focus();
    return;
  }
  state.busy = true;
  try {
    await api(`/review/${item.id}/resolve`, { method: "POST", body: { resolution, resolver_notes: note || null } });
  } catch (error) {
    say(`Pair #${item.id} was not resolved: ${error.message}`, "error");
    return;
  } finally {
    state.busy = false;
  }
  const words = { confirmed_match: "confirmed as a match", confirmed_non_match: "marked not a match", defer: "deferred" };
  state.item = null;
  state.queue.delete(item.id);
  renderQueue();
  show("queue");
  say(`Pair #${item.id} ${words[resolution]}.`);
  const next = document.querySelector("#queue-rows button");
  if (next) next.focus();
}

function onKey(event) {
  if (state.screen !== "pair" || event.ctrlKey || event.metaKey || event.altKey) return;
  const typing = event.target.closest && event.target.closest("input, textarea, select");
  if (typing) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  const resolution = { m: "confirmed_match", n: "confirmed_non_match", d: "defer" }[event.key.toLowerCase()];
  if (resolution) {
    event.preventDefault();
    resolve(resolution);
  }
}

// -- golden records -------------------------------------------------------------------
async function openGolden(goldenId, focus = true) {
  let golden, sources;
  try {
    [golden, sources] = await Promise.all([api(`/golden-records/${goldenId}`), api(`/golden-records/${goldenId}/sources`)]);
  } catch (error) {
    say(error.status === 404 ? `No golden record ${goldenId}.` : error.message, "error");
    return;
  }
  state.golden = goldenId;
  state.goldenVersion = golden.version; // a split is made on this version or refused
  $("golden-id").value = goldenId;
  const merged = golden.merged_into ? `, merged into ${golden.merged_into}` : "";
  $("golden-heading").textContent = `${golden.golden_id} (${golden.status}${merged}, version ${golden.version}, ${golden.source_count} source records)`;
  const byId = new Map(sources.map((s) => [s.id, s]));
  const survivors = FIELDS.filter(([k]) => golden.demographics[k] && shown(golden.demographics[k].value));
  $("survivor-rows").replaceChildren(...survivors.map(([key, label]) => {
    const value = golden.demographics[key];
    const from = value.source_record_ids.map((id) => (byId.has(id) ? recordLabel(byId.get(id)) : `#${id}`)).join(", ");
    return el("tr", {}, el("th", { scope: "row" }, label), el("td", {}, shown(value.value)), el("td", {}, from || "–"));
  }));
  $("source-rows").replaceChildren(...sources.map((s) => el("tr", {},
    el("td", {}, el("input", { type: "checkbox", value: s.id, id: `split-${s.id}`, "aria-label": `Select ${recordLabel(s)}`, ...(may("curate") ? {} : { disabled: "" }) })),
    el("td", {}, el("label", { for: `split-${s.id}` }, recordLabel(s)), el("br"), el("span", { class: "muted" }, s.external_id || "")),
    el("td", {}, personLabel(s.demographics)), el("td", {}, shown(s.demographics.date_of_birth)),
    el("td", {}, `${s.link_type || "–"}${s.confidence == null ? "" : ` ${percent(s.confidence)}`}`))));
  $("golden-view").hidden = false;
  if (state.screen !== "golden") show("golden");
  else if (focus) $("golden-heading").focus();
}

async function split(event) {
  event.preventDefault();
  const ids = [...document.querySelectorAll("#source-rows input:checked")].map((box) => Number(box.value));
  if (!ids.length) {
    say("Select the records to move to a new golden record.", "error");
    return;
  }
  try {
    const change = await api("/golden-records/split", { method: "POST", body: { golden_record_id: state.golden, source_record_ids: ids, reason: $("split-reason").value, expected_version: state.goldenVersion } });
    const created = change.golden_record.golden_id;
    $("split-reason").value = "";
    await openGolden(state.golden, false);
    say(`Moved ${ids.map((i) => `#${i}`).join(", ")} to the new golden record ${created}.`);
  } catch (error) {
    if (error.status === 409) await openGolden(state.golden, false); // show what changed
    say(`Split refused: ${error.message}`, "error");
  }
}

// -- batch runs -----------------------------------------------------------------------
async function startRun(event) {
  event.preventDefault();
  const jobType = $("job-type").value;
  const body = { job_type: jobType };
  if (jobType === "incremental_match") body.partition = $("partition").value.trim();
  try {
    const accepted = await api("/matching/batch", { method: "POST", body });
    say(`Run ${accepted.job_id} started.`);
    follow(accepted.job_id);
  } catch (error) {
    say(`The run was not started: ${error.message}`, "error");
  }
}

function follow(jobId) {
  if (state.run) state.run.close();
  $("job-id").value = jobId;
  $("run").hidden = false;
  $("run-heading").textContent = `Run ${jobId}`;
  $("run-progress").value = 0;
  $("run-text").textContent = "Connecting…";
  const socket = new WebSocket(wsUrl(`/ws/jobs/${encodeURIComponent(jobId)}`));
  state.run = socket;
  socket.onmessage = (message) => showProgress(JSON.parse(message.data), jobId);
  socket.onerror = () => { $("run-text").textContent = "The progress feed was lost."; };
}

function showProgress(run, jobId) {
  if (run.error) {
    $("run-text").textContent = `No batch job ${jobId}.`;
    return;
  }
  const done = run.status === "completed";
  const share = done ? 1 : run.total_records ? run.processed_records / run.total_records : 0;
  $("run-progress").value = Math.round(100 * share);
  $("run-label").textContent = `Progress of ${run.job_type} (${Math.round(100 * share)}%)`;
  const parts = [`${run.status}`, run.stage ? `stage ${run.stage}` : "",
    `${run.processed_records} of ${run.total_records} records`, `${run.matched_pairs} matched pairs`];
  if (run.error_message) parts.push(run.error_message);
  $("run-text").textContent = parts.filter(Boolean).join(" · ");
  $("run").dataset.status = run.status;
}

// -- wiring ---------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("token").value.trim());
  });
  $("sign-out").addEventListener("click", () => signOut());
  for (const button of document.querySelectorAll("#nav button")) button.addEventListener("click", () => show(button.dataset.screen));
  $("pair-back").addEventListener("click", () => show("queue"));
  for (const button of document.querySelectorAll("[data-resolution]")) button.addEventListener("click", () => resolve(button.dataset.resolution));
  document.addEventListener("keydown", onKey);
  $("golden-form").addEventListener("submit", (event) => {
    event.preventDefault();
    openGolden($("golden-id").value.trim().toUpperCase());
  });
  $("split-form").addEventListener("submit", split);
  $("batch-form").addEventListener("submit", startRun);
  $("job-type").addEventListener("change", () => { $("partition").disabled = $("job-type").value !== "incremental_match"; });
  $("follow-form").addEventListener("submit", (event) => {
    event.preventDefault();
    follow($("job-id").value.trim());
  });
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved);
  else show("signin");
});
