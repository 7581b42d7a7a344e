// plait serve's page: the runs, a run's live step tree (SSE), its pending approvals, resume, cancel.
// No framework and no build step: plain DOM, fetch, and an SSE reader over fetch (so that a
// bearer token can travel in a header, which EventSource cannot send).
"use strict";

const main = document.getElementById("main");
let following = null; // the AbortController of the run page's event stream
let refresher = null; // the runs list's refresh timer

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function headers(extra = {}) {
  const token = sessionStorage.getItem("plait-token");
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers || {}) });
  if (response.status === 401) {
    const token = prompt("This server needs its bearer token:");
    if (token) { sessionStorage.setItem("plait-token", token); return api(path, options); }
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error ? `${body.error.type}: ${body.error.message}` : response.statusText);
  return body;
}

function post(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
}

const badge = (status) => el("span", { class: `badge s-${status}` }, status.replaceAll("_", " ").toLowerCase());
const when = (seconds) => (seconds ? new Date(seconds * 1000).toLocaleString() : "");
const secs = (value) => (typeof value === "number" ? `${value.toFixed(value < 10 ? 2 : 1)}s` : "");
// a cost in US dollars as the prices table gives it: small amounts keep their digits
const money = (value) => (typeof value === "number" ? `$${value < 0.01 ? value.toPrecision(2) : value.toFixed(2)}` : "");
const short = (id) => id.slice(0, 8);

function stop() {
  if (following) following.abort();
  following = null;
  if (refresher) clearInterval(refresher);
  refresher = null;
}

// -- the runs ----------------------------------------------------------------------------

async function runsPage(params) {
  const status = params.get("status") || "";
  const { workflows } = await api("api/workflows");
  const filter = el("select", { id: "status-filter", onchange: (e) => { location.hash = `#/?status=${e.target.value}`; } },
    ["", "QUEUED", "RUNNING", "PAUSED", "COMPLETED", "COMPLETED_WITH_ERRORS", "ERROR", "CANCELLED"].map((s) =>
      el("option", { value: s, selected: s === status }, s ? (s === "PAUSED" ? "waiting for me (paused)" : s === "QUEUED" ? "queued for a worker" : s.toLowerCase()) : "all")));
  const body = el("tbody");
  main.replaceChildren(
    el("h2", {}, "Start a run"), startForm(workflows),
    el("div", { class: "toolbar" }, el("h2", {}, "Runs"), filter),
    el("table", {}, el("thead", {}, el("tr", {}, ["status", "workflow", "run", "started", "duration", "tokens", "cost"].map((h) => el("th", {}, h)))), body));
  async function refresh() {
    const query = status ? `?status=${status}&limit=100` : "?limit=100";
    const { runs } = await api(`api/runs${query}`);
    body.replaceChildren(...runs.map((run) => {
      const m = run.metrics || {};
      const tokens = (m.input_tokens || 0) + (m.output_tokens || 0);
      return el("tr", { class: "run", "data-run": run.run_id, onclick: () => { location.hash = `#/runs/${run.run_id}`; } },
        el("td", {}, badge(run.status)), el("td", {}, run.workflow_name), el("td", { class: "mono" }, short(run.run_id)),
        el("td", {}, when(run.created_at)), el("td", {}, secs(m.duration)), el("td", {}, tokens || ""),
        el("td", {}, money(m.cost)));
    }));
    if (!runs.length) body.append(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No runs yet.")));
  }
  await refresh();
  refresher = setInterval(() => refresh().catch(() => {}), 2000);
}

function startForm(workflows) {
  const choice = el("select", { id: "workflow" }, workflows.map((w) => el("option", { value: w.id }, w.name)));
  const input = el("textarea", { id: "run-input", rows: 2, placeholder: "input: text, or JSON" });
  const message = el("span", { class: "error" });
  const go = el("button", { id: "start", class: "primary", onclick: async () => {
    let value = input.value;
    try { value = JSON.parse(value); } catch { /* plain text */ }
    try {
      const { run_id } = await post(`api/workflows/${choice.value}/runs`, { input: value });
      location.hash = `#/runs/${run_id}`;
    } catch (error) { message.textContent = error.message; }
  } }, "Start");
  return el("div", { class: "card" }, el("div", { class: "toolbar" }, choice, go, message), input);
}

// -- one run ---------------------------------------------------------------------------

const ENDED = ["COMPLETED", "COMPLETED_WITH_ERRORS", "ERROR", "CANCELLED"];

async function runPage(runId) {
  const state = { steps: new Map(), last: null, events: 0, graph: null, status: null };
  const header = el("div", { class: "card" });
  const pending = el("div");
  const forking = el("div");
  const tree = el("div", { class: "tree" });
  const details = el("pre", { id: "step-details" }, "Select a step to see its events.");
  const picture = el("div", { class: "graph-box", id: "graph" });
  const mermaid = el("pre", { class: "mono" });
  main.replaceChildren(header, pending, forking, el("div", { class: "grid" },
    el("div", { class: "card" }, el("h2", {}, "Steps"), tree),
    el("div", { class: "card" }, el("h2", {}, "Step"), details)),
    el("div", { class: "card" }, el("h2", {}, "Graph"), picture,
      el("details", {}, el("summary", { class: "muted" }, "as Mermaid text"), mermaid)));
  const { workflows } = await api("api/workflows");

  const lineageLink = (label, id) => el("span", {}, ` · ${label} `, el("a", { href: `#/runs/${id}`, class: "mono" }, short(id)));

  async function load() {
    const data = await api(`api/runs/${runId}`);
    const run = data.run;
    state.status = run.status;
    const workflow = workflows.find((w) => w.id === run.workflow_id);
    state.graph = workflow ? workflow.graph : null;
    mermaid.textContent = workflow ? workflow.mermaid : "";
    const m = run.metrics || {};
    const lineage = run.lineage || {};
    header.replaceChildren(...[
      el("div", { class: "toolbar" }, el("h2", {}, run.workflow_name), badge(run.status), el("span", { class: "mono muted" }, run.run_id)),
      el("div", { class: "muted" }, `started ${when(run.created_at)}`, m.duration ? ` · ${secs(m.duration)}` : "",
        m.input_tokens || m.output_tokens ? ` · ${m.input_tokens || 0} in / ${m.output_tokens || 0} out tokens` : "",
        m.cost != null ? ` · ${money(m.cost)}` : "",
        lineage.forked_from ? lineageLink(`forked at ${lineage.fork_step || "a step"} from`, lineage.forked_from) : null,
        lineage.replay_of ? lineageLink("replay of", lineage.replay_of) : null),
      run.error ? el("p", { class: "error" }, run.error) : null,
      run.content !== null && run.content !== undefined ? el("pre", { id: "run-content" }, typeof run.content === "string" ? run.content : JSON.stringify(run.content, null, 2)) : null,
      el("div", { class: "toolbar" },
        el("button", { id: "resume", disabled: !["CANCELLED", "ERROR"].includes(run.status), onclick: () => act(`api/runs/${runId}/resume`, {}) }, "Resume"),
        el("button", { id: "cancel", class: "danger", disabled: run.status !== "RUNNING", onclick: () => act(`api/runs/${runId}/cancel`) }, "Cancel"),
        el("button", { id: "replay", disabled: !ENDED.includes(run.status), title: "run the current code again, every model and tool call answered from this run's record", onclick: () => replay() }, "Replay"),
        el("button", { id: "fork", disabled: !data.steps.length || ["RUNNING", "PENDING"].includes(run.status), title: "a new run from this one, changed at a step", onclick: () => forkForm(data.steps) }, "Fork…"),
        el("span", { class: "error", id: "action-error" })),
    ].filter(Boolean));
    pending.replaceChildren(...data.pending.map((request) => approvalForm(request)));
    if (!state.events) { // nothing streamed (a replay stores no step events): its completed steps
      for (const c of data.steps) {
        if (!state.steps.has(c.step_id)) state.steps.set(c.step_id, { id: c.step_id, name: c.output.step_name || c.step_id.split("/").pop(), kind: c.output.step_type || "", status: c.output.success === false ? "failed" : "done", events: [c.output] });
      }
    }
    if (run.status !== "RUNNING") { // a container around a pause or a cancel is not running any more
      for (const step of state.steps.values()) {
        if (step.status === "running") step.status = run.status === "PAUSED" ? "paused" : "stopped";
      }
    }
    draw();
    return run;
  }

  function showError(error) {
    const where = document.getElementById("action-error");
    if (where) where.textContent = error.message;
  }

  async function act(path, body) {
    try { await post(path, body); } catch (error) { showError(error); }
    await load();
    follow();
  }

  async function replay() {
    const button = document.getElementById("replay");
    button.disabled = true;
    button.textContent = "Replaying…";
    try {
      const { run_id } = await post(`api/runs/${runId}/replay`, {});
      location.hash = `#/runs/${run_id}`;
    } catch (error) { showError(error); button.disabled = false; button.textContent = "Replay"; }
  }

  function forkForm(steps) {
    const at = el("select", { id: "fork-at" }, steps.map((c) => el("option", { value: c.step_id }, c.step_id)));
    const what = el("select", { id: "fork-what" },
      el("option", { value: "output" }, "its output becomes"), el("option", { value: "input" }, "it receives"), el("option", { value: "same" }, "as it was (run again)"));
    const value = el("textarea", { id: "fork-value", rows: 2, placeholder: "text, or JSON" });
    const message = el("span", { class: "error" });
    const go = el("button", { id: "fork-go", class: "primary", onclick: async () => {
      const body = { at: at.value };
      if (what.value !== "same") body[what.value] = parsed(value.value);
      try {
        const { run_id } = await post(`api/runs/${runId}/fork`, body);
        location.hash = `#/runs/${run_id}`;
      } catch (error) { message.textContent = error.message; }
    } }, "Fork");
    forking.replaceChildren(el("div", { class: "card", id: "fork-form" }, el("h2", {}, "Fork this run"),
      el("div", { class: "toolbar" }, el("label", {}, "at step ", at), what), value,
      el("div", { class: "toolbar" }, go, el("button", { onclick: () => forking.replaceChildren() }, "Close"), message)));
  }

  function approvalForm(request) {
    const form = el("div", { class: "card pending", "data-step": request.step_id });
    const message = el("p", { class: "error" });
    const answer = async (value) => {
      message.textContent = "";
      const body = typeof value === "boolean" ? { approve: value, step: request.step_id } : { approve: true, answers: { [request.step_id]: value } };
      try { await post(`api/runs/${runId}/approve`, body); } catch (error) { message.textContent = error.message; return; }
      await load();
      follow();
    };
    form.append(el("h2", {}, `Waiting: ${request.step_name}`), el("p", {}, request.prompt || ""));
    if (request.kind === "confirm") {
      form.append(el("div", { class: "toolbar" },
        el("button", { class: "primary", id: "approve", onclick: () => answer(true) }, "Approve"),
        el("button", { class: "danger", id: "reject", onclick: () => answer(false) }, "Reject")));
    } else if (request.choices && request.choices.length) {
      form.append(el("div", { class: "toolbar choices" }, request.choices.map((c) => el("button", { class: "choice", "data-choice": c, onclick: () => answer(c) }, String(c)))));
    } else {
      form.append(schemaForm(request.schema, answer, message));
    }
    form.append(message);
    return form;
  }

  function record(event) {
    state.events += 1;
    const id = event.step_id;
    if (!id) return;
    const step = state.steps.get(id) || { id, name: event.step_name || id, kind: event.step_type || "", status: "running", events: [] };
    step.events.push(event);
    const name = event.event;
    if (name.endsWith("Started") && !name.startsWith("Run") && !name.startsWith("Team")) step.status = "running";
    else if (name === "StepPaused") step.status = "paused";
    else if (name === "StepSkipped") step.status = "skipped";
    else if (name === "StepError") step.status = "failed";
    else if (name.endsWith("Completed") && !name.startsWith("Run") && !name.startsWith("Team")) {
      step.status = event.success === false ? "failed" : "done";
      if (typeof event.duration === "number") step.duration = event.duration;
    }
    state.steps.set(id, step);
  }

  function showStep(id) {
    const step = state.steps.get(id) || [...state.steps.values()].find((s) => s.id.replace(/\[\d+\]/g, "[*]") === id);
    details.textContent = step ? JSON.stringify(step.events, null, 2) : `${id}: no events yet`;
  }

  // a graph node's status: its step's, or (a loop's child, loop[*]/x) its latest iteration's
  function statusOf(id) {
    const step = state.steps.get(id);
    if (step) return step.status;
    let found = null;
    for (const s of state.steps.values()) if (s.id.replace(/\[\d+\]/g, "[*]") === id) found = s.status;
    return found;
  }

  // the steps in the graph's order (a container before what it holds, a loop's iterations in
  // turn); a step the graph does not name (a fully-Python workflow's) after, as it came
  function ordered() {
    const nodes = state.graph ? state.graph.nodes : [];
    const place = new Map(nodes.map((n, i) => [n.id, i]));
    const index = (id) => {
      const pattern = id.replace(/\[\d+\]/g, "[*]");
      return place.get(id) ?? place.get(pattern) ?? place.get(pattern.replace(/\[\*\]$/, "")) ?? Infinity;
    };
    return [...state.steps.values()].map((step, arrival) => ({ step, arrival, at: index(step.id) }))
      .sort((a, b) => (a.at - b.at) || (a.at === Infinity ? a.arrival - b.arrival : a.step.id.localeCompare(b.step.id, undefined, { numeric: true })))
      .map((entry) => entry.step);
  }

  function draw() {
    tree.replaceChildren(...ordered().map((step) => {
      const depth = step.id.split("/").length - 1;
      return el("div", { class: "node", "data-step": step.id, style: `padding-left:${depth * 18}px`, onclick: () => showStep(step.id) },
        badge(step.status), el("span", { class: "name" }, step.name), el("span", { class: "kind" }, step.kind),
        el("span", { class: "time" }, secs(step.duration)));
    }));
    if (state.graph) {
      const current = (id) => { const s = statusOf(id); return s === "paused" || (s === "running" && !state.graph.nodes.some((n) => n.parent === id)); };
      picture.replaceChildren(PlaitGraph.draw(state.graph, { status: statusOf, current, onclick: showStep }));
    }
  }

  async function follow() {
    if (following) following.abort();
    const controller = new AbortController();
    following = controller;
    const extra = state.last ? { "Last-Event-ID": state.last } : {};
    try {
      const response = await fetch(`api/runs/${runId}/events`, { headers: headers(extra), signal: controller.signal });
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replaceAll("\r\n", "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let data = null;
          for (const line of block.split("\n")) {
            if (line.startsWith("id:")) state.last = line.slice(3).trim();
            else if (line.startsWith("data:")) data = (data || "") + line.slice(5).trim();
          }
          if (data) { record(JSON.parse(data)); draw(); }
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    if (following !== controller) return;
    const run = await load();
    // a queued run has no events until a worker takes it: look again until it runs and ends
  if (["RUNNING", "QUEUED"].includes(run.status)) setTimeout(() => { if (following === controller) follow(); }, 1000);
  }

  await load();
  follow();
}

// -- a form from a JSON schema (an Approval's kind="input") ------------------------------

function parsed(text) {
  try { return JSON.parse(text); } catch { return text; }
}

const FORMATS = { "date-time": "2026-12-24T18:00:00", date: "2026-12-24", time: "18:00:00", email: "name@example.org", uri: "a URL" };

function schemaForm(schema, submit, message) {
  const defs = (schema && schema.$defs) || {};
  const resolve = (s) => (s && s.$ref ? defs[s.$ref.split("/").pop()] || {} : s || {});
  const props = (schema && schema.properties) || {};
  const required = new Set((schema && schema.required) || []);
  const form = el("form", { class: "schema-form", onsubmit: (event) => { event.preventDefault(); } });
  if (!Object.keys(props).length) { // no fields to show: the answer as text or JSON
    const text = el("textarea", { rows: 4, name: "answer", placeholder: schema ? JSON.stringify(schema) : "your answer (text or JSON)" });
    form.append(text, el("button", { class: "primary", id: "submit-answer", onclick: () => submit(parsed(text.value)) }, "Answer"));
    return form;
  }
  const fields = [];
  for (const [name, raw] of Object.entries(props)) {
    let spec = resolve(raw);
    if (spec.anyOf) spec = { ...resolve(spec.anyOf.find((a) => resolve(a).type !== "null")), title: spec.title, default: spec.default, description: spec.description };
    const type = spec.enum ? "enum" : spec.type || "string";
    const id = `answer-${name}`;
    let input;
    if (type === "enum") input = el("select", { id, name }, spec.enum.map((v) => el("option", { value: JSON.stringify(v), selected: raw.default === v }, String(v))));
    else if (type === "boolean") input = el("input", { id, name, type: "checkbox", checked: raw.default === true });
    else if (type === "integer" || type === "number") input = el("input", { id, name, type: "number", step: type === "integer" ? "1" : "any", value: raw.default ?? spec.default ?? "" });
    else if (type === "string") input = el("input", { id, name, type: "text", value: raw.default ?? spec.default ?? "", required: required.has(name), placeholder: FORMATS[spec.format] || spec.format });
    else input = el("textarea", { id, name, rows: 2, placeholder: `JSON (${type})`, value: null }, raw.default !== undefined ? JSON.stringify(raw.default) : "");
    fields.push({ name, type, input });
    const label = (raw.title || spec.title || name) + (required.has(name) ? " *" : "");
    form.append(el("label", { for: id, class: "field" }, el("span", {}, label), input,
      raw.description || spec.description ? el("small", { class: "muted" }, raw.description || spec.description) : null));
  }
  form.append(el("div", { class: "toolbar" }, el("button", { class: "primary", id: "submit-answer", type: "submit", onclick: () => {
    const value = {};
    for (const { name, type, input } of fields) {
      if (type === "boolean") { value[name] = input.checked; continue; }
      const text = input.value;
      if (text === "" && !required.has(name)) continue;
      if (type === "enum") value[name] = JSON.parse(text);
      else if (type === "integer" || type === "number") value[name] = text === "" ? text : Number(text);
      else if (type === "string") value[name] = text;
      else {
        try { value[name] = JSON.parse(text); } catch { message.textContent = `${name}: expected JSON, got ${JSON.stringify(text)}`; return; }
      }
    }
    submit(value);
  } }, "Submit")));
  return form;
}

// -- routing ---------------------------------------------------------------------------

async function route() {
  stop();
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(query || "");
  try {
    const match = path.match(/^\/runs\/([^/]+)$/);
    if (match) await runPage(decodeURIComponent(match[1]));
    else await runsPage(params);
  } catch (error) {
    main.replaceChildren(el("p", { class: "error" }, error.message));
  }
}

window.addEventListener("hashchange", route);
route();
