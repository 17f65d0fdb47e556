// The npm package as a user gets it. Packs www/pkg/ (scripts/build-wasm.sh's output) with
// `npm pack`, installs the tarball into a scratch project in a temporary directory (offline:
// the package has no dependencies) and uses it by its name, `resile-wasm`:
//   1. the tarball holds the package's files, every file build-wasm.sh put in www/pkg/ included
//   2. Node: the README's npm snippet, run as written (initSync with the module bytes found by
//      import.meta.resolve), calls the chaos server's /flaky: 503, 503, then 200 on the 3rd attempt
//   3. TypeScript: a file importing "resile-wasm" type-checks through the package's
//      `exports.types` (module nodenext; lib es2022 plus esnext.disposable, as the README says),
//      and a wrong config is a type error
//   4. headless Chromium: a page on another origin than the chaos server maps "resile-wasm" to
//      node_modules/ with an import map, does `await init()` (the .wasm fetched next to the .js)
//      and makes the same kind of call
// The server counts the attempts (/stats) each time. The tarball is kept in artifacts/.
//
//   node scripts/test-npm.mjs http://127.0.0.1:PORT      (the chaos server; scripts/test-wasm.sh)
//
// Needs node and npm, playwright-core and typescript under .tools/ (scripts/test-wasm.sh
// installs them), /usr/bin/chromium.
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const pkgDir = join(root, "www/pkg");
const chaos = (process.argv[2] || "").replace(/\/+$/, "");
if (!chaos) {
  console.error("usage: node scripts/test-npm.mjs CHAOS_URL");
  process.exit(2);
}
const require = createRequire(join(root, ".tools/package.json"));

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
const run = (cmd, args, options) => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], ...options });
const files = (dir) =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath ?? e.path, e.name)).split(sep).join("/"))
    .sort();
async function flakyFailures() {
  const stats = await (await fetch(`${chaos}/stats`)).json();
  if (typeof stats.flaky_failures !== "number") throw new Error(`/stats has no flaky_failures: ${JSON.stringify(stats)}`);
  return stats.flaky_failures;
}

const manifest = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
const scratch = mkdtempSync(join(tmpdir(), "resile-npm-"));
let browser;
let server;
try {
  // 1. npm pack
  mkdirSync(join(root, "artifacts"), { recursive: true });
  const [packed] = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", join(root, "artifacts")], { cwd: pkgDir }));
  const tarball = join(root, "artifacts", packed.filename);
  const inTarball = packed.files.map((f) => f.path).sort();
  console.log(`npm pack: ${packed.filename}, ${packed.size} bytes, ${inTarball.length} files`);
  check("the tarball is resile-wasm at the package's version", packed.name === "resile-wasm" && packed.version === manifest.version, `${packed.name}@${packed.version}`);
  check("the tarball holds every file build-wasm.sh wrote, and nothing else", JSON.stringify(inTarball) === JSON.stringify(files(pkgDir)),
    `packed ${inTarball.join(" ")}; on disk ${files(pkgDir).join(" ")}`);
  for (const f of ["package.json", "README.md", "LICENSE-MIT", "LICENSE-APACHE", "resile_wasm.js", "resile_wasm.d.ts", "resile_wasm_bg.wasm"]) {
    check(`the tarball has ${f}`, inTarball.includes(f));
  }
  check("the tarball has wasm-bindgen's snippets", inTarball.some((f) => f.startsWith("snippets/")));

  // 2. A scratch project installs the tarball, offline.
  writeFileSync(join(scratch, "package.json"), JSON.stringify({ name: "scratch", private: true, type: "module" }));
  run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", tarball], { cwd: scratch });
  const installed = JSON.parse(readFileSync(join(scratch, "node_modules/resile-wasm/package.json"), "utf8"));
  check("npm install of the tarball puts resile-wasm in node_modules/", installed.version === manifest.version);

  // The README's snippet, as written: the block after the marker comment.
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const snippet = readme.split("<!-- scripts/test-npm.mjs runs this block -->")[1]?.match(/```js\n([\s\S]*?)```/)?.[1];
  check("README.md has the npm snippet", Boolean(snippet));
  if (snippet) {
    writeFileSync(join(scratch, "try.mjs"), snippet);
    await fetch(`${chaos}/stats/reset`, { method: "POST" });
    const before = await flakyFailures();
    let out = "";
    try {
      out = run("node", ["try.mjs"], { cwd: scratch, env: { ...process.env, CHAOS_URL: `${chaos}/` }, timeout: 60_000 }).trim();
    } catch (e) {
      out = `${e.stdout ?? ""}${e.stderr ?? ""}`.trim();
    }
    console.log(`  node try.mjs: ${out}`);
    const [status, attempts, ...body] = out.split(" ");
    let json = null;
    try {
      json = JSON.parse(body.join(" "));
    } catch {}
    check("Node: the snippet's call succeeds on the third attempt", status === "200" && attempts === "3" && json?.attempt === 3, out);
    check("Node: the chaos server answered 503 twice", (await flakyFailures()) - before === 2);
  }

  // 3. TypeScript resolves the package's types by its name.
  writeFileSync(join(scratch, "check.ts"), `import init, { initSync, Client, isResileError, type ClientConfig, type ResileEvent } from "resile-wasm";
const config: ClientConfig = { baseUrl: "http://127.0.0.1:9/", retry: { maxAttempts: 2 } };
const client: Client = new Client(config);
const dispose: () => void = client.onEvent((e: ResileEvent) => console.log(e.event, e.explain));
// @ts-expect-error: maxAttempts is a number
new Client({ retry: { maxAttempts: "two" } });
export { init, initSync, isResileError, dispose };
`);
  writeFileSync(join(scratch, "tsconfig.json"), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, module: "nodenext", moduleResolution: "nodenext", target: "es2022", lib: ["es2022", "esnext.disposable", "dom"], types: [] },
    files: ["check.ts"],
  }));
  let tsc = "";
  try {
    run(join(root, ".tools/node_modules/.bin/tsc"), ["-p", scratch], { cwd: scratch });
  } catch (e) {
    tsc = `${e.stdout ?? ""}${e.stderr ?? ""}`.trim() || String(e);
  }
  check("TypeScript: `import ... from \"resile-wasm\"` type-checks through exports.types", tsc === "", tsc);

  // 4. Chromium: the scratch project served on its own origin, the chaos server on another.
  writeFileSync(join(scratch, "index.html"), `<!doctype html>
<meta charset="utf-8">
<title>resile-wasm from npm</title>
<link rel="icon" href="data:,">
<script type="importmap">{ "imports": { "resile-wasm": "./node_modules/resile-wasm/resile_wasm.js" } }</script>
<script type="module">
  import init, { Client } from "resile-wasm";
  const chaos = new URLSearchParams(location.search).get("chaos");
  try {
    await init();
    const events = [];
    const client = new Client({ baseUrl: chaos, seed: 11, backoff: { baseMs: 10, jitter: "none" } });
    client.onEvent((e) => events.push(e.event));
    const response = await client.get("flaky?key=npm-browser&fail=2");
    window.result = { status: response.status, attempts: response.attempts, body: await response.json(),
      crossOrigin: response.crossOrigin, retries: events.filter((e) => e === "retry_scheduled").length };
  } catch (e) {
    window.result = { error: String(e && e.message || e) };
  }
</script>
`);
  const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };
  server = createServer((req, res) => {
    const path = normalize(join(scratch, decodeURIComponent(new URL(req.url, "http://x").pathname)));
    if (!path.startsWith(scratch + sep)) return res.writeHead(403).end();
    try {
      const body = readFileSync(path);
      res.writeHead(200, { "content-type": types[extname(path)] || "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const { chromium } = require("playwright-core");
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--no-first-run"],
  });
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && !m.text().startsWith("Failed to load resource: the server responded with a status of 503") && errors.push(`console: ${m.text()}`));
  page.on("requestfailed", (r) => errors.push(`request failed: ${r.url()}`));
  page.on("response", (r) => r.url().startsWith(origin) && r.status() !== 200 && errors.push(`${r.status()} for ${r.url()}`));
  const before = await flakyFailures();
  await page.goto(`${origin}/index.html?chaos=${encodeURIComponent(`${chaos}/`)}`);
  const result = await page
    .waitForFunction(() => window.result, null, { timeout: 60_000 })
    .then((h) => h.jsonValue())
    .catch((e) => ({ error: `no result: ${e.message}` }));
  console.log(`  chromium: ${JSON.stringify(result)}`);
  check("Chromium: the page imports resile-wasm through the import map and loads its wasm", !result.error && errors.length === 0, [result.error, ...errors].filter(Boolean).join("; "));
  check("Chromium: the cross-origin call succeeds on the third attempt after two retries",
    result.status === 200 && result.attempts === 3 && result.body?.attempt === 3 && result.retries === 2 && result.crossOrigin === true);
  check("Chromium: the chaos server answered 503 twice", (await flakyFailures()) - before === 2);
} finally {
  await browser?.close();
  server?.close();
  rmSync(scratch, { recursive: true, force: true });
}
console.log(`npm package: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
