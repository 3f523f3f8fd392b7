#!/usr/bin/env bash
# Install edgedet as a systemd service.
#
#   sudo platforms/systemd/install.sh [--prefix /usr] [--config-dir /etc/edgedet]
#                                     [--platform auto|generic|jetson|nvidia-gpu|rpi-csi]
#
# Installs, from the repo's build/ layout (run `make build` first):
#   build/edgedet                   -> $prefix/bin/edgedet
#   build/lib/libonnxruntime.so.1   -> $prefix/lib/edgedet/libonnxruntime.so.1
#   agent.toml                      -> $config_dir/agent.toml   (only if absent;
#                                      otherwise the sample goes to agent.toml.dist)
#   platforms/systemd/edgedet.service -> /etc/systemd/system/edgedet.service
#   platforms/systemd/dropins/P.conf  -> /etc/systemd/system/edgedet.service.d/platform.conf
#                                      (what board P needs relaxed in the hardened
#                                      unit; none for generic)
# and creates the `edgedet` system user (member of `video`), then runs
# `systemctl daemon-reload`. Safe to run again (upgrades binary, library, unit;
# never overwrites an existing agent.toml; replaces platform.conf, never a
# drop-in of yours such as override.conf).
#
# --platform (default auto: detected on this machine):
#   generic     CPU only, V4L2/USB cameras, RTSP, files: the unit as is
#   jetson      NVIDIA Jetson: CUDA/TensorRT, GPU device nodes, Argus CSI camera
#   nvidia-gpu  a PC with an NVIDIA GPU: CUDA/TensorRT and /dev/nvidia*
#   rpi-csi     Raspberry Pi CSI camera through libcamera
#
# Environment:
#   DESTDIR=/staging              stage into a tree (implies no system changes)
#   EDGEDET_INSTALL_NO_SYSTEM=1   skip user creation and systemctl
#   EDGEDET_SRC_DIR=/path         source tree holding build/ and agent.toml
#                                 (default: the repo containing this script)
#   EDGEDET_DETECT_ROOT=/path     look for the board's files under this root
#                                 (--platform auto; for tests)
set -euo pipefail

prog=$(basename "$0")
die() { echo "$prog: error: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

prefix=/usr
config_dir=/etc/edgedet
platform=auto
while [ $# -gt 0 ]; do
	case "$1" in
	--prefix) [ $# -ge 2 ] || die "--prefix needs a value"; prefix=$2; shift 2 ;;
	--prefix=*) prefix=${1#*=}; shift ;;
	--config-dir) [ $# -ge 2 ] || die "--config-dir needs a value"; config_dir=$2; shift 2 ;;
	--config-dir=*) config_dir=${1#*=}; shift ;;
	--platform) [ $# -ge 2 ] || die "--platform needs a value"; platform=$2; shift 2 ;;
	--platform=*) platform=${1#*=}; shift ;;
	-h|--help) usage; exit 0 ;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
done
case "$prefix" in /*) ;; *) die "--prefix must be absolute: $prefix" ;; esac
case "$config_dir" in /*) ;; *) die "--config-dir must be absolute: $config_dir" ;; esac
case "$platform" in auto|generic|jetson|nvidia-gpu|rpi-csi) ;;
	*) die "unknown --platform: $platform (auto, generic, jetson, nvidia-gpu or rpi-csi)" ;;
esac
prefix=${prefix%/}; [ -n "$prefix" ] || prefix=/
config_dir=${config_dir%/}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${EDGEDET_SRC_DIR:-$(cd "$here/../.." && pwd)}
destdir=${DESTDIR:-}
destdir=${destdir%/}
no_system=${EDGEDET_INSTALL_NO_SYSTEM:-}
[ -n "$destdir" ] && no_system=1

bin_src=$src/build/edgedet
lib_src=$src/build/lib/libonnxruntime.so.1
conf_src=$src/agent.toml
unit_src=$here/edgedet.service

[ -f "$bin_src" ] || die "$bin_src not found: run make build first"
[ -x "$bin_src" ] || die "$bin_src is not executable: run make build first"
[ -f "$lib_src" ] || die "$lib_src not found: run make build first (scripts/setup.sh fetches ONNX Runtime)"
[ -f "$conf_src" ] || die "$conf_src not found (EDGEDET_SRC_DIR=$src)"
[ -f "$unit_src" ] || die "$unit_src not found"

# detect_platform: the board this runs on, from files only it has.
detect_platform() {
	local r=${EDGEDET_DETECT_ROOT:-} model=""
	if [ -e "$r/etc/nv_tegra_release" ] || grep -qs 'nvidia,tegra' "$r/proc/device-tree/compatible"; then
		echo jetson
		return
	fi
	[ -r "$r/proc/device-tree/model" ] && model=$(tr -d '\0' <"$r/proc/device-tree/model")
	case "$model" in
	"Raspberry Pi"*) echo rpi-csi ;;
	*) if [ -e "$r/dev/nvidiactl" ]; then echo nvidia-gpu; else echo generic; fi ;;
	esac
}
if [ "$platform" = auto ]; then
	platform=$(detect_platform)
	echo "platform: $platform (detected; --platform to choose)"
fi
dropin_src=
if [ "$platform" != generic ]; then
	dropin_src=$here/dropins/$platform.conf
	[ -f "$dropin_src" ] || die "$dropin_src not found"
fi

if [ -z "$no_system" ] && [ "$(id -u)" -ne 0 ]; then
	die "must run as root (sudo $0), or stage with DESTDIR=..."
fi

bin_dst=${prefix%/}/bin/edgedet
lib_dst=${prefix%/}/lib/edgedet/libonnxruntime.so.1
conf_dst=$config_dir/agent.toml
unit_dst=/etc/systemd/system/edgedet.service
dropin_dst=/etc/systemd/system/edgedet.service.d/platform.conf
spool_dir=/var/lib/edgedet/spool
state_dir=/var/lib/edgedet/state

tmpdir=$(mktemp -d)
trap 'rm -rf "$tmpdir"' EXIT

# put SRC MODE DST: atomic replace (write a temp file next to DST, rename),
# so a running edgedet never sees a half-written binary or library.
put() {
	local s=$1 mode=$2 d=$destdir$3
	install -d -m 0755 "$(dirname "$d")"
	install -m "$mode" "$s" "$d.edgedet-new"
	mv -f "$d.edgedet-new" "$d"
	echo "installed $d"
}

# 1. The system user (in the video group for /dev/video*).
if [ -z "$no_system" ]; then
	if ! getent passwd edgedet >/dev/null; then
		if command -v adduser >/dev/null && adduser --help 2>&1 | grep -q -- --system; then
			adduser --system --group --no-create-home --home /var/lib/edgedet edgedet
		else
			useradd --system --user-group --no-create-home --home-dir /var/lib/edgedet \
				--shell /usr/sbin/nologin edgedet
		fi
		echo "created system user edgedet"
	fi
	if getent group video >/dev/null; then
		usermod -a -G video edgedet
	fi
fi

# 2. Binary and ONNX Runtime library.
put "$bin_src" 0755 "$bin_dst"
put "$lib_src" 0644 "$lib_dst"

# 3. Config: the sample with deployment paths; never overwrite the user's.
sample=$tmpdir/agent.toml
sed -e '/^\[spool\]/,/^\[/ s#^dir[[:space:]]*=[[:space:]]*"[^"]*"#dir = "'"$spool_dir"'"#' \
	-e '1,/^\[/ s#^state_dir[[:space:]]*=[[:space:]]*"[^"]*"#state_dir = "'"$state_dir"'"#' \
	-e 's#^\(\# *onnxruntime_library = \)"[^"]*"#\1"'"$lib_dst"'"#' \
	"$conf_src" >"$sample"
install -d -m 0755 "$destdir$config_dir"
if [ -e "$destdir$conf_dst" ]; then
	install -m 0644 "$sample" "$destdir$conf_dst.dist"
	echo "kept existing $destdir$conf_dst; the new sample config is at $destdir$conf_dst.dist"
else
	install -m 0644 "$sample" "$destdir$conf_dst"
	echo "installed $destdir$conf_dst (spool: $spool_dir, state: $state_dir); edit [detector] model and [[camera]] for this board"
fi

# 4. The unit, with this install's paths.
unit=$tmpdir/edgedet.service
sed -e "s#^ExecStart=/usr/bin/edgedet run -c /etc/edgedet/agent.toml\$#ExecStart=$bin_dst run -c $conf_dst#" \
	-e "s#^Environment=EDGEDET_ORT_LIB=.*#Environment=EDGEDET_ORT_LIB=$lib_dst#" \
	"$unit_src" >"$unit"
grep -qx "ExecStart=$bin_dst run -c $conf_dst" "$unit" || die "could not set ExecStart in $unit_src"
put "$unit" 0644 "$unit_dst"

# 5. The board's drop-in (only ours: platform.conf; override.conf is the user's).
if [ -n "$dropin_src" ]; then
	put "$dropin_src" 0644 "$dropin_dst"
elif [ -e "$destdir$dropin_dst" ]; then
	rm -f "$destdir$dropin_dst"
	rmdir "$(dirname "$destdir$dropin_dst")" 2>/dev/null || true
	echo "removed $destdir$dropin_dst (platform generic)"
fi

# 6. Tell systemd.
if [ -z "$no_system" ]; then
	if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
		systemctl daemon-reload
		echo "ran systemctl daemon-reload"
	else
		echo "systemd is not running here: skipped systemctl daemon-reload"
	fi
fi

echo
echo "next: systemctl enable --now edgedet"
echo "      journalctl -u edgedet -f"
