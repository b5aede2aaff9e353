#!/usr/bin/env bash
# Build promtool (github.com/prometheus/prometheus/cmd/promtool, pinned by the
# go.mod beside this file) into a directory keyed by its version, and print the
# binary's path. Idempotent: when that binary exists nothing is built.
#
#   BIN_ROOT=$HOME/.cache/herald-test-bins hack/tools/promtool/build.sh
#   -> $BIN_ROOT/promtool-v0.316.0-nosd/promtool
#
# Built with -tags remove_all_sd: rule tests need no service discovery, and
# leaving out the cloud SDKs (AWS, Azure, GCE, ...) shortens a cold build.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN_ROOT="${BIN_ROOT:-${HERALD_TEST_BINS:-${XDG_CACHE_HOME:-$HOME/.cache}/herald-test-bins}}"
VERSION="$(cd "$HERE" && go list -m -f '{{.Version}}' github.com/prometheus/prometheus)"
DEST="$BIN_ROOT/promtool-$VERSION-nosd"
if [[ -x "$DEST/promtool" ]]; then echo "$DEST/promtool"; exit 0; fi
mkdir -p "$BIN_ROOT"
TMP="$DEST.tmp.$$"
rm -rf "$TMP"; mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
echo "building promtool $VERSION -> $DEST" >&2
(cd "$HERE" && go build -trimpath -tags remove_all_sd -ldflags "-s -w" -o "$TMP/promtool" github.com/prometheus/prometheus/cmd/promtool)
rm -rf "$DEST"; mv "$TMP" "$DEST"
echo "$DEST/promtool"
