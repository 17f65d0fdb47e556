// Browser test of www/: loads the page from the chaos server in headless Chromium, runs every
// scenario by clicking its button, and checks that the timeline and the event log show the
// attempts the engine made. Saves artifacts/www.png (and one screenshot per scenario).
//
//   node scripts/test-www.mjs http://127.0.0.1:PORT      (the chaos server, started with --www www)
//
// Needs playwright-core (scripts/test-wasm.sh installs it under .tools/) and /usr/bin/chromium.
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";

const require = createRequire(resolve(".tools/package.json"));
const { chromium } = require("playwright-core");

const base = (process.argv[2] || "").replace(/\/+$/, "");
if (!base) {
  console.error("usage: node scripts/test-www.mjs CHAOS_URL");
  process.exit(2);
}
mkdirSync("artifacts", { recursive: true });

let passed = 0;
let failed = 0;
function check(name, ok, detail = "") {
  if (ok) {
    passed += 1;
    console.log(`  ok   ${name}`);
  } else {
    failed += 1;
    console.log(`  FAIL ${name}${detail ? `: ${detail}` : ""}`);
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
  ],
});
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1480, height: 1180 }, deviceScaleFactor: 1 });
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  // Chromium logs every non-2xx fetch as "Failed to load resource"; the scenarios want those.
  page.on("console", (m) => m.type() === "error" && !m.text().startsWith("Failed to load resource") && errors.push(`console: ${m.text()}`));
  page.setDefaultTimeout(60_000);

  await page.goto(`${base}/`, { waitUntil: "load" });
  await page.waitForSelector("body[data-ready=true]");
  check("the page loads the wasm client", true);
  check("the chaos server answers the page", await page.$eval("#server-dot", (d) => d.classList.contains("up")));

  async function run(id) {
    const started = Date.now();
    await page.click(`.scenario[data-id="${id}"]`);
    await page.waitForSelector(`#summary[data-state="done"][data-scenario="${id}"]`, { timeout: 90_000 });
    await page.waitForTimeout(150);
    const facts = await page.evaluate(() => {
      const count = (s) => document.querySelectorAll(s).length;
      const kpi = (n) => Number(document.querySelector(`[data-kpi="${n}"] b`)?.textContent);
      const results = {};
      for (const r of document.querySelectorAll("#timeline rect.attempt")) {
        const k = r.getAttribute("data-result");
        results[k] = (results[k] || 0) + 1;
      }
      const events = {};
      for (const tr of document.querySelectorAll("#log tbody tr")) events[tr.dataset.event] = (events[tr.dataset.event] || 0) + 1;
      return {
        attemptsDrawn: count("#timeline rect.attempt"),
        results,
        outcomesOk: count('#timeline g.outcome[data-ok="true"]'),
        outcomesFailed: count('#timeline g.outcome[data-ok="false"]'),
        rows: count("#timeline text.label"),
        events,
        kpi: { calls: kpi("calls"), succeeded: kpi("succeeded"), failed: kpi("failed"), attempts: kpi("attempts") },
        insight: document.querySelector("#insight").hidden ? "" : document.querySelector("#insight").textContent,
        last: window.resileDemo.last,
        explained: [...document.querySelectorAll("#log tbody tr")].filter((tr) => tr.children[4].textContent.length > 10).length,
        failures: [...document.querySelectorAll("#log tbody tr[data-event=call_failed]")].map((tr) => tr.textContent.replace(/\s+/g, " ").trim()),
      };
    });
    await page.screenshot({ path: `artifacts/www-${id}.png`, fullPage: true });
    console.log(`${id}: ${((Date.now() - started) / 1000).toFixed(1)} s, ${facts.kpi.calls} calls, ${facts.attemptsDrawn} attempts drawn, ${JSON.stringify(facts.results)}`);
    check(`${id}: no scenario error`, !facts.last.error, facts.last.error);
    check(`${id}: one drawn bar per attempt_started event`, facts.attemptsDrawn === (facts.events.attempt_started || 0) && facts.attemptsDrawn === facts.kpi.attempts,
      `${facts.attemptsDrawn} bars, ${facts.events.attempt_started} events, kpi ${facts.kpi.attempts}`);
    check(`${id}: one row and one outcome marker per call`, facts.rows === facts.kpi.calls && facts.outcomesOk + facts.outcomesFailed === facts.kpi.calls,
      `${facts.rows} rows, ${facts.outcomesOk}+${facts.outcomesFailed} outcomes, ${facts.kpi.calls} calls`);
    check(`${id}: the log explains its decisions`, facts.explained > 0);
    return facts;
  }

  const commit = await run("commit");
  check("commit: A retried once, B not at all: 3 attempts", commit.attemptsDrawn === 3, JSON.stringify(commit.results));
  check("commit: two 503s and one 201 drawn", commit.results["status 503"] === 2 && commit.results["status 201"] === 1, JSON.stringify(commit.results));
  check("commit: B failed, A succeeded", commit.outcomesOk === 1 && commit.outcomesFailed === 1);
  check("commit: the failure says not_idempotent", await page.$$eval("#log tbody tr[data-event=call_failed]", (rows) => rows.some((r) => r.textContent.includes("not_idempotent"))));
  check("commit: the server holds one order per logical write", /1 order on the server/.test(commit.insight) && /did create 1 order/.test(commit.insight), commit.insight);

  const storm = await run("storm");
  check("storm: all 16 calls succeed", storm.kpi.succeeded === 16 && storm.outcomesOk === 16, JSON.stringify(storm.kpi));
  check("storm: 429s drawn", (storm.results["status 429"] || 0) > 0, JSON.stringify(storm.results));
  check("storm: the host is held by Retry-After", (storm.events.host_held || 0) > 0);
  check("storm: calls wait for the hold instead of sending", (storm.events.waiting || 0) > 0 || (storm.events.retry_scheduled || 0) > 0);

  const token = await run("token");
  check("token: 45 calls succeed", token.kpi.succeeded === 45, `${JSON.stringify(token.kpi)} ${JSON.stringify(token.failures)}`);
  check("token: 3 fetches for 45 calls", token.insight.startsWith("3 token fetches"), token.insight);
  check("token: the token lane is drawn", (await page.$$("#timeline text.lane-label")).length === 3);

  const paginate = await run("paginate");
  check("paginate: 320 items, no duplicates, in order", /^320 items/.test(paginate.insight) && /no duplicates, in order/.test(paginate.insight), paginate.insight);
  check("paginate: failed pages were retried", (paginate.results["status 503"] || 0) > 0 && paginate.kpi.failed === 0, JSON.stringify(paginate.results));

  const hidden = await run("hidden");
  check("hidden: hint_unreadable shown once", hidden.events.hint_unreadable === 1, JSON.stringify(hidden.events));
  check("hidden: both calls succeed after one retry", hidden.kpi.succeeded === 2 && hidden.attemptsDrawn === 4);

  const outage = await run("outage");
  check("outage: the breaker opened and closed again", (outage.events.breaker_opened || 0) > 0 && (outage.events.breaker_closed || 0) === 1, JSON.stringify(outage.events));
  check("outage: a half-open probe was drawn", (await page.$$('#timeline rect.attempt[stroke="#ffffff"]')).length > 0);
  check("outage: calls failed fast while open", outage.kpi.failed > 0 && outage.kpi.succeeded > 0, JSON.stringify(outage.kpi));
  await page.screenshot({ path: "artifacts/www.png", fullPage: true });

  // The panels read the client's camelCase views (hosts(), token(), stats(), config()): a key
  // the page misspells shows up as "undefined" or "NaN".
  const panels = await page.evaluate(() => ["#hosts", "#token", "#stats", "#log tbody"].map((s) => [s, document.querySelector(s)?.textContent || ""]));
  for (const [selector, text] of panels) {
    check(`${selector} shows no undefined or NaN`, !/undefined|NaN/.test(text), text.slice(0, 200));
  }
  check("the stats panel shows every total as a number", await page.$$eval("#stats dd", (dds) => dds.length >= 10 && dds.every((d) => /^\d+$/.test(d.textContent))));

  check("no errors in the page", errors.length === 0, errors.join("; "));
} finally {
  await browser.close();
}
console.log(`www: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
