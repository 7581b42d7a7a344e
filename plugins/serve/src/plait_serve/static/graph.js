// plait serve's workflow graph: the tree of workflow.to_graph() drawn as nested boxes in SVG.
// A sequence goes top to bottom with an arrow between steps; the branches of a Parallel, the
// choices of a Router, the then / else of a Condition and the routes of an Approval stand side
// by side inside their container's frame; a Loop, a Steps group and a nested workflow frame
// their steps. No library: the layout is two passes over the tree (measure, then place).
"use strict";

const PlaitGraph = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const LEAF_H = 34, HEAD = 24, PAD = 10, GAP = 18, LABEL = 16, CHAR = 7, MAX_CHARS = 26;
  const COLUMNS = new Set(["parallel", "router", "condition", "approval"]);
  // glyphs that the fonts of a bare Linux (DejaVu) have too
  const ICONS = { parallel: "⇉", router: "⇢", condition: "◇", loop: "↻", steps: "▤", workflow: "▣", approval: "✓" };

  function svg(tag, attrs = {}, text = null) {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs)) if (value !== null && value !== undefined) node.setAttribute(key, value);
    if (text !== null) node.textContent = text;
    return node;
  }

  const clip = (text, most = MAX_CHARS) => (text.length > most ? `${text.slice(0, most - 1)}…` : text);

  // the groups a container lays out side by side (each a sequence, with an optional label)
  function groups(node, byId) {
    const of = (ids) => (ids || []).map((id) => byId.get(id)).filter(Boolean);
    if (node.kind === "condition") {
      return [{ label: "then", items: of(node.then) }, { label: "else", items: of(node.else) }].filter((g) => g.items.length);
    }
    if (node.kind === "approval") {
      const found = Object.entries(node.routes || {}).map(([choice, ids]) => ({ label: choice, items: of(ids) }));
      if (Array.isArray(node.on_reject)) found.push({ label: "rejected", items: of(node.on_reject) });
      return found.filter((g) => g.items.length);
    }
    if (COLUMNS.has(node.kind)) return of(node.children).map((child) => ({ label: node.kind === "router" ? "choice" : null, items: [child] }));
    return [{ label: null, items: of(node.children) }];
  }

  function title(node) {
    if (!node.children.length) return clip(node.name);
    let text = `${ICONS[node.kind] || ""} ${node.kind} · ${node.name}`;
    if (node.kind === "loop" && node.max_iterations) text += ` (≤ ${node.max_iterations})`;
    return clip(text.trim(), MAX_CHARS + 14);
  }

  // pass 1: sizes
  function measure(node, byId) {
    if (!node.children.length) {
      node.box = { w: Math.max(110, title(node).length * CHAR + 2 * PAD), h: LEAF_H };
      return node.box;
    }
    const parts = groups(node, byId).map((g) => ({ ...g, size: sequence(g.items, byId) }));
    node.parts = parts;
    const side = COLUMNS.has(node.kind);
    const labelled = parts.some((p) => p.label);
    let w = 0, h = 0;
    for (const part of parts) {
      if (side) { w += part.size.w; h = Math.max(h, part.size.h); } else { w = Math.max(w, part.size.w); h += part.size.h; }
    }
    if (side) w += GAP * Math.max(0, parts.length - 1);
    const top = HEAD + (labelled ? LABEL : 0);
    node.box = { w: Math.max(w + 2 * PAD, title(node).length * CHAR + 2 * PAD), h: top + h + PAD, top };
    return node.box;
  }

  function sequence(items, byId) {
    let w = 0, h = 0;
    for (const item of items) { const box = measure(item, byId); w = Math.max(w, box.w); h += box.h; }
    return { w, h: h + GAP * Math.max(0, items.length - 1) };
  }

  // pass 2: positions, drawn as they are placed
  function place(node, x, y, layer, options) {
    const box = node.box;
    const status = options.status(node.id);
    const group = svg("g", { class: `g-node k-${node.kind}${status ? ` st-${status}` : ""}${options.current(node.id) ? " current" : ""}`, "data-step": node.id });
    group.append(svg("title", {}, `${node.id} (${node.kind})${status ? `: ${status}` : ""}`));
    if (options.onclick) group.addEventListener("click", (event) => { event.stopPropagation(); options.onclick(node.id); });
    layer.append(group);
    if (!node.children.length) {
      group.append(svg("rect", { x, y, width: box.w, height: box.h, rx: node.kind === "agent" || node.kind === "team" ? 16 : 6 }));
      group.append(svg("text", { x: x + box.w / 2, y: y + box.h / 2 + 4, "text-anchor": "middle" }, title(node)));
      return;
    }
    group.append(svg("rect", { x, y, width: box.w, height: box.h, rx: 8, class: "frame" }));
    group.append(svg("text", { x: x + PAD, y: y + 16, class: "head" }, title(node)));
    const side = COLUMNS.has(node.kind);
    const inner = box.w - 2 * PAD;
    const total = node.parts.reduce((sum, p) => sum + p.size.w, 0) + GAP * Math.max(0, node.parts.length - 1);
    let cx = x + PAD + (side ? (inner - total) / 2 : 0), cy = y + box.top;
    for (const part of node.parts) {
      const width = side ? part.size.w : inner;
      if (part.label) layer.append(svg("text", { x: cx + width / 2, y: cy - 4, "text-anchor": "middle", class: "edge-label" }, part.label));
      column(part.items, cx, cy, width, layer, options);
      if (side) cx += part.size.w + GAP; else cy += part.size.h;
    }
    if (node.kind === "loop") {
      const ax = x + box.w - 4;
      layer.append(svg("path", { d: `M ${ax} ${y + box.h - PAD} V ${y + box.top} `, class: "edge repeat", "marker-end": "url(#arrow)" }));
    }
  }

  function column(items, x, y, width, layer, options) {
    let cy = y;
    items.forEach((item, index) => {
      const left = x + (width - item.box.w) / 2;
      place(item, left, cy, layer, options);
      cy += item.box.h;
      if (index < items.length - 1) arrow(layer, x + width / 2, cy, cy + GAP);
      cy += GAP;
    });
  }

  function arrow(layer, x, from, to) {
    layer.append(svg("path", { d: `M ${x} ${from} V ${to - 1}`, class: "edge", "marker-end": "url(#arrow)" }));
  }

  function pill(layer, x, y, text) {
    layer.append(svg("rect", { x: x - 30, y, width: 60, height: 22, rx: 11, class: "pill" }));
    layer.append(svg("text", { x, y: y + 15, "text-anchor": "middle", class: "pill-text" }, text));
  }

  // graph: workflow.to_graph(); options: status(id) -> "running"|"done"|..., current(id) -> bool, onclick(id)
  function draw(graph, options = {}) {
    const opts = { status: () => null, current: () => false, onclick: null, ...options };
    const byId = new Map(graph.nodes.map((n) => [n.id, { ...n }]));
    const top = [...byId.values()].filter((n) => n.parent === null);
    const size = sequence(top, byId);
    const width = Math.max(size.w, 120) + 2 * PAD;
    const height = size.h + 2 * (22 + GAP) + 2 * PAD;
    const root = svg("svg", { class: "graph", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": `graph of ${graph.workflow.name}` });
    const defs = svg("defs");
    const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
    marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }));
    defs.append(marker);
    root.append(defs);
    const layer = svg("g");
    root.append(layer);
    const mid = width / 2;
    pill(layer, mid, PAD, "start");
    arrow(layer, mid, PAD + 22, PAD + 22 + GAP);
    column(top, PAD, PAD + 22 + GAP, width - 2 * PAD, layer, opts);
    const end = PAD + 22 + GAP + size.h + GAP;
    arrow(layer, mid, end - GAP, end);
    pill(layer, mid, end, "end");
    return root;
  }

  return { draw };
})();
