#!/usr/bin/env bash
# Builds the browser adapter for the web and checks the result loads:
#   1. cargo build -p resile-wasm --profile wasm-release (opt-level z, LTO, one codegen unit, panic abort)
#   2. wasm-bindgen --target web into www/pkg/ (gitignored), producers stripped; the names stay
#      for step 3, which orders functions by them and then strips them
#   3. wasm-opt from npm's binaryen@132, installed under .tools/ (never Debian's binaryen:
#      its wasm-opt 108 corrupts wasm-bindgen output): -Os without one-caller inlining, functions
#      ordered by name, repeated until nothing shrinks, names and debug info stripped (see
#      WASM_OPT below)
#   4. loads the optimized module in Node with initSync and drives a Client a little
#   5. writes the sizes (raw, after wasm-bindgen, after wasm-opt, gzipped) to artifacts/wasm-size.txt
#   6. makes www/pkg/ the npm package `resile-wasm`: wasm/npm/package.json (its version must be
#      the crate's), wasm/README.md and the license files next to wasm-bindgen's output;
#      `npm pack` in www/pkg/ builds the tarball (scripts/test-npm.mjs packs and installs it)
# Idempotent; needs cargo, the wasm32 target, wasm-bindgen-cli matching Cargo.lock, node and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

out=www/pkg
raw=target/wasm32-unknown-unknown/wasm-release/resile_wasm.wasm
tools=.tools

rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
want=$(scripts/wasm-bindgen-version.sh)
if ! wasm-bindgen --version 2>/dev/null | grep -qw "$want"; then
  cargo install wasm-bindgen-cli --version "$want"
fi
if [ ! -x "$tools/node_modules/.bin/wasm-opt" ] || ! "$tools/node_modules/.bin/wasm-opt" --version | grep -q 'version 132'; then
  mkdir -p "$tools"
  [ -f "$tools/package.json" ] || echo '{"private": true}' > "$tools/package.json"
  (cd "$tools" && npm install --no-audit --no-fund binaryen@132)
fi

echo "==> cargo build -p resile-wasm --profile wasm-release"
cargo build -p resile-wasm --target wasm32-unknown-unknown --profile wasm-release

echo "==> wasm-bindgen --target web -> $out/"
rm -rf "$out"
wasm-bindgen --target web --out-dir "$out" --remove-producers-section "$raw"
cp "$out/resile_wasm_bg.wasm" "$out/.resile_wasm_bg.unopt.wasm"

# What is shipped is gzipped, so the passes are the ones that make the gzipped module smallest
# (BENCHMARKS.md, "Browser build size"): binaryen's inlining of functions called from one place
# makes the module smaller but its gzip larger (a body merged into its caller no longer looks
# like its siblings), and functions ordered by name put a generic's copies side by side, where
# gzip finds their likeness. `--precompute-propagate` carries constants through locals once
# more after -Os; `--converge` repeats the passes while they still shrink the module.
# `--strip-debug` then removes the names. `-Oz` alone: 181 KB gzipped; this: 169 KB.
WASM_OPT=(-Os --one-caller-inline-max-function-size=0 --precompute-propagate
  --reorder-functions-by-name --converge --strip-debug --strip-producers)
echo "==> wasm-opt ${WASM_OPT[*]} (binaryen 132)"
# The features rustc enables by default for wasm32-unknown-unknown.
"$tools/node_modules/.bin/wasm-opt" "${WASM_OPT[@]}" \
  --enable-bulk-memory --enable-mutable-globals --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-reference-types --enable-multivalue \
  "$out/.resile_wasm_bg.unopt.wasm" -o "$out/resile_wasm_bg.wasm"
# For the size table only: wasm-bindgen's output as it would ship unoptimized, names stripped.
"$tools/node_modules/.bin/wasm-opt" --strip-debug --strip-producers --all-features \
  "$out/.resile_wasm_bg.unopt.wasm" -o "$out/.resile_wasm_bg.stripped.wasm"

echo "==> smoke test: load the optimized module in Node"
node --input-type=module - "$out" <<'JS'
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import assert from "node:assert/strict";
const dir = resolve(process.argv[2]);
const { initSync, Client, ResileError, isResileError } = await import(`${dir}/resile_wasm.js`);
initSync({ module: readFileSync(`${dir}/resile_wasm_bg.wasm`) });

for (const bad of [{ retry: { max_attempts: 0 } }, { retry: { maxAttempts: 0 } }]) {
  assert.throws(() => new Client(bad),
    (e) => e instanceof ResileError && e instanceof Error && isResileError(e) && e.code === "config" && /retry\.maxAttempts/.test(e.message));
}
assert.throws(() => new Client({ retries: 3 }), (e) => e.code === "config");
assert.equal(isResileError(new Error("plain")), false);

const events = [];
const client = new Client({
  baseUrl: "http://127.0.0.1:9", // discard port: nothing listens, every attempt is refused
  seed: 7,
  maxInFlight: 2,
  retry: { maxAttempts: 3 },
  backoff: { baseMs: 10, jitter: "none" },
});
const dispose = client.onEvent((e) => events.push(e));
assert.equal(typeof dispose, "function");
assert.equal(client.config().retry.maxAttempts, 3);
assert.deepEqual(client.hosts(), []);
assert.equal(client.token().generation, 0);
const error = await client.get("/nothing", { deadlineMs: 5000 }).then(() => null, (e) => e);
assert.ok(error, "a refused connection cannot succeed");
assert.ok(isResileError(error));
assert.equal(error.name, "ResileError");
assert.equal(error.code, "retries_exhausted");
assert.equal(error.attempts, 3);
assert.equal(error.transport, "reset");
assert.equal(events.filter((e) => e.event === "retry_scheduled").length, 2);
const retry = events.find((e) => e.event === "retry_scheduled");
assert.ok(retry.explain.length > 0 && typeof retry.delayMs === "number" && typeof retry.atMs === "number");
assert.equal(client.hosts()[0].host, "http://127.0.0.1:9");
dispose();
const seen = events.length;
await client.get("/nothing", { maxAttempts: 1 }).catch(() => {});
assert.equal(events.length, seen, "a disposed listener hears nothing");
console.log(`node: loaded, ${events.length} events, error ${error.code}: ${error.message}`);
JS

gz() { gzip -9 -c "$1" | wc -c; }
mkdir -p artifacts
{
  echo "resile-wasm sizes in bytes ($(date -u +%Y-%m-%dT%H:%MZ), rustc $(rustc --version | cut -d' ' -f2), wasm-bindgen $want, binaryen 132)"
  printf '%-44s %9s %9s\n' "file" "raw" "gzip -9"
  printf '%-44s %9d %9d\n' "cargo output (wasm-release)" "$(stat -c %s "$raw")" "$(gz "$raw")"
  printf '%-44s %9d %9d\n' "after wasm-bindgen (names stripped)" "$(stat -c %s "$out/.resile_wasm_bg.stripped.wasm")" "$(gz "$out/.resile_wasm_bg.stripped.wasm")"
  printf '%-44s %9d %9d\n' "after wasm-opt: resile_wasm_bg.wasm" "$(stat -c %s "$out/resile_wasm_bg.wasm")" "$(gz "$out/resile_wasm_bg.wasm")"
  printf '%-44s %9d %9d\n' "JS glue: resile_wasm.js" "$(stat -c %s "$out/resile_wasm.js")" "$(gz "$out/resile_wasm.js")"
} | tee artifacts/wasm-size.txt
rm -f "$out/.resile_wasm_bg.unopt.wasm" "$out/.resile_wasm_bg.stripped.wasm"

echo "==> npm package resile-wasm in $out/"
# The package's exports: "." (types: the .d.ts wasm-bindgen generates from src/types.d.ts and the
# bindings; default: the ES module) and "./resile_wasm_bg.wasm", so Node code can find the module
# bytes with import.meta.resolve and pass them to initSync (Node's fetch reads no file: URLs); in
# a browser or a bundler `await init()` fetches the .wasm next to the .js. "sideEffects": false:
# importing the glue only defines its classes and functions, so bundlers may drop what is unused.
crate_version=$(cargo metadata --no-deps --format-version 1 | node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () =>
    console.log(JSON.parse(s).packages.find((p) => p.name === "resile-wasm").version));')
node -e '
  const [file, want] = process.argv.slice(1);
  const got = JSON.parse(require("fs").readFileSync(file, "utf8")).version;
  if (got !== want) { console.error(`${file}: version ${got}, but the resile-wasm crate is ${want}`); process.exit(1); }
' wasm/npm/package.json "$crate_version"
cp wasm/npm/package.json "$out/package.json"
cp wasm/README.md "$out/README.md"
cp LICENSE-MIT LICENSE-APACHE "$out/"
echo "resile-wasm@$crate_version: $(cd "$out" && find . -type f | sort | sed 's|^\./||' | tr '\n' ' ')"
