#!/usr/bin/env bash
# fuzz.sh — run every Go fuzz target in the repository, one after another,
# for FUZZTIME each (default 10m), with -parallel FUZZPARALLEL (default 1).
#
#   scripts/fuzz.sh                     # every target
#   scripts/fuzz.sh ./detector ./eval   # the targets of these packages only
#   FUZZTIME=30s scripts/fuzz.sh
#
# Targets are found with `go test -list '^Fuzz'` per package, so new ones
# join without editing this file. A crasher is written by go test to the
# package's testdata/fuzz/<Target>/ and stays there as a regression seed
# (commit it with the fix); the run goes on with the next target and exits
# non-zero at the end if any target failed. A summary line per target gives
# its executions and new corpus entries (kept in the Go build cache).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
FUZZTIME="${FUZZTIME:-10m}"
FUZZPARALLEL="${FUZZPARALLEL:-1}"
GO="${GO:-go}"
TAGS="${FUZZTAGS:-matprofile}"
export EDGEDET_ORT_LIB="${EDGEDET_ORT_LIB:-$ROOT/build/lib/libonnxruntime.so.1}"
LOGDIR="${FUZZLOGS:-$ROOT/build/fuzz}"
mkdir -p "$LOGDIR"

pkgs=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then
  mapfile -t pkgs < <("$GO" list ./...)
fi

failed=()
summary=()
for pkg in "${pkgs[@]}"; do
  # Only packages with a Fuzz function in a test file are worth building.
  dir="$("$GO" list -f '{{.Dir}}' "$pkg")" || { failed+=("$pkg (go list)"); continue; }
  grep -qs '^func Fuzz' "$dir"/*_test.go || continue
  mapfile -t targets < <("$GO" test -tags "$TAGS" -list '^Fuzz' "$pkg" | grep '^Fuzz')
  for t in "${targets[@]}"; do
    log="$LOGDIR/$(basename "$dir")-$t.log"
    printf 'fuzz: %s %s for %s\n' "$pkg" "$t" "$FUZZTIME" >&2
    if "$GO" test -tags "$TAGS" -run '^$' -fuzz "^$t\$" -fuzztime "$FUZZTIME" -parallel "$FUZZPARALLEL" "$pkg" >"$log" 2>&1; then
      status=ok
    else
      status=FAILED
      failed+=("$pkg $t")
    fi
    last="$(grep -E '^fuzz: elapsed' "$log" | tail -1)"
    execs="$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")"
    newc="$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")"
    line="$(printf '%-40s %-24s %-6s execs=%s new=%s log=%s' "$pkg" "$t" "$status" "${execs:-?}" "${newc:-?}" "$log")"
    summary+=("$line")
    printf '%s\n' "$line" >&2
    if [ "$status" = FAILED ]; then
      grep -E 'Failing input written to|panic:|--- FAIL' "$log" >&2 || tail -20 "$log" >&2
    fi
  done
done

printf '\nfuzz summary (%s each):\n' "$FUZZTIME"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'failed: %s\n' "${failed[@]}" >&2
  exit 1
fi
