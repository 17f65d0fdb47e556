#!/usr/bin/env bash
# Proves the workspace's `rust-version` (Cargo.toml) for the crates a user builds: resile-core,
# resile and resile-cli are checked with exactly that toolchain, against the newest dependency
# versions that declare support for it (what cargo >= 1.84 picks for a user on that Rust).
#
# The check runs on a copy of the working tree under target/msrv/src/, so the repository's
# Cargo.lock (resolved for stable Rust, with dev-only crates such as proptest that need newer
# Rust) stays as it is. Installs the toolchain with rustup when missing (minimal profile).
#
# Two pins follow the resolver's fallback, for crates whose older releases it does not pick by
# itself (their newer releases need Rust 1.83, and nothing above them asks for those):
#   idna_adapter 1.2.0  ICU4X 1.5 for url's IDNA instead of 2.x (zerovec 0.11 needs 1.83); the
#                       pin idna_adapter's documentation gives for older toolchains
#   utf16_iter 1.0.5    1.1 needs 1.83
# If a later dependency needs a newer Rust, cargo names it here: raise `rust-version` (and say
# why next to it) or pin that dependency as above.
set -euo pipefail
cd "$(dirname "$0")/.."

msrv=$(sed -n 's/^rust-version = "\([0-9.]*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$msrv" ] || { echo "no rust-version in Cargo.toml's [workspace.package]"; exit 1; }
rustup run "$msrv" rustc --version >/dev/null 2>&1 || rustup toolchain install "$msrv" --profile minimal

src=target/msrv/src
rm -rf "$src"
mkdir -p "$src"
git ls-files -z --cached --others --exclude-standard | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$src"
(
  cd "$src"
  CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback cargo update --quiet
  cargo update --quiet -p idna_adapter --precise 1.2.0
  cargo update --quiet -p utf16_iter --precise 1.0.5
)
CARGO_TARGET_DIR=target/msrv/target cargo "+$msrv" check --locked --quiet \
  --manifest-path "$src/Cargo.toml" -p resile-core -p resile -p resile-cli
echo "resile-core, resile and resile-cli build with Rust $msrv"
