#!/usr/bin/env bash
# build-arm64.sh — cross-build edgedet for linux/arm64 Debian 12 (Raspberry Pi OS
# bookworm, any aarch64 bookworm board) on a Debian 12 amd64 machine.
#
#   scripts/build-arm64.sh [--sysroot DIR] [--out DIR] [--check]
#
#   --sysroot DIR  arm64 Debian bookworm sysroot holding OpenCV 4.6
#                  (default build/arm64-sysroot; created with debootstrap when absent)
#   --out DIR      output directory (default build/arm64): DIR/edgedet and
#                  DIR/lib/libonnxruntime.so.1, the layout platforms.ORTCandidates
#                  searches (lib/ next to the executable)
#   --check        after building, run the arm64 binary under qemu-aarch64
#                  (version + detect on dog.jpg) and compare its detections with
#                  the amd64 build/edgedet, for an FP32 model (EDGEDET_MODEL) and
#                  an INT8 QDQ model (EDGEDET_INT8_MODEL), whose activations must
#                  be fused into table lookups on both (NEON kernel on arm64),
#                  on each emulated CPU in EDGEDET_QEMU_CPUS (default
#                  "cortex-a72 cortex-a76": Raspberry Pi 4 and 5); first it runs
#                  packages detection's and eval's unit tests as arm64 code
#
# Why a sysroot: gocv links OpenCV through cgo, so the arm64 build needs arm64
# OpenCV headers and libraries. Debian multiarch cannot co-install the arm64 and
# amd64 libopencv-*-dev (installing one removes the other), so the arm64 copy
# lives in a debootstrap'd tree. onnxruntime_go needs nothing at link time: ORT
# is dlopen'ed at run time, from the arm64 libonnxruntime.so.1 shipped next to
# the binary.
#
# Idempotent: the apt step, the sysroot, its fix-ups and the ORT download are
# skipped when already done; the go build always runs (warm rebuilds are quick).
# Needs root (or sudo) for apt and debootstrap.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SYSROOT="$ROOT/build/arm64-sysroot"
OUT="$ROOT/build/arm64"
CHECK=0
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ORT_VERSION=1.24.1
ORT_SHA256=7954e8bdedb497f830c6a679e818d98399b7f4d81ade1126c3e0be74d28111ab
ORT_MEMBER="package/bin/napi-v6/linux/arm64/libonnxruntime.so.1"
TRIPLET=aarch64-linux-gnu
MODEL="${EDGEDET_MODEL:-$ROOT/../shared/models/yolox_nano_416.onnx}"
INT8_MODEL="${EDGEDET_INT8_MODEL:-$ROOT/../shared/models/yolov8n_int8qdq_320.onnx}"
IMAGE="${EDGEDET_IMAGE:-$ROOT/../shared/datasets/samples/dog.jpg}"
# The CPUs qemu emulates for --check: the cores of the boards edgedet targets,
# Raspberry Pi 4 (Cortex-A72: ARMv8.0-A with NEON, no dot product) and Pi 5
# (Cortex-A76: adds dot product and fp16), so ONNX Runtime picks the kernels it
# picks there. qemu's default CPU, max, also has SVE/SVE2/SME, which no Pi or
# Jetson has: ONNX Runtime 1.24.1 then runs its SVE kernels, which no target
# board runs and which qemu emulates ~15x slower (FP32 yolox_nano_416: 83 s
# instead of 4-5 s, same detections). EDGEDET_QEMU_CPUS=max tries them anyway.
QEMU_CPUS="${EDGEDET_QEMU_CPUS:-cortex-a72 cortex-a76}"

# The OpenCV modules gocv v0.32.0's main package (gocv.io/x/gocv, not contrib)
# needs. Its C++ files include <opencv2/opencv.hpp>, which includes the header
# of every module listed in opencv_modules.hpp (i.e. every module Debian built),
# guarded by HAVE_OPENCV_*: of those, ml and stitching headers must be present
# too even though gocv calls nothing in them; the others are the modules gocv
# wraps. Link only these (Debian's opencv4.pc, from libopencv-dev, lists all 55
# contrib modules and would pull in ~1 GB of -dev packages).
OPENCV_MODULES=(core imgproc imgcodecs videoio highgui objdetect features2d video dnn calib3d photo flann ml stitching)

log() { printf 'build-arm64: %s\n' "$*" >&2; }
die() { printf 'build-arm64: error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit "${1:-2}"; }
now() { date +%s; }
took() { log "$1 took $(( $(now) - $2 )) s"; }

while (($#)); do
  case "$1" in
    --sysroot) [ $# -ge 2 ] || die "--sysroot needs a directory"; SYSROOT="$2"; shift 2 ;;
    --sysroot=*) SYSROOT="${1#*=}"; shift ;;
    --out) [ $# -ge 2 ] || die "--out needs a directory"; OUT="$2"; shift 2 ;;
    --out=*) OUT="${1#*=}"; shift ;;
    --check) CHECK=1; shift ;;
    -h | --help) usage 0 ;;
    *) log "unknown argument: $1"; usage ;;
  esac
done
mkdir -p "$SYSROOT" "$OUT"
SYSROOT="$(cd "$SYSROOT" && pwd)"
OUT="$(cd "$OUT" && pwd)"
LIBDIR="$SYSROOT/usr/lib/$TRIPLET"

[ "$(uname -s)" = Linux ] || die "this recipe runs on Linux (Debian 12) only"
case "$(uname -m)" in
  x86_64 | amd64) ;;
  aarch64 | arm64) die "this machine is already arm64: build natively with 'make build' (setup.sh fetches the arm64 ONNX Runtime)" ;;
  *) die "unsupported build machine $(uname -m)" ;;
esac

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "need root (or sudo) for apt-get and debootstrap"
  SUDO=sudo
fi

# --- 1. host tools -------------------------------------------------------------
need=()
for p in gcc-aarch64-linux-gnu g++-aarch64-linux-gnu debootstrap pkg-config file; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if ! command -v qemu-aarch64 >/dev/null && ! command -v qemu-aarch64-static >/dev/null; then
  need+=(qemu-user-static)
fi
if ((${#need[@]})); then
  t=$(now)
  log "installing host packages: ${need[*]}"
  $SUDO apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || die "apt-get install ${need[*]} failed"
  took "apt-get install" "$t"
else
  log "host packages present"
fi
QEMU="$(command -v qemu-aarch64 || command -v qemu-aarch64-static)" || die "no qemu-aarch64 after installing qemu-user-static"
command -v go >/dev/null || die "Go is not installed (need Go >= 1.26)"

# --- 2. arm64 sysroot ----------------------------------------------------------
# --foreign: only download and unpack (no chroot, no binfmt_misc, no emulated
# maintainer scripts). What the skipped configure step would have done that the
# build needs is redone by hand in step 3.
DEV_PKGS=(libc6-dev)
for m in "${OPENCV_MODULES[@]}"; do DEV_PKGS+=("libopencv-$m-dev"); done
STAMP="$SYSROOT/.edgedet-sysroot-ok"
if [ -f "$STAMP" ]; then
  log "sysroot present: $SYSROOT"
else
  if [ -n "$(ls -A "$SYSROOT" 2>/dev/null)" ]; then
    [ -d "$SYSROOT/debootstrap" ] || [ -f "$SYSROOT/usr/include/opencv4/opencv2/core.hpp" ] \
      || die "$SYSROOT is not empty and is not a sysroot made by this script: remove it or pick another --sysroot"
    log "removing the unfinished sysroot in $SYSROOT"
    $SUDO rm -rf "$SYSROOT"
    mkdir -p "$SYSROOT"
  fi
  t=$(now)
  log "creating the $SUITE arm64 sysroot in $SYSROOT (~200 MB download, ~770 MB on disk)"
  inc="$(IFS=,; echo "${DEV_PKGS[*]}")"
  if ! $SUDO debootstrap --arch=arm64 --variant=minbase --foreign --include="$inc" \
      "$SUITE" "$SYSROOT" "$MIRROR" > "$OUT/debootstrap.log" 2>&1; then
    tail -20 "$OUT/debootstrap.log" >&2
    die "debootstrap failed (full log: $OUT/debootstrap.log)"
  fi
  took "debootstrap (download + base unpack)" "$t"
  # --foreign unpacks only the Essential/required packages; the rest (the
  # --include list and its dependencies) waits, downloaded, for a second stage
  # that would run arm64 dpkg under emulation. Unpacking them is all a sysroot
  # needs.
  t=$(now)
  debs=("$SYSROOT"/var/cache/apt/archives/*.deb)
  [ -f "${debs[0]}" ] || die "debootstrap left no packages in $SYSROOT/var/cache/apt/archives"
  for d in "${debs[@]}"; do
    $SUDO dpkg-deb -x "$d" "$SYSROOT" || die "cannot unpack $d"
  done
  $SUDO rm -f "${debs[@]}"
  # Documentation and translations: ~105 MB nobody links against.
  $SUDO rm -rf "$SYSROOT"/usr/share/{doc,man,info,locale}
  [ -f "$SYSROOT/usr/include/opencv4/opencv2/opencv_modules.hpp" ] \
    || die "OpenCV headers are missing in $SYSROOT after unpacking"
  took "unpacking ${#debs[@]} packages" "$t"
  SYSROOT_NEW=1
fi

# --- 3. sysroot fix-ups ----------------------------------------------------------
# (a) Absolute symlinks (e.g. libfoo.so -> /lib/aarch64-linux-gnu/libfoo.so.1)
#     would point into the host: rewrite them relative to the sysroot.
# (b) libblas.so.3 / liblapack.so.3 are update-alternatives links, which the
#     skipped configure step never made: link them to the installed implementation.
# (c) opencv4.pc: Debian ships it only in libopencv-dev (all contrib modules);
#     write one listing the modules above.
if [ ! -f "$STAMP" ] || [ "${SYSROOT_NEW:-0}" = 1 ]; then
  t=$(now)
  n=0
  while IFS= read -r -d '' l; do
    tgt="$(readlink "$l")"
    case "$tgt" in /*) ;; *) continue ;; esac
    [ -e "$SYSROOT$tgt" ] || [ -L "$SYSROOT$tgt" ] || continue
    $SUDO ln -sfn "$(realpath -m --relative-to="$(dirname "$l")" "$SYSROOT$tgt")" "$l"
    n=$((n + 1))
  done < <(find "$SYSROOT/usr" "$SYSROOT/etc" -type l -print0)
  log "rewrote $n absolute symlinks"
  for lib in libblas.so.3 liblapack.so.3; do
    [ -e "$LIBDIR/$lib" ] && continue
    impl="$(find "$LIBDIR" -mindepth 2 -maxdepth 2 -name "$lib" | sort | head -1)"
    [ -n "$impl" ] || die "no $lib implementation in $LIBDIR (libopencv-core406 should pull libblas3 or libopenblas)"
    $SUDO ln -sfn "${impl#"$LIBDIR/"}" "$LIBDIR/$lib"
    log "linked $lib -> ${impl#"$LIBDIR/"}"
  done
  ver="$(sed -n 's/^#define CV_VERSION_STRING *"\(.*\)"/\1/p' "$SYSROOT/usr/include/opencv4/opencv2/core/version.hpp" 2>/dev/null || true)"
  [ -n "$ver" ] || ver="$(ls "$LIBDIR"/libopencv_core.so.*.*.* | sed 's/.*\.so\.//' | head -1)"
  libs=""
  for m in "${OPENCV_MODULES[@]}"; do
    [ -e "$LIBDIR/libopencv_$m.so" ] || die "libopencv_$m.so missing in $LIBDIR"
    libs+=" -lopencv_$m"
  done
  $SUDO mkdir -p "$LIBDIR/pkgconfig"
  $SUDO tee "$LIBDIR/pkgconfig/opencv4.pc" >/dev/null <<EOF
# Written by edgedet scripts/build-arm64.sh: the OpenCV modules gocv v0.32.0 needs.
prefix=/usr
libdir=\${prefix}/lib/$TRIPLET
includedir=\${prefix}/include/opencv4

Name: OpenCV
Description: Open Source Computer Vision Library (edgedet subset)
Version: ${ver:-4.6.0}
Libs: -L\${libdir}$libs
Cflags: -I\${includedir}
EOF
  $SUDO touch "$STAMP"
  took "sysroot fix-ups" "$t"
fi
log "sysroot size: $(du -sh "$SYSROOT" 2>/dev/null | cut -f1)"

# --- 4. go build -----------------------------------------------------------------
export PKG_CONFIG_SYSROOT_DIR="$SYSROOT"
export PKG_CONFIG_LIBDIR="$LIBDIR/pkgconfig:$SYSROOT/usr/share/pkgconfig"
export PKG_CONFIG_PATH=""
pkg-config --exists opencv4 || die "pkg-config cannot find opencv4 in $PKG_CONFIG_LIBDIR"
log "pkg-config opencv4 (arm64): $(pkg-config --modversion opencv4)"
VERSION="${VERSION:-$(cd "$ROOT" && git describe --tags --always --dirty 2>/dev/null || echo dev)}"
t=$(now)
log "go build linux/arm64 -> $OUT/edgedet"
(
  cd "$ROOT"
  CGO_ENABLED=1 GOOS=linux GOARCH=arm64 \
    CC="$TRIPLET-gcc --sysroot=$SYSROOT" CXX="$TRIPLET-g++ --sysroot=$SYSROOT" \
    go build -ldflags "-X main.version=$VERSION" -o "$OUT/edgedet" ./cmd/edgedet
) || die "go build for linux/arm64 failed (see above)"
took "go build" "$t"

# --- 5. arm64 ONNX Runtime ---------------------------------------------------------
ORT_LIB="$OUT/lib/libonnxruntime.so.1"
sha_ok() { [ -f "$1" ] && echo "$ORT_SHA256  $1" | sha256sum -c --status; }
if sha_ok "$ORT_LIB"; then
  log "ONNX Runtime $ORT_VERSION (arm64) present"
else
  command -v npm >/dev/null || die "npm is needed to fetch onnxruntime-node@$ORT_VERSION (apt-get install npm)"
  t=$(now)
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  log "fetching onnxruntime-node@$ORT_VERSION from the npm registry"
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null) || die "npm pack onnxruntime-node@$ORT_VERSION failed"
  tar -xzf "$tmp/onnxruntime-node-$ORT_VERSION.tgz" -C "$tmp" "$ORT_MEMBER" || die "$ORT_MEMBER not in the npm package"
  sha_ok "$tmp/$ORT_MEMBER" \
    || die "sha256 mismatch for $ORT_MEMBER: want $ORT_SHA256, got $(sha256sum "$tmp/$ORT_MEMBER" | cut -d' ' -f1)"
  mkdir -p "$OUT/lib"
  install -m 0644 "$tmp/$ORT_MEMBER" "$ORT_LIB.tmp" && mv "$ORT_LIB.tmp" "$ORT_LIB"
  took "ONNX Runtime download" "$t"
fi

file "$OUT/edgedet"
log "binary: $(stat -c %s "$OUT/edgedet") bytes; lib: $(stat -c %s "$ORT_LIB") bytes"

# --- 6. optional check under qemu ------------------------------------------------------
((CHECK)) || exit 0
[ -f "$MODEL" ] || die "model not found: $MODEL (set EDGEDET_MODEL)"
[ -f "$INT8_MODEL" ] || die "INT8 model not found: $INT8_MODEL (set EDGEDET_INT8_MODEL)"
[ -f "$IMAGE" ] || die "image not found: $IMAGE (set EDGEDET_IMAGE)"
command -v jq >/dev/null || die "--check needs jq (apt-get install jq)"
read -r -a qemu_cpus <<<"$QEMU_CPUS"
((${#qemu_cpus[@]})) || die "EDGEDET_QEMU_CPUS is empty"
cpu_list="$("$QEMU" -cpu help 2>&1 || true)" # qemu 7.2 lists them, then exits 1
for cpu in "${qemu_cpus[@]}"; do
  grep -qx "  $cpu" <<<"$cpu_list" || die "$QEMU cannot emulate CPU $cpu (EDGEDET_QEMU_CPUS; see $QEMU -cpu help)"
done
QEMU_CPU="${qemu_cpus[0]}"
run_arm() { "$QEMU" -cpu "$QEMU_CPU" -L "$SYSROOT" "$OUT/edgedet" "$@"; }

log "qemu ($QEMU_CPU): edgedet version"
run_arm version --ort-lib "$ORT_LIB" || die "the arm64 binary does not start under $QEMU -L $SYSROOT"

AMD="$ROOT/build/edgedet"
if [ ! -x "$AMD" ]; then
  log "no amd64 $AMD: building it (make build does the same)"
  (cd "$ROOT" && go build -ldflags "-X main.version=$VERSION" -o "$AMD" ./cmd/edgedet) || die "amd64 go build failed"
fi
amd_lib="$ROOT/build/lib/libonnxruntime.so.1"
[ -f "$amd_lib" ] || die "no amd64 ONNX Runtime at $amd_lib: run scripts/setup.sh"

TOL="${EDGEDET_BOX_TOL:-3}"
show='.detections[] | "  \(.label)\t\(.score*1000|round/1000)\t\(.box|map(.*10|round/10)|@csv)"'
logs="$(mktemp -d)"
trap 'rm -rf "$logs" "${tmp:-}"' EXIT

# The float-heavy plain-Go packages (no cgo), as arm64 code: detection
# (decoders, NMS, geometry) and eval (COCO mAP). The Go compiler may fuse a
# float multiply with a later add or subtract into one instruction, and does
# so on arm64, not on amd64, so the same source can round differently there.
# Their unit tests once passed on amd64 while on arm64 six decoder tests
# failed (finite(v) as v-v == 0 on a fused product: no FP32 YOLOX detection
# at all) and eval's IoU thresholds moved off numpy's.
t=$(now)
for pkg in detection eval; do
  (cd "$ROOT" && CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go test -c -o "$logs/$pkg.test" "./$pkg") \
    || die "cannot build package $pkg's tests for linux/arm64"
  for cpu in "${qemu_cpus[@]}"; do
    (cd "$ROOT/$pkg" && "$QEMU" -cpu "$cpu" "$logs/$pkg.test" -test.count=1 >"$logs/$pkg-test.log" 2>&1) \
      || { tail -40 "$logs/$pkg-test.log" >&2; die "package $pkg's tests fail as arm64 code under qemu ($cpu)"; }
  done
done
took "packages detection and eval: tests as arm64 under qemu (${qemu_cpus[*]})" "$t"

# fused_path LOG: the kernel path of the "int8 activations fused" log line, or
# "" when the detector did not fuse.
fused_path() { sed -n 's/.*msg="int8 activations fused".* path=\([a-z0-9]*\).*/\1/p' "$1" | head -1; }

# check_model MODEL WANT_FUSED: detect on IMAGE with both builds and compare.
# WANT_FUSED=1: the INT8 activations must be fused on both (neon on arm64).
check_model() {
  local model="$1" want_fused="$2" name arm_json amd_json t verdict
  name="$(basename "$model")"
  t=$(now)
  arm_json="$(run_arm detect --model "$model" --ort-lib "$ORT_LIB" --log-level info --json "$IMAGE" 2>"$logs/arm.log")" \
    || { cat "$logs/arm.log" >&2; die "arm64 detect of $name failed under qemu"; }
  took "arm64 detect of $name under qemu ($QEMU_CPU)" "$t"
  amd_json="$("$AMD" detect --model "$model" --ort-lib "$amd_lib" --log-level info --json "$IMAGE" 2>"$logs/amd.log")" \
    || { cat "$logs/amd.log" >&2; die "amd64 detect of $name failed"; }
  echo "$name, amd64 ($AMD):"; jq -r "$show" <<<"$amd_json"
  echo "$name, arm64 (qemu-aarch64 -cpu $QEMU_CPU $OUT/edgedet):"; jq -r "$show" <<<"$arm_json"
  if ((want_fused)); then
    local arm_path amd_path
    arm_path="$(fused_path "$logs/arm.log")"
    amd_path="$(fused_path "$logs/amd.log")"
    echo "$name: int8 activations fused with kernel ${arm_path:-none} on arm64, ${amd_path:-none} on amd64"
    if [ "$arm_path" != neon ]; then
      grep -E 'level=(WARN|ERROR)|activations' "$logs/arm.log" >&2 || true
      echo "check: $name ($QEMU_CPU): arm64 did not fuse the INT8 activations with the NEON kernel"
      return 1
    fi
    [ -n "$amd_path" ] || { echo "check: $name: amd64 did not fuse the INT8 activations"; return 1; }
  fi
  verdict="$(jq -rn --argjson a "$amd_json" --argjson b "$arm_json" --argjson tol "$TOL" '
    ($a.detections | map(.label) | sort) as $la | ($b.detections | map(.label) | sort) as $lb
    | if $la != $lb then "labels differ: amd64 \($la) vs arm64 \($lb)"
      else
        [ range(0; $a.detections|length) as $i
          | ($a.detections | sort_by(.label, .box[0]))[$i] as $x
          | ($b.detections | sort_by(.label, .box[0]))[$i] as $y
          | range(0;4) | ($x.box[.] - $y.box[.]) | fabs ] | (max // 0) as $d
        | if $d <= $tol then "OK: same \($la|length) labels, max box difference \($d*100|round/100) px"
          else "boxes differ by up to \($d*100|round/100) px (tolerance \($tol))" end
      end')"
  echo "check: $name ($QEMU_CPU): $verdict"
  case "$verdict" in OK:*) return 0 ;; *) return 1 ;; esac
}

status=0
for QEMU_CPU in "${qemu_cpus[@]}"; do
  check_model "$MODEL" 0 || status=1
  check_model "$INT8_MODEL" 1 || status=1
done
exit "$status"
