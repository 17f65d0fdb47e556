// resile live: runs scenarios through the wasm client against the chaos server and draws what
// the engine decided. No bundler: an ES module that loads ./pkg/resile_wasm.js (wasm-bindgen
// --target web output, built by scripts/build-wasm.sh).
import init, { Client, isResileError } from "./pkg/resile_wasm.js";

const $ = (selector, root = document) => root.querySelector(selector);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const range = (n) => Array.from({ length: n }, (_, i) => i);
const SVG = "http://www.w3.org/2000/svg";

// ---- where the chaos server is ---------------------------------------------------------------

const params = new URLSearchParams(location.search);
const defaultApi = location.protocol.startsWith("http") ? location.origin : "http://127.0.0.1:8080";
let api = (params.get("api") || defaultApi).replace(/\/+$/, "");

// The same server under its other loopback name is another origin: CORS applies there.
function otherOrigin(url) {
  const u = new URL(url);
  if (u.hostname === "127.0.0.1") u.hostname = "localhost";
  else if (u.hostname === "localhost") u.hostname = "127.0.0.1";
  return u.origin;
}

async function raw(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["content-type"] = "application/json";
  }
  const response = await fetch(`${api}${path}`, init);
  const text = await response.text();
  try { return JSON.parse(text); } catch { return text; }
}

async function checkServer() {
  const dot = $("#server-dot");
  try {
    await raw("GET", "/stats");
    dot.className = "dot up";
    dot.title = `${api} answers`;
    return true;
  } catch (e) {
    dot.className = "dot down";
    dot.title = `${api} does not answer: ${e.message}`;
    return false;
  }
}

// ---- scenarios ------------------------------------------------------------------------------

const scenarios = [
  {
    id: "storm",
    title: "429 storm",
    tag: "Retry-After · host hold",
    blurb: "16 calls at once against a server that allows 5 requests per second. It answers the rest with 429 and Retry-After; resile holds the whole host until then, so the waiting calls do not hammer it, and every call gets through.",
    config: { retry: { maxAttempts: 8, deadlineMs: 20000 }, budget: { reserve: 60, maxSaved: 100 } },
    async run({ client }) {
      const key = `storm-${Date.now()}`;
      await Promise.allSettled(range(16).map(() => client.get(`/ratelimited?rate=5&burst=5&key=${key}`)));
    },
  },
  {
    id: "outage",
    title: "Outage and recovery",
    tag: "circuit breaker · half-open probe",
    blurb: "The server answers 503 to everything for 2.2 s while a call starts every 150 ms. After 4 failures in a row the breaker opens and calls fail fast instead of piling on; a single probe tests the host when the breaker half-opens, and one success closes it.",
    config: {
      retry: { maxAttempts: 3, attemptTimeoutMs: 3000 },
      backoff: { baseMs: 120, jitter: "equal" },
      breaker: { consecutiveFailures: 4, failureRate: null, openMs: 600, openGrowth: 1.5 },
    },
    async run({ client, ctx }) {
      ctx.annotate("server", "outage: every request answers 503", 0, 2200);
      await raw("POST", "/admin/outage?for_ms=2200");
      const calls = [];
      for (const i of range(26)) {
        calls.push(client.get(`/slow?ms=25&i=${i}`).catch((e) => e));
        await sleep(150);
      }
      await Promise.allSettled(calls);
    },
  },
  {
    id: "token",
    title: "Token expiry, 45 concurrent calls",
    tag: "single-flight · early refresh · 401",
    blurb: "Three waves of 15 calls to a protected API with 5-second tokens. Wave 1 shares one token fetch; wave 2 arrives in the refresh window (the last second of a token's life) and triggers one early refresh in the background; then the server revokes every token, and wave 3's fifteen 401s share one forced refresh.",
    config: { token: { refreshSkewMs: 1000 } },
    token: true,
    async run({ client, ctx }) {
      const wave = (name) => Promise.allSettled(range(15).map((i) => client.get(`/protected/${name}${i}`)));
      await wave("a");
      // Wave 2 starts 400 ms into the refresh window (4.0-5.0 s of the token's life) and, while
      // wave 1's calls end within 200 ms of its token, 400 ms or more before the token expires:
      // its calls reach the server with a token still valid there.
      await sleep(4400);
      await wave("b");
      await sleep(300);
      await raw("POST", "/admin/expire-tokens");
      await wave("c");
      const calls = 45;
      ctx.insight(`${ctx.tokenFetches} token fetches for ${calls} calls: one for the first wave, one early refresh, one after the server revoked the tokens.`);
    },
  },
  {
    id: "paginate",
    title: "Paginate under faults",
    tag: "cursor · 30% of pages fail",
    blurb: "Walks 320 items, 32 per page, by cursor, while the server fails 30% of page requests with 503. Every page is a logical call with its own retries; the async iterator hands out items in order, none lost, none repeated.",
    config: { retry: { maxAttempts: 6 }, backoff: { baseMs: 60, capMs: 1000, jitter: "full" }, budget: { reserve: 40 } },
    async run({ client, ctx }) {
      const pages = client.paginate("/items/cursor?limit=32&total=320&fail_rate=0.3", { style: "cursor" });
      const ids = [];
      for await (const item of pages) ids.push(item.id);
      const unique = new Set(ids).size;
      const inOrder = ids.every((id, i) => i === 0 || id > ids[i - 1]);
      ctx.insight(`${ids.length} items over ${pages.pages} pages with \`for await\`: ${unique === ids.length ? "no duplicates" : `${ids.length - unique} duplicates`}, ${inOrder ? "in order" : "out of order"}, despite the failed pages.`,
        unique !== ids.length || !inOrder);
    },
  },
  {
    id: "commit",
    title: "POST with commit-then-fail",
    tag: "Idempotency-Key",
    blurb: "The server commits the order, then answers 503. Order A carries resile's automatic Idempotency-Key: the retry is safe and the server replays the order. Order B is sent without a key: resile refuses to repeat a write that may have happened, and says so.",
    config: { backoff: { baseMs: 150, jitter: "none" } },
    async run({ client, ctx }) {
      const run = `run-${Date.now()}`;
      const a = await client.post("/orders?mode=commit_then_fail&fail=503", { json: { item: "A", run } });
      const b = await client
        .post("/orders?mode=commit_then_fail&fail=503", { json: { item: "B", run }, idempotencyKey: "off" })
        .catch((e) => e);
      const all = await raw("GET", "/orders");
      const list = Array.isArray(all) ? all : all.orders || [];
      const count = (item) => list.filter((o) => o.body && o.body.run === run && o.body.item === item).length;
      ctx.insight(`A: ${a.attempts} attempts, status ${a.status}, ${count("A")} order on the server (the retry was replayed, header idempotent-replayed: ${a.headers.get("idempotent-replayed") || "–"}). ` +
        `B: ${isResileError(b) ? `${b.code} after ${b.attempts} attempt, maybeProcessed: ${b.maybeProcessed}` : `status ${b.status}`}; the server did create ${count("B")} order, so a blind retry would have made a duplicate.`);
    },
  },
  {
    id: "hidden",
    title: "CORS hides Retry-After",
    tag: "hint_unreadable · backoff",
    blurb: "Two 429s with Retry-After: 1, from the server under its other loopback name, so CORS applies. The first response lists Retry-After in Access-Control-Expose-Headers and resile waits the server's second; the second (no_expose=1) hides it from the page: resile notes that the hint is unreadable and falls back to its own backoff.",
    config: { backoff: { baseMs: 250, jitter: "none" } },
    crossOrigin: true,
    async run({ client }) {
      const key = Date.now();
      await client.get(`/flaky?key=shown-${key}&fail=1&status=429&retry_after=1`);
      await client.get(`/flaky?key=hidden-${key}&fail=1&status=429&retry_after=1&no_expose=1`);
    },
  },
];

// ---- recording what the engine did ------------------------------------------------------------

class Run {
  constructor(scenario) {
    this.scenario = scenario;
    this.t0 = performance.now();
    this.end = null;
    this.calls = new Map();
    this.breaker = [];
    this.holds = [];
    this.tokens = [];
    this.log = [];
    this.insight = null;
    this.insightBad = false;
    this.tokenFetches = 0;
    this.annotations = [];
  }

  call(id) {
    return this.calls.get(id);
  }

  on(e) {
    const at = e.atMs;
    const c = e.call !== undefined ? this.call(e.call) : undefined;
    switch (e.event) {
      case "call_started":
        this.calls.set(e.call, { id: e.call, method: e.method, url: e.url || e.host, start: at, attempts: [], waits: [], marks: [], end: null });
        break;
      case "attempt_started":
        if (!c) break;
        closeOpen(c.waits, at);
        c.attempts.push({ n: e.attempt, start: at, end: null, probe: e.probe, timeout: e.timeoutMs });
        break;
      case "attempt_finished": {
        const a = c && c.attempts.find((x) => x.n === e.attempt);
        if (a) Object.assign(a, { end: at, result: e.result, why: e.why, explain: e.explain });
        break;
      }
      case "retry_scheduled":
        if (c) c.waits.push({ start: at, end: at + e.delayMs, why: e.why, explain: e.explain, kind: "retry" });
        break;
      case "waiting":
        if (c) c.waits.push({ start: at, end: e.untilMs, why: e.why, explain: e.explain, kind: "wait" });
        break;
      case "waiting_for_token":
        if (c) c.waits.push({ start: at, end: null, why: e.why, explain: e.explain, kind: "token" });
        break;
      case "hint_unreadable":
        if (c) c.marks.push({ at, kind: "hint", explain: e.explain || "a hint header could not be read" });
        break;
      case "budget_exhausted":
        if (c) c.marks.push({ at, kind: "budget", explain: "the retry budget for this host is spent" });
        break;
      case "call_succeeded":
      case "call_failed":
        if (!c) break;
        c.end = at;
        c.ok = e.event === "call_succeeded";
        c.status = e.status;
        c.failure = e.failure;
        c.explain = e.explain;
        for (const w of c.waits) if (w.end === null || w.end > at) w.end = at;
        break;
      case "breaker_opened":
        closeOpen(this.breaker, at);
        this.breaker.push({ state: "open", start: at, end: e.untilMs, trips: e.trips });
        break;
      case "breaker_half_open":
        this.breaker.push({ state: "half_open", start: at, end: null });
        break;
      case "breaker_closed":
        closeOpen(this.breaker, at);
        break;
      case "host_held":
        this.holds.push({ start: at, end: e.untilMs, why: e.why, explain: e.explain });
        break;
      case "token_fetch_started":
        this.tokenFetches += 1;
        this.tokens.push({ start: at, end: null, why: e.why, explain: e.explain });
        break;
      case "token_refreshed":
      case "token_fetch_failed": {
        const t = this.tokens.findLast((x) => x.end === null);
        if (t) Object.assign(t, { end: at, ok: e.event === "token_refreshed", generation: e.generation });
        break;
      }
    }
    this.log.push(e);
  }

  totals() {
    const calls = [...this.calls.values()];
    return {
      calls: calls.length,
      ok: calls.filter((c) => c.end !== null && c.ok).length,
      failed: calls.filter((c) => c.end !== null && !c.ok).length,
      attempts: calls.reduce((n, c) => n + c.attempts.length, 0),
      retries: this.log.filter((e) => e.event === "retry_scheduled").length,
    };
  }
}

function closeOpen(spans, at) {
  for (const s of spans) if (s.end === null) s.end = at;
}

// ---- drawing --------------------------------------------------------------------------------

const COLORS = {
  ok: "#3ecf8e", s429: "#f5a524", s5xx: "#f25f5c", s4xx: "#8a94a6",
  timeout: "#b58cf6", reset: "#ee7ad6", inflight: "#5b8def",
  backoff: "#5b8def", retry_after_header: "#f5a524", hold: "#f5a524", client: "#3cc8e0", token: "#a78bfa",
};

function attemptColor(a) {
  if (a.end === null) return COLORS.inflight;
  const r = a.result || {};
  if (r.transport) return r.transport === "timeout" ? COLORS.timeout : COLORS.reset;
  const s = r.status;
  if (s >= 200 && s < 400) return COLORS.ok;
  if (s === 429) return COLORS.s429;
  if (s >= 500) return COLORS.s5xx;
  return COLORS.s4xx;
}

function waitColor(w) {
  if (w.kind === "token") return COLORS.token;
  if (w.why === "retry_after_header") return COLORS.retry_after_header;
  if (w.why === "server_retry_after_hold" || w.why === "server_quota_hold") return COLORS.hold;
  if (w.why === "client_rate_limit") return COLORS.client;
  return COLORS.backoff;
}

function resultText(r) {
  if (!r) return "in flight";
  return r.transport ? `transport ${r.transport}` : `status ${r.status}`;
}

function el(name, attrs = {}, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function niceStep(spanMs, pixels) {
  const target = spanMs / Math.max(1, pixels / 90);
  for (const s of [50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 30000, 60000]) if (s >= target) return s;
  return 60000;
}

function shortPath(url) {
  try {
    const path = new URL(url).pathname;
    return path.length > 24 ? `${path.slice(0, 23)}…` : path;
  } catch {
    return url;
  }
}

function draw(run) {
  const svg = $("#timeline");
  const width = Math.max(480, $("#timeline-scroll").clientWidth);
  const labelW = 190;
  const right = 16;
  const calls = [...run.calls.values()];
  const rowH = calls.length > 30 ? 13 : 18;
  const bar = rowH - (rowH > 14 ? 8 : 5);
  const laneH = 18;
  const top = 26;
  const now = run.end ?? performance.now();
  const span = Math.max(1500, (now - run.t0) * 1.04);
  const x = (t) => labelW + ((t - run.t0) / span) * (width - labelW - right);
  const lanes = [];
  for (const a of run.annotations) if (!lanes.some((l) => l.name === a.lane)) lanes.push({ name: a.lane, notes: true });
  lanes.push({ name: "breaker" }, { name: "server hold" });
  if (run.scenario.token || run.tokens.length) lanes.push({ name: "token" });
  const callsTop = top + lanes.length * laneH + 10;
  const height = callsTop + Math.max(1, calls.length) * rowH + 12;

  svg.replaceChildren();
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);

  const defs = el("defs", {}, svg);
  const hatch = el("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" }, defs);
  el("rect", { width: 6, height: 6, fill: "rgba(242,95,92,0.16)" }, hatch);
  el("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "rgba(242,95,92,0.55)", "stroke-width": 2 }, hatch);

  // Time axis.
  const step = niceStep(span, width - labelW);
  for (let t = 0; t <= span; t += step) {
    const px = x(run.t0 + t);
    el("line", { x1: px, x2: px, y1: 18, y2: height, class: "tick" }, svg);
    el("text", { x: px + 3, y: 13, class: "tick-label" }, svg).textContent = t >= 1000 ? `${(t / 1000).toFixed(t % 1000 ? 1 : 0)} s` : `${t} ms`;
  }

  // Host lanes.
  lanes.forEach((lane, i) => {
    const y = top + i * laneH;
    el("text", { x: 10, y: y + 12, class: "lane-label" }, svg).textContent = lane.name;
    el("line", { x1: labelW, x2: width - right, y1: y + laneH / 2, y2: y + laneH / 2, stroke: "#1f2632" }, svg);
    if (lane.notes) {
      for (const a of run.annotations.filter((n) => n.lane === lane.name)) {
        const x0 = x(run.t0 + a.start);
        const x1 = x(run.t0 + Math.min(a.end, now - run.t0));
        if (x1 <= x0) continue;
        el("rect", { x: x0, y: y + 2, width: x1 - x0, height: laneH - 4, rx: 3, fill: "rgba(242,95,92,0.28)", "data-tip": a.text }, svg);
        el("text", { x: x0 + 5, y: y + 12, fill: "#f6b1b0" }, svg).textContent = a.text;
      }
    } else if (lane.name === "breaker") {
      el("rect", { x: labelW, y: y + 6, width: Math.max(0, x(now) - labelW), height: 6, rx: 3, fill: "rgba(62,207,142,0.18)" }, svg);
      for (const s of run.breaker) {
        const end = s.end ?? now;
        const open = s.state === "open";
        el("rect", {
          x: x(s.start), y: y + 2, width: Math.max(2, x(end) - x(s.start)), height: laneH - 4, rx: 3,
          fill: open ? "url(#hatch)" : "rgba(245,165,36,0.35)", stroke: open ? "#f25f5c" : "#f5a524", "stroke-width": 1,
          "data-tip": open ? `breaker open until +${Math.round(s.end - run.t0)} ms (trip ${s.trips})\ncalls fail fast instead of piling on` : "breaker half-open: one probe tests the host",
        }, svg);
        if (x(end) - x(s.start) > 34) el("text", { x: x(s.start) + 5, y: y + 12, fill: open ? "#f6b1b0" : "#f5c46a" }, svg).textContent = open ? "open" : "half-open";
      }
    } else if (lane.name === "server hold") {
      for (const h of run.holds) {
        el("rect", {
          x: x(h.start), y: y + 4, width: Math.max(2, x(h.end) - x(h.start)), height: laneH - 8, rx: 3,
          fill: "rgba(245,165,36,0.22)", stroke: "#f5a524", "stroke-dasharray": "3 2",
          "data-tip": `host held until +${Math.round(h.end - run.t0)} ms\n${h.explain || h.why}`,
        }, svg);
      }
    } else {
      for (const t of run.tokens) {
        const end = t.end ?? now;
        el("rect", {
          x: x(t.start), y: y + 3, width: Math.max(3, x(end) - x(t.start)), height: laneH - 6, rx: 3,
          fill: t.end === null ? COLORS.inflight : t.ok ? COLORS.token : COLORS.s5xx, class: t.end === null ? "inflight" : "",
          "data-tip": `token fetch (${t.why})${t.generation ? ` → generation ${t.generation}` : ""}\n${t.explain || ""}`,
        }, svg);
      }
    }
  });

  // Calls.
  calls.forEach((c, i) => {
    const y = callsTop + i * rowH;
    const mid = y + rowH / 2;
    el("rect", { x: 0, y, width, height: rowH, class: "row-bg" }, svg);
    el("text", { x: 10, y: mid + 3.5, class: "label", "font-size": rowH > 14 ? 10.5 : 9.5, "data-tip": `#${c.id} ${c.method} ${c.url}` }, svg).textContent = `#${c.id} ${c.method} ${shortPath(c.url)}`;
    el("line", { x1: x(c.start), x2: x(c.end ?? now), y1: mid, y2: mid, stroke: "#2a3342", "stroke-width": 1 }, svg);
    for (const w of c.waits) {
      const end = w.end ?? now;
      if (end <= w.start) continue;
      el("line", {
        x1: x(w.start), x2: x(end), y1: mid, y2: mid, stroke: waitColor(w), "stroke-width": 2,
        "stroke-dasharray": w.kind === "retry" ? "4 3" : "1 3", "stroke-linecap": "round",
        "data-tip": `#${c.id} ${w.kind === "retry" ? "backs off" : "waits"} ${Math.round(end - w.start)} ms (${w.why})\n${w.explain || ""}`,
      }, svg);
    }
    for (const a of c.attempts) {
      const end = a.end ?? now;
      el("rect", {
        x: x(a.start), y: mid - bar / 2, width: Math.max(3, x(end) - x(a.start)), height: bar, class: `attempt${a.end === null ? " inflight" : ""}`,
        fill: attemptColor(a), stroke: a.probe ? "#ffffff" : "none", "stroke-width": a.probe ? 1.2 : 0,
        "data-call": c.id, "data-attempt": a.n, "data-result": a.end === null ? "inflight" : resultText(a.result),
        "data-tip": `#${c.id} attempt ${a.n}${a.probe ? " (half-open probe)" : ""}: ${resultText(a.result)} in ${Math.round(end - a.start)} ms\n${a.explain || ""}`,
      }, svg);
    }
    for (const m of c.marks) {
      el("circle", { cx: x(m.at), cy: y + 3, r: 3, fill: m.kind === "hint" ? "#ee7ad6" : "#f25f5c", "data-tip": `#${c.id}: ${m.explain}` }, svg);
    }
    if (c.end !== null) {
      const ex = x(c.end) + 7;
      const g = el("g", { class: "outcome", "data-call": c.id, "data-ok": c.ok }, svg);
      el("circle", { cx: ex, cy: mid, r: rowH > 14 ? 5.5 : 4.5, fill: c.ok ? "rgba(62,207,142,.2)" : "rgba(242,95,92,.2)", stroke: c.ok ? COLORS.ok : COLORS.s5xx }, g);
      el("text", { x: ex, y: mid + 3.5, "text-anchor": "middle", fill: c.ok ? COLORS.ok : COLORS.s5xx, "font-size": 9, "font-weight": 700 }, g).textContent = c.ok ? "✓" : "✕";
      g.setAttribute(
        "data-tip",
        c.ok
          ? `#${c.id} done: status ${c.status} after ${c.attempts.length} attempt(s)`
          : `#${c.id} failed after ${c.failure?.attempts ?? c.attempts.length} attempt(s): ${c.failure?.why}\n${c.explain || ""}`,
      );
    }
  });

  if (run.end === null) {
    const px = x(now);
    el("line", { x1: px, x2: px, y1: 18, y2: height, class: "now" }, svg);
  }
}

function drawLegend() {
  const items = [
    ["2xx", COLORS.ok], ["429", COLORS.s429], ["other 4xx", COLORS.s4xx], ["5xx", COLORS.s5xx], ["timeout", COLORS.timeout],
    ["reset", COLORS.reset], ["in flight", COLORS.inflight],
  ];
  const waits = [["backoff", COLORS.backoff], ["Retry-After / server hold", COLORS.hold], ["client rate limit", COLORS.client], ["token", COLORS.token]];
  $("#legend").innerHTML =
    items.map(([n, c]) => `<span><i style="background:${c}"></i>${n}</span>`).join("") +
    waits.map(([n, c]) => `<span><i class="wait" style="border-color:${c}"></i>${n}</span>`).join("");
}

// ---- the log, the state panels, the summary ------------------------------------------------------

const PILL = {
  call_succeeded: "ok", breaker_closed: "ok", token_refreshed: "token",
  call_failed: "bad", breaker_opened: "bad", budget_exhausted: "bad", token_fetch_failed: "bad",
  retry_scheduled: "info", waiting: "warn", host_held: "warn", hint_unreadable: "warn", breaker_half_open: "warn",
  token_fetch_started: "token", waiting_for_token: "token",
};

function detail(e, run) {
  switch (e.event) {
    case "call_started": return `${e.method} ${shortPath(e.url || e.host)}`;
    case "attempt_started": return `attempt ${e.attempt}${e.probe ? " (probe)" : ""}${e.timeoutMs ? `, timeout ${Math.round(e.timeoutMs)} ms` : ""}`;
    case "attempt_finished": return `attempt ${e.attempt} → ${resultText(e.result)}`;
    case "retry_scheduled": return `attempt ${e.attempt} in ${Math.round(e.delayMs)} ms`;
    case "waiting": return `until +${Math.round(e.untilMs - run.t0)} ms`;
    case "host_held": return `until +${Math.round(e.untilMs - run.t0)} ms`;
    case "breaker_opened": return `until +${Math.round(e.untilMs - run.t0)} ms, trip ${e.trips}`;
    case "token_refreshed": return `generation ${e.generation}${e.expiresInMs ? `, ${Math.round(e.expiresInMs / 1000)} s` : ""}`;
    case "token_fetch_failed": return `${e.callsFailed} calls failed`;
    case "call_succeeded": return `status ${e.status}, ${e.attempts} attempt(s), ${Math.round(e.elapsedMs)} ms`;
    case "call_failed": return `${e.failure.why}, ${e.failure.attempts} attempt(s)${e.failure.last ? `, last ${resultText(e.failure.last)}` : ""}`;
    default: return "";
  }
}

function appendLog(run, e) {
  const body = $("#log tbody");
  const tr = document.createElement("tr");
  tr.className = e.event;
  tr.dataset.event = e.event;
  const cells = [
    `+${Math.round(e.atMs - run.t0)}`,
    e.call !== undefined ? `#${e.call}` : "",
    `<span class="pill ${PILL[e.event] || ""}">${e.event.replaceAll("_", " ")}</span>`,
    escapeHtml(detail(e, run)),
    escapeHtml(e.explain || ""),
  ];
  tr.innerHTML = cells.map((c) => `<td>${c}</td>`).join("");
  body.appendChild(tr);
  while (body.children.length > 600) body.firstElementChild.remove();
  $("#log-count").textContent = `${run.log.length}`;
  const scroll = $("#log-scroll");
  scroll.scrollTop = scroll.scrollHeight;
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

function drawState(client) {
  if (!client) return;
  const hosts = client.hosts();
  const config = client.config();
  const box = $("#hosts");
  if (!hosts.length) {
    box.innerHTML = `<p class="empty">No host yet.</p>`;
  } else {
    box.innerHTML = hosts.map((h) => {
      const budgetMax = config.budget.maxSaved || 1;
      const budget = Math.min(1, h.budgetAvailable / budgetMax);
      const until = h.openUntilMs ? ` · ${Math.max(0, Math.round(h.openUntilMs - h.nowMs))} ms left` : "";
      const held = h.heldUntilMs ? `${Math.max(0, Math.round(h.heldUntilMs - h.nowMs))} ms` : "–";
      return `<div class="host" data-host="${escapeHtml(h.host)}">
        <div class="name">${escapeHtml(h.host)}</div>
        <div class="breaker"><span class="state-pill ${h.breaker}">${h.breaker.replace("_", "-")}</span><small>breaker${until}</small></div>
        <div class="meter"><span>failures</span><div class="bar"><div style="width:${Math.min(100, (h.consecutiveFailures / Math.max(1, config.breaker.consecutiveFailures)) * 100)}%;background:var(--bad)"></div></div><b>${h.consecutiveFailures}</b></div>
        <div class="meter"><span>retry budget</span><div class="bar"><div style="width:${budget * 100}%"></div></div><b>${h.budgetAvailable.toFixed(1)}</b></div>
        <div class="meter"><span>server hold</span><div></div><b>${held}</b></div>
        <div class="meter"><span>rate limiter</span><div></div><b>${h.limiterNextFreeMs === null ? "–" : h.limiterNextFreeMs > h.nowMs ? `next in ${Math.round(h.limiterNextFreeMs - h.nowMs)} ms` : "free"}</b></div>
        <div class="meter"><span>active calls</span><div></div><b>${h.activeCalls}</b></div>
      </div>`;
    }).join("");
  }
  const t = client.token();
  const tokenBox = $("#token");
  if (!state.run || (!state.run.scenario.token && t.generation === 0)) {
    tokenBox.innerHTML = `<p class="empty">No token in this scenario.</p>`;
  } else {
    const left = t.expiresInMs === null ? "–" : `${(Math.max(0, t.expiresInMs) / 1000).toFixed(1)} s`;
    tokenBox.innerHTML = `<div class="host">
      <div class="breaker"><span class="state-pill ${t.valid ? "closed" : "open"}">${t.valid ? "valid" : "none"}</span><small>generation ${t.generation}${t.fetching ? " · fetching…" : ""}</small></div>
      <div class="meter"><span>expires in</span><div></div><b>${left}</b></div>
      <div class="meter"><span>fetches</span><div></div><b>${state.run.tokenFetches}</b></div>
    </div>`;
  }
  const s = client.stats();
  const rows = [
    ["calls", s.calls], ["attempts", s.attempts], ["retries", s.retries], ["succeeded", s.succeeded], ["failed", s.failed],
    ["breaker trips", s.breakerTrips], ["fail-fast refusals", s.breakerRejections], ["budget refusals", s.budgetRefusals],
    ["token fetches", s.tokenFetches], ["rate-limit waits", s.rateLimitedWaits],
  ];
  $("#stats").innerHTML = rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
}

function drawSummary(run) {
  const t = run.totals();
  const elapsed = ((run.end ?? performance.now()) - run.t0) / 1000;
  const kpis = [
    ["calls", t.calls, ""], ["succeeded", t.ok, t.ok ? "ok" : ""], ["failed", t.failed, t.failed ? "bad" : ""],
    ["attempts", t.attempts, ""], ["retries", t.retries, t.retries ? "warn" : ""], ["seconds", elapsed.toFixed(1), ""],
  ];
  $("#kpis").innerHTML = kpis.map(([n, v, cls]) => `<div class="kpi ${cls}" data-kpi="${n}"><b>${v}</b><span>${n}</span></div>`).join("");
  const insight = $("#insight");
  if (run.insight) {
    insight.hidden = false;
    insight.textContent = run.insight;
    insight.classList.toggle("bad", run.insightBad);
  } else {
    insight.hidden = true;
  }
}

// ---- running --------------------------------------------------------------------------------

const state = { run: null, client: null, busy: false };

function tokenProvider(run) {
  return async () => {
    const response = await fetch(`${api}/oauth/token?expires_in=5`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${btoa("demo:demo")}` },
      body: "grant_type=client_credentials",
    });
    if (!response.ok) throw new Error(`token endpoint answered ${response.status}`);
    const body = await response.json();
    return { accessToken: body.access_token, expiresIn: body.expires_in };
  };
}

async function start(scenario) {
  if (state.busy) return;
  state.busy = true;
  document.querySelectorAll(".scenario").forEach((b) => {
    b.disabled = true;
    b.classList.toggle("active", b.dataset.id === scenario.id);
  });
  const summary = $("#summary");
  summary.dataset.state = "running";
  summary.dataset.scenario = scenario.id;
  $("#run-title").textContent = scenario.title;
  $("#run-blurb").textContent = scenario.blurb;
  $("#config-json").textContent = JSON.stringify({ baseUrl: scenario.crossOrigin ? otherOrigin(api) : api, ...scenario.config, ...(scenario.token ? { tokenProvider: "async () => ({accessToken, expiresIn})" } : {}) }, null, 2);
  $("#log tbody").replaceChildren();

  const run = new Run(scenario);
  state.run = run;
  const baseUrl = scenario.crossOrigin ? otherOrigin(api) : api;
  const client = new Client({ baseUrl, ...scenario.config, ...(scenario.token ? { tokenProvider: tokenProvider(run) } : {}) });
  state.client = client;
  client.onEvent((e) => {
    run.on(e);
    appendLog(run, e);
  });
  const ctx = {
    get tokenFetches() { return run.tokenFetches; },
    insight(text, bad = false) { run.insight = text; run.insightBad = bad; },
    annotate(lane, text, start, end) { run.annotations.push({ lane, text, start, end }); },
  };

  let frame = 0;
  const tick = () => {
    draw(run);
    drawSummary(run);
    drawState(client);
    if (run.end === null) frame = requestAnimationFrame(tick);
  };
  frame = requestAnimationFrame(tick);

  let error = null;
  try {
    await scenario.run({ client, ctx });
  } catch (e) {
    error = e;
    run.insight = `The scenario stopped: ${isResileError(e) ? `${e.code}: ` : ""}${e.message}`;
    run.insightBad = true;
  }
  run.end = performance.now();
  cancelAnimationFrame(frame);
  draw(run);
  drawSummary(run);
  drawState(client);

  const t = run.totals();
  const button = document.querySelector(`.scenario[data-id="${scenario.id}"] .result`);
  button.textContent = `${t.ok}/${t.calls} ✓ · ${t.attempts} attempts`;
  button.className = `result ${t.failed || error ? "mixed" : "ok"}`;
  summary.dataset.state = "done";
  document.querySelectorAll(".scenario").forEach((b) => (b.disabled = false));
  state.busy = false;
  window.resileDemo.last = { scenario: scenario.id, totals: t, insight: run.insight, error: error && String(error) };
}

function setupTooltips() {
  const tip = $("#tip");
  document.addEventListener("mousemove", (ev) => {
    const target = ev.target.closest && ev.target.closest("[data-tip]");
    if (!target) {
      tip.hidden = true;
      return;
    }
    tip.hidden = false;
    tip.textContent = target.getAttribute("data-tip");
    const x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    tip.style.left = `${x}px`;
    tip.style.top = `${ev.clientY + 16}px`;
  });
}

function setup() {
  const list = $("#scenario-list");
  for (const s of scenarios) {
    const button = document.createElement("button");
    button.className = "scenario";
    button.dataset.id = s.id;
    button.innerHTML = `<div class="name">${s.title}</div><div class="tag">${s.tag}</div><div class="result"></div>`;
    button.addEventListener("click", () => start(s));
    list.appendChild(button);
  }
  const input = $("#api");
  input.value = api;
  $("#server-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    api = input.value.replace(/\/+$/, "");
    checkServer();
  });
  input.addEventListener("change", () => {
    api = input.value.replace(/\/+$/, "");
    checkServer();
  });
  $("#log-quiet").addEventListener("change", (ev) => $(".log-panel").classList.toggle("quiet", ev.target.checked));
  $(".log-panel").classList.add("quiet");
  drawLegend();
  setupTooltips();
  $("#config-json").textContent = "// the selected scenario's config appears here";
  window.addEventListener("resize", () => state.run && draw(state.run));
}

window.resileDemo = { ready: false, scenarios: scenarios.map((s) => s.id), start: (id) => start(scenarios.find((s) => s.id === id)) };
await init();
setup();
await checkServer();
window.resileDemo.ready = true;
document.body.dataset.ready = "true";
