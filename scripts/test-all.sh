#!/usr/bin/env bash
# Runs every test of resile on a fresh Debian machine with Rust stable: installs what it needs
# (the wasm32 target, Chromium and ChromeDriver, wasm-bindgen-cli, npm's binaryen, the Rust
# toolchain named by rust-version when RESILE_CHECK_MSRV=1), then runs the native workspace
# tests, packages the crates, checks the MSRV (opt-in), builds the core for wasm32, and runs the
# browser tests (npm package included).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# redis-server first: the CLI's default features turn on `resile/redis` for the whole workspace,
# so the fleet tests (processes sharing one quota through a redis-server each test starts on a
# loopback port, persistence off) run in the workspace's `cargo test` below; a step of their own
# would build `resile` again with other features only to run them twice.
if ! command -v redis-server >/dev/null 2>&1; then
  step "redis-server for the fleet tests (Debian's package)"
  apt-get update -qq && apt-get install -y -qq redis-server
fi

step "native: cargo test (core, chaos server, native adapter and CLI, doc tests)"
cargo test --workspace --exclude resile-bench --exclude resile-wasm
cargo test -p resile --features reqwest-middleware --test middleware
cargo test -p resile --features reqwest-middleware --test conformance through_the_reqwest_middleware

step "TLS features: rustls with the platform's roots, and native-tls (OpenSSL's headers)"
if ! { command -v pkg-config >/dev/null && pkg-config --exists openssl; }; then
  apt-get update -qq && apt-get install -y -qq libssl-dev pkg-config
fi
cargo check -p resile --no-default-features --features rustls-native-roots
cargo check -p resile --no-default-features --features native-tls

step "integrations: tower and OpenTelemetry (features tower, reqwest-middleware, opentelemetry)"
# The telemetry tests run in the workspace run too (tracing only); here with every integration
# and the `opentelemetry` feature.
cargo test -p resile --features tower,reqwest-middleware,opentelemetry --test tower --test telemetry
cargo test -p resile --features tower,opentelemetry --doc

step "crates: cargo package resile-core and resile (what crates.io would get), each built from its package alone"
# One invocation: cargo verifies `resile` against the just-packaged resile-core through
# a local registry, so neither has to be on crates.io and both are compiled as a user would.
# Cargo takes a registry crate of a given version as immutable: it reuses what an earlier run
# unpacked and compiled of the local-registry resile-core 0.1.0. Drop both (in a target dir of
# the packaging's own, so the dependencies stay cached), so `resile` is verified against this
# tree's core.
verify_dir=target/package-verify
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/resile-core-0.1.0 \
  "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/resile-0.1.0 \
  "$verify_dir"/debug/.fingerprint/resile-* "$verify_dir"/debug/deps/libresile* \
  "$verify_dir"/debug/deps/resile*
cargo package -p resile-core -p resile --allow-dirty --target-dir "$verify_dir"

step "cargo install --path native/cli: the command installs from the repository (debug, temporary root)"
install_root=$(mktemp -d)
cargo install --locked --quiet --debug --path native/cli --root "$install_root" --target-dir target
"$install_root/bin/resile" --version
rm -rf "$install_root"

if [ "${RESILE_CHECK_MSRV:-0}" = 1 ]; then
  # Opt-in: it installs the older toolchain and builds every dependency again with it.
  step "MSRV: resile-core, resile and resile-cli build with the rust-version in Cargo.toml"
  scripts/check-msrv.sh
fi

step "core builds for wasm32-unknown-unknown"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
cargo build -p resile-core --target wasm32-unknown-unknown

step "examples/shared-app: one crate on the common API, for the host (resile) and wasm32 (resile-wasm)"
cargo build -p shared-app
cargo build -p shared-app --target wasm32-unknown-unknown

step "core unit tests and recorded scenario traces on wasm32 (Node)"
if ! wasm-bindgen --version 2>/dev/null | grep -q "$(scripts/wasm-bindgen-version.sh)"; then
  cargo install wasm-bindgen-cli --version "$(scripts/wasm-bindgen-version.sh)"
fi
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test -p resile-core --target wasm32-unknown-unknown --lib

if [ -x scripts/test-wasm.sh ]; then
  step "browser: wasm adapter and www/ in headless Chromium"
  scripts/test-wasm.sh
fi

step "all test suites passed"
