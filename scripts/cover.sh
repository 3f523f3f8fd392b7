#!/usr/bin/env bash
# cover.sh — statement coverage of the whole suite, counting the edgedet
# binary that the end-to-end tests in cmd/edgedet build and start.
#
#   scripts/cover.sh [package patterns]   (default ./...)
#
# The unit tests write raw counters to build/cover/unit (-test.gocoverdir);
# the end-to-end tests see EDGEDET_E2E_COVERDIR, build the binary with
# -cover and run it with GOCOVERDIR=build/cover/e2e. Both are instrumented
# for every package of the module (-coverpkg), so a package is credited for
# whatever test exercises it. The two sets are merged with go tool covdata:
# per-package figures on stdout, the merged profile in build/cover/cover.out
# (go tool cover -html=build/cover/cover.out to browse it). Generated code
# (onnx/onnxpb) is left out of the figures.
set -uo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
out=$PWD/build/cover
rm -rf "$out"
mkdir -p "$out/unit" "$out/e2e"

pkgs=$($GO list ./... | grep -v '/onnx/onnxpb$' | paste -sd, -)
patterns=("$@")
[ ${#patterns[@]} -gt 0 ] || patterns=(./...)

EDGEDET_E2E_COVERDIR=$out/e2e $GO test -tags matprofile -count=1 -timeout 30m \
	-coverpkg=github.com/edgedet/edgedet/... "${patterns[@]}" -args -test.gocoverdir="$out/unit"
status=$?

dirs=$out/unit
# The e2e directory stays empty when no end-to-end test ran.
[ -n "$(ls -A "$out/e2e")" ] && dirs=$dirs,$out/e2e

echo
# (go test's own "coverage:" lines above are per test binary, over every
# package it links; these are the figures that count.) Targets: 80 % for
# agent and cmd/edgedet, 85 % elsewhere; a package below its target is
# marked.
echo "coverage per package (unit tests + the end-to-end binary):"
$GO tool covdata percent -i="$dirs" -pkg="$pkgs" | sed 's/^\s*//' | sort |
	awk '{ pct = $3; sub(/%/, "", pct); target = ($1 ~ /\/(agent|cmd\/edgedet)$/) ? 80 : 85
	       printf "%-52s %6s%s\n", $1, $3, (pct + 0 < target) ? "  below the " target " % target" : "" }'
$GO tool covdata textfmt -i="$dirs" -pkg="$pkgs" -o "$out/cover.out"
$GO tool cover -func="$out/cover.out" | tail -1
[ $status -eq 0 ] || echo "cover.sh: some tests failed (exit $status); the figures are incomplete" >&2
exit $status
