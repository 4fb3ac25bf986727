#!/bin/sh
# deps.sh — install what building and testing sealtrack needs, from Debian's packages.
# Called by make when a dependency is missing; safe to run again (installs only what is absent).
#   libuv1-dev      event loop (TCP+UDP on one port, timers, signals, async wake-ups)
#   libsqlite3-dev  embedded storage (WAL, one writer thread, group commit)
#   libjansson-dev  JSON input (config file; strict, duplicate keys rejected)
#   libcmocka-dev   unit tests
#   libsodium-dev   API passwords (argon2id), token hashes, random session ids
#   libcurl4-openssl-dev  webhook delivery (multi interface, HTTPS)
#   node-llhttp     HTTP request parser (Debian ships its C sources, built by meson.build)
#   meson ninja-build pkg-config  build
#   python3         integration tests (drive the real binary over sockets, read the real SQLite file)
#   clang libclang-rt-dev  fuzz targets (libFuzzer + sanitizers)
set -eu
pkgs="libuv1-dev libsqlite3-dev libcurl4-openssl-dev libjansson-dev libcmocka-dev libsodium-dev node-llhttp meson ninja-build pkg-config gcc python3 clang libclang-rt-dev"
[ "${1:-}" = "--with-valgrind" ] && pkgs="$pkgs valgrind"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2 || true
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
