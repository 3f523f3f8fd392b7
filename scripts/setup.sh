#!/usr/bin/env bash
# setup.sh — install everything edgedet needs to build, run and test, idempotently.
#
#   Debian packages: libopencv-dev, pkg-config (build), mosquitto + clients (tests),
#   chromium (headless browser for the live-view test in agent/web),
#   systemd when systemd-analyze is missing (platforms/systemd's tests verify and
#   rate the unit with it; installing the package does not make it PID 1)
#   ONNX Runtime 1.24.1 shared library for this CPU, from the npm package
#   onnxruntime-node@1.24.1, verified by sha256, into build/lib/
#   build/sample.avi: a clip made from ../shared/datasets/samples (for `make run`)
#
# Re-running is quick: each step checks first and does nothing when its result
# is already present. Needs root (or sudo) only for the apt step.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ORT_VERSION=1.24.1
LIB_DIR="$ROOT/build/lib"
LIB="$LIB_DIR/libonnxruntime.so.1"
SAMPLES="${EDGEDET_SAMPLES:-$ROOT/../shared/datasets/samples}"
CLIP="$ROOT/build/sample.avi"

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

case "$(uname -m)" in
  x86_64 | amd64)  ORT_ARCH=x64;   ORT_SHA256=53ef1ac028dd1b05554b8da28d9159eb3876f99868193d2aaa6e67f0243c23d4 ;;
  aarch64 | arm64) ORT_ARCH=arm64; ORT_SHA256=7954e8bdedb497f830c6a679e818d98399b7f4d81ade1126c3e0be74d28111ab ;;
  *) die "unsupported CPU architecture $(uname -m): ONNX Runtime ships x64 and arm64 Linux libraries only" ;;
esac

# --- Debian packages -------------------------------------------------------
PKGS=(libopencv-dev pkg-config mosquitto mosquitto-clients)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
command -v chromium >/dev/null || missing+=(chromium)
command -v systemd-analyze >/dev/null || missing+=(systemd)
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "need root to install: ${missing[*]}"
    SUDO=sudo
  fi
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi
pkg-config --exists opencv4 || die "pkg-config cannot find opencv4 after installing libopencv-dev"

# --- ONNX Runtime ------------------------------------------------------------
sha_ok() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --status; }
if sha_ok "$LIB" "$ORT_SHA256"; then
  log "ONNX Runtime $ORT_VERSION ($ORT_ARCH) present"
else
  command -v npm >/dev/null || die "npm is needed to fetch onnxruntime-node@$ORT_VERSION (apt-get install npm)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  log "fetching onnxruntime-node@$ORT_VERSION from the npm registry"
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
  member="package/bin/napi-v6/linux/$ORT_ARCH/libonnxruntime.so.1"
  tar -xzf "$tmp/onnxruntime-node-$ORT_VERSION.tgz" -C "$tmp" "$member" || die "$member not in the npm package"
  sha_ok "$tmp/$member" "$ORT_SHA256" || die "sha256 mismatch for $member: want $ORT_SHA256, got $(sha256sum "$tmp/$member" | cut -d' ' -f1)"
  mkdir -p "$LIB_DIR"
  install -m 0644 "$tmp/$member" "$LIB.tmp" && mv "$LIB.tmp" "$LIB"
  log "installed $LIB"
fi

# --- Go modules --------------------------------------------------------------
command -v go >/dev/null || die "Go is not installed (need Go >= 1.26)"
(cd "$ROOT" && go mod download)

# --- sample clip for `make run` ------------------------------------------------
if [ -s "$CLIP" ]; then
  log "sample clip present: $CLIP"
elif [ -d "$SAMPLES" ]; then
  log "writing sample clip $CLIP from $SAMPLES"
  (cd "$ROOT" && go run ./internal/testenv/mkclip -out "$CLIP" -w 640 -h 480 -fps 10 -each 20 "$SAMPLES"/*.jpg)
else
  log "no sample images at $SAMPLES: skipping build/sample.avi (point a camera at a real source in agent.toml)"
fi
log "done"
