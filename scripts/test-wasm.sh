#!/usr/bin/env bash
# The browser side of resile, end to end, on a fresh Debian machine (idempotent; a warm run takes
# a few minutes):
#   1. installs what is missing: the wasm32 target, Chromium and ChromeDriver (Debian), the
#      wasm-bindgen-cli matching Cargo.lock, npm's binaryen@132, playwright-core and typescript
#      (under .tools/)
#   2. runs resile-wasm's native tests (the pure helpers, the bulkhead, the error type; the
#      generated scenario list and the .d.ts checked against the core), then builds
#      and starts the chaos server on a free loopback port, serving www/ (stopped on exit)
#   3. runs resile-wasm's tests in headless Chromium (wasm-bindgen-test-runner + chromedriver);
#      the page runs on the runner's origin, the chaos server is another one, so CORS is real;
#      they are built with the chaos server's URL and fail without it
#   4. builds the release wasm for the web (scripts/build-wasm.sh: wasm-bindgen, wasm-opt,
#      a Node smoke test, sizes in artifacts/wasm-size.txt)
#   5. type-checks a TypeScript usage file against the generated declarations
#   6. runs the www/ page in headless Chromium (scripts/test-www.mjs), screenshot artifacts/www.png
#   7. the npm package (scripts/test-npm.mjs): `npm pack` of www/pkg/ into artifacts/, the tarball
#      installed offline into a scratch project, used by name from Node (the README's snippet),
#      TypeScript and headless Chromium, each call checked against the chaos server
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
started=$(date +%s)

step "tools"
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
command -v chromium >/dev/null && command -v chromedriver >/dev/null || {
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
}
want=$(scripts/wasm-bindgen-version.sh)
if ! wasm-bindgen --version 2>/dev/null | grep -qw "$want"; then
  # Not --locked: a version locked in wasm-bindgen-cli's own lockfile is gone from the registry.
  cargo install wasm-bindgen-cli --version "$want"
fi
mkdir -p .tools
[ -f .tools/package.json ] || echo '{"private": true}' > .tools/package.json
if [ ! -d .tools/node_modules/playwright-core ] || [ ! -x .tools/node_modules/.bin/wasm-opt ] || [ ! -x .tools/node_modules/.bin/tsc ]; then
  (cd .tools && npm install --no-audit --no-fund binaryen@132 playwright-core@1.65.1 typescript@5.9.3)
fi
echo "wasm-bindgen $(wasm-bindgen --version | cut -d' ' -f2), $(chromium --version 2>/dev/null | head -1), node $(node --version)"

step "resile-wasm natively (pure helpers, bulkhead, Error; scenario list and .d.ts against the core)"
cargo test -p resile-wasm

step "chaos server"
cargo build -p resile-chaos
logs=$(mktemp -d)
chaos_pid=""
cleanup() {
  if [ -n "$chaos_pid" ]; then kill "$chaos_pid" 2>/dev/null || true; wait "$chaos_pid" 2>/dev/null || true; fi
  rm -rf "$logs"
}
trap cleanup EXIT
mkdir -p www/pkg
# Keep-alive off: Chromium re-sends a request by itself only on a reused connection, so with
# every connection closed after its response the page does see a scripted reset.
target/debug/resile-chaos --port 0 --www www --keep-alive off >"$logs/chaos.out" 2>"$logs/chaos.err" &
chaos_pid=$!
chaos_url=""
for _ in $(seq 1 100); do
  chaos_url=$(head -n 1 "$logs/chaos.out" 2>/dev/null || true)
  [ -n "$chaos_url" ] && break
  kill -0 "$chaos_pid" 2>/dev/null || { cat "$logs/chaos.err"; echo "the chaos server exited"; exit 1; }
  sleep 0.1
done
[ -n "$chaos_url" ] || { echo "the chaos server printed no URL in 10 s"; exit 1; }
echo "chaos server at $chaos_url (pid $chaos_pid)"

step "resile-wasm in headless Chromium (against $chaos_url)"
(
  cd wasm
  RESILE_CHAOS_URL="$chaos_url" \
  WASM_BINDGEN_TEST_TIMEOUT=600 \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  CHROMEDRIVER=/usr/bin/chromedriver \
    cargo test -p resile-wasm --target wasm32-unknown-unknown -- --nocapture
)

step "release build for the web"
scripts/build-wasm.sh

step "TypeScript declarations: a usage file type-checks against www/pkg/resile_wasm.d.ts"
.tools/node_modules/.bin/tsc --noEmit --strict --target es2022 --module esnext --moduleResolution bundler \
  --lib esnext,dom,dom.iterable wasm/tests/ts/api-usage.ts
echo "types: ok"

step "www/ in headless Chromium"
node scripts/test-www.mjs "$chaos_url"

step "npm package: npm pack, install the tarball in a scratch project, use it from Node, TypeScript, Chromium"
node scripts/test-npm.mjs "$chaos_url"

step "browser suite passed in $(( $(date +%s) - started )) s"
