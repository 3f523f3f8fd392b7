#!/usr/bin/env bash
# Install edgedet as a systemd service.
#
#   sudo platforms/systemd/install.sh [--model PATH] [--camera SOURCE]
#                                     [--embedded-broker[=PORT] | --broker URL]
#                                     [--homeassistant] [--http ADDR]
#                                     [--prefix /usr] [--config-dir /etc/edgedet]
#                                     [--platform auto|generic|jetson|nvidia-gpu|rpi-csi]
#
# Installs, from the repo's build/ layout (run `make build` first):
#   build/edgedet                   -> $prefix/bin/edgedet
#   build/lib/libonnxruntime.so.1   -> $prefix/lib/edgedet/libonnxruntime.so.1
#   --model PATH (with its <model>.toml sidecar and the labels file that
#   names, if any)                  -> $prefix/share/edgedet/models/
#   a production config             -> $config_dir/agent.toml   (only if absent;
#                                      otherwise it goes to agent.toml.dist)
#   platforms/systemd/edgedet.service -> /etc/systemd/system/edgedet.service
#   platforms/systemd/dropins/P.conf  -> /etc/systemd/system/edgedet.service.d/platform.conf
#                                      (what board P needs relaxed in the hardened
#                                      unit; none for generic)
# and creates the `edgedet` system user (member of `video`), then runs
# `systemctl daemon-reload`. Safe to run again (upgrades binary, library, unit;
# never overwrites an existing agent.toml; replaces platform.conf, never a
# drop-in of yours such as override.conf).
#
# The config it writes has absolute paths only: the model in
# $prefix/share/edgedet/models (--model's; without it model.onnx, which you put
# there), the camera /dev/video0 (--camera: another device, "csi", a URL, a
# file), the spool and state in /var/lib/edgedet, and an MQTT broker on
# 127.0.0.1:1883 (a local Mosquitto; --broker URL: another, e.g. Home
# Assistant's tcp://homeassistant.local:1883). --embedded-broker runs edgedet's own
# broker instead, on PORT or the first free port from 1883 up, its retained
# messages kept in the state directory. --homeassistant turns on Home
# Assistant MQTT discovery ([homeassistant]). --http is the /healthz and /metrics
# address (default 127.0.0.1:9464; "" = off). Then
# `edgedet run --check -c $config_dir/agent.toml` proves it runnable.
#
# --platform (default auto: detected on this machine):
#   generic     CPU only, V4L2/USB cameras, RTSP, files: the unit as is
#   jetson      NVIDIA Jetson: CUDA/TensorRT, GPU device nodes, Argus CSI camera
#   nvidia-gpu  a PC with an NVIDIA GPU: CUDA/TensorRT and /dev/nvidia*
#   rpi-csi     Raspberry Pi CSI camera through libcamera
#
# Environment:
#   DESTDIR=/staging              stage into a tree (implies no system changes);
#                                 check it with: edgedet run --check --root /staging
#                                 -c /staging/etc/edgedet/agent.toml
#   EDGEDET_INSTALL_NO_SYSTEM=1   skip user creation and systemctl
#   EDGEDET_SRC_DIR=/path         source tree holding build/
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
model=
camera=/dev/video0
embedded=
embedded_port=
http_listen=127.0.0.1:9464
broker=tcp://127.0.0.1:1883
broker_set=
homeassistant=false
while [ $# -gt 0 ]; do
	case "$1" in
	--prefix) [ $# -ge 2 ] || die "--prefix needs a value"; prefix=$2; shift 2 ;;
	--prefix=*) prefix=${1#*=}; shift ;;
	--config-dir) [ $# -ge 2 ] || die "--config-dir needs a value"; config_dir=$2; shift 2 ;;
	--config-dir=*) config_dir=${1#*=}; shift ;;
	--platform) [ $# -ge 2 ] || die "--platform needs a value"; platform=$2; shift 2 ;;
	--platform=*) platform=${1#*=}; shift ;;
	--model) [ $# -ge 2 ] || die "--model needs a value"; model=$2; shift 2 ;;
	--model=*) model=${1#*=}; shift ;;
	--camera) [ $# -ge 2 ] || die "--camera needs a value"; camera=$2; shift 2 ;;
	--camera=*) camera=${1#*=}; shift ;;
	--embedded-broker) embedded=1; shift ;;
	--embedded-broker=*) embedded=1; embedded_port=${1#*=}; shift ;;
	--broker) [ $# -ge 2 ] || die "--broker needs a value"; broker=$2; broker_set=1; shift 2 ;;
	--broker=*) broker=${1#*=}; broker_set=1; shift ;;
	--homeassistant) homeassistant=true; shift ;;
	--http) [ $# -ge 2 ] || die "--http needs a value"; http_listen=$2; shift 2 ;;
	--http=*) http_listen=${1#*=}; shift ;;
	-h|--help) usage; exit 0 ;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
done
case "$prefix" in /*) ;; *) die "--prefix must be absolute: $prefix" ;; esac
case "$config_dir" in /*) ;; *) die "--config-dir must be absolute: $config_dir" ;; esac
case "$platform" in auto|generic|jetson|nvidia-gpu|rpi-csi) ;;
	*) die "unknown --platform: $platform (auto, generic, jetson, nvidia-gpu or rpi-csi)" ;;
esac
if [ -n "$embedded_port" ]; then
	case "$embedded_port" in *[!0-9]*) die "--embedded-broker=$embedded_port: not a port number" ;; esac
	{ [ "$embedded_port" -ge 1 ] && [ "$embedded_port" -le 65535 ]; } ||
		die "--embedded-broker=$embedded_port: not in 1..65535"
fi
case "$http_listen" in "" | *:*) ;; *) die "--http must be host:port, or empty for none: $http_listen" ;; esac
[ -z "$embedded" ] || [ -z "$broker_set" ] || die "--broker and --embedded-broker exclude each other"
case "$broker" in *'"'* | *'\'* | *' '*) die "--broker must not contain quotes, backslashes or spaces: $broker" ;;
	*://*) ;; *) die "--broker must be a URL such as tcp://host:1883: $broker" ;;
esac
[ -n "$camera" ] || die "--camera must not be empty"
case "$camera$http_listen" in *'"'* | *'\'*) die "--camera and --http must not contain quotes or backslashes" ;; esac
case "$camera" in /dev/*) ;; /*) ;; [0-9]*) ;; csi) ;; *://*) ;; *' ! '*) ;;
	*) die "--camera must be absolute (a device, a file), csi, a URL or a GStreamer pipeline: $camera" ;;
esac
if [ -n "$model" ]; then
	[ -f "$model" ] || die "--model $model: no such file"
	case "$model" in *.onnx) ;; *) die "--model $model: not an .onnx file" ;; esac
fi
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
unit_src=$here/edgedet.service

[ -f "$bin_src" ] || die "$bin_src not found: run make build first"
[ -x "$bin_src" ] || die "$bin_src is not executable: run make build first"
[ -f "$lib_src" ] || die "$lib_src not found: run make build first (scripts/setup.sh fetches ONNX Runtime)"
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
models_dir=${prefix%/}/share/edgedet/models
if [ -n "$model" ]; then
	model_dst=$models_dir/$(basename "$model")
else
	model_dst=$models_dir/model.onnx
fi

# port_in_use PORT: something accepts connections on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -n "$embedded" ] && [ -z "$embedded_port" ]; then
	for p in $(seq 1883 1983); do
		if ! port_in_use "$p"; then
			embedded_port=$p
			break
		fi
	done
	[ -n "$embedded_port" ] || die "--embedded-broker: no free port in 1883..1983; name one: --embedded-broker=PORT"
	[ "$embedded_port" = 1883 ] || echo "port 1883 is in use (a local broker?): the embedded broker will listen on $embedded_port"
fi

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

# 3. The model (with its sidecar description and the labels file that names).
install -d -m 0755 "$destdir$models_dir"
if [ -n "$model" ]; then
	put "$model" 0644 "$model_dst"
	sidecar=${model%.onnx}.toml
	if [ -f "$sidecar" ]; then
		put "$sidecar" 0644 "${model_dst%.onnx}.toml"
		labels=$(sed -n 's/^[[:space:]]*labels_file[[:space:]]*=[[:space:]]*"\([^"/]*\)".*/\1/p' "$sidecar" | head -n 1)
		if [ -n "$labels" ]; then
			[ -f "$(dirname "$model")/$labels" ] || die "$sidecar names labels_file \"$labels\", which is not beside it"
			put "$(dirname "$model")/$labels" 0644 "$models_dir/$labels"
		fi
	fi
fi

# 4. The config, written for this machine; never overwrite the user's.
if [ -n "$embedded" ]; then
	mqtt_section="[mqtt]
# broker: unset, the embedded broker's listener.
topic_prefix = \"edgedet\"
# device = \"porch\"              # the topic level naming this box; default: the host name

[mqtt.embedded]
# edgedet's own broker, for a box without one. Its retained messages
# (availability, counts, snapshots, control state) are kept in
# <state_dir>/broker/retained and survive a restart.
enabled = true
listen = \"127.0.0.1:$embedded_port\""
else
	mqtt_section="[mqtt]
# A broker on this machine (apt install mosquitto), or your broker's URL:
# tcp://host:1883, ssl://host:8883 (then [mqtt.tls]).
broker = \"$broker\"
topic_prefix = \"edgedet\"
# device = \"porch\"              # the topic level naming this box; default: the host name
# username = \"edgedet\"
# password_file = \"$config_dir/mqtt-password\"

[mqtt.embedded]
# No broker here? install.sh --embedded-broker runs edgedet's own instead.
enabled = false"
fi
sample=$tmpdir/agent.toml
cat >"$sample" <<EOF
# edgedet agent configuration, written by install.sh for this machine; every
# path is absolute. \`edgedet run --check -c $conf_dst\` proves it runnable
# (the model loads, the camera exists, the ports are free). The repository's
# agent.toml and README describe every key.

# Objects open at an unclean stop (ended at the next start) and the embedded
# broker's retained messages.
state_dir = "$state_dir"

[log]
level = "info"          # debug, info, warn, error
format = "text"         # text or json
stats_interval = "60s"  # per-camera counters in the journal; "0s" = never

[detector]
# A YOLO ONNX model: YOLOX, YOLOv5/v7/v8/v9/v11, YOLOv10/YOLO26; FP32 or INT8.
model = "$model_dst"
onnxruntime_library = "$lib_dst"
threads = 0             # ONNX Runtime threads; 0 = one per physical core
score_threshold = 0.3
# allow_labels = ["person", "car", "dog"]

[events]
# Tracked objects on <prefix>/<device>/<camera>/events; counts per label.
enabled = true

[snapshots]
enabled = true

[spool]
# Messages the broker cannot take now wait here, across restarts.
dir = "$spool_dir"

$mqtt_section

[http]
# /healthz and Prometheus /metrics; "" = off.
listen = "$http_listen"
metrics = true

[homeassistant]
# MQTT discovery: Home Assistant shows this box as a device with detection
# switch, threshold, and per-label counts, occupancy and snapshots.
enabled = $homeassistant
labels = ["person"]     # the labels that get entities

[[camera]]
name = "camera0"
# /dev/videoN (USB, V4L2), "csi" (the board's CSI camera), rtsp://..., a file.
source = "$camera"
detect_fps = 5          # run the detector on at most 5 frames a second
EOF
install -d -m 0755 "$destdir$config_dir"
if [ -e "$destdir$conf_dst" ]; then
	install -m 0644 "$sample" "$destdir$conf_dst.dist"
	echo "kept existing $destdir$conf_dst; the new config is at $destdir$conf_dst.dist"
	if [ -n "$model" ] && ! grep -qx "model = \"$model_dst\"" "$destdir$conf_dst"; then
		echo "to use the new model, set [detector] model = \"$model_dst\" in $conf_dst"
	fi
else
	install -m 0644 "$sample" "$destdir$conf_dst"
	echo "installed $destdir$conf_dst (model $model_dst, camera $camera, spool $spool_dir, state $state_dir)"
fi
case "$platform:$camera" in
jetson:/dev/video*|rpi-csi:/dev/video*)
	echo "a CSI camera? set [[camera]] source = \"csi\" in $conf_dst (or install with --camera csi)" ;;
esac
if [ ! -e "$destdir$model_dst" ]; then
	echo
	echo "no model installed yet: put a YOLO ONNX model at $model_dst, e.g."
	echo "  sudo install -m 0644 yolox_nano_416.onnx $model_dst"
	echo "or run install.sh again with --model PATH"
fi

# 5. The unit, with this install's paths.
unit=$tmpdir/edgedet.service
sed -e "s#^ExecStart=/usr/bin/edgedet run -c /etc/edgedet/agent.toml\$#ExecStart=$bin_dst run -c $conf_dst#" \
	-e "s#^Environment=EDGEDET_ORT_LIB=.*#Environment=EDGEDET_ORT_LIB=$lib_dst#" \
	"$unit_src" >"$unit"
grep -qx "ExecStart=$bin_dst run -c $conf_dst" "$unit" || die "could not set ExecStart in $unit_src"
put "$unit" 0644 "$unit_dst"

# 6. The board's drop-in (only ours: platform.conf; override.conf is the user's).
if [ -n "$dropin_src" ]; then
	put "$dropin_src" 0644 "$dropin_dst"
elif [ -e "$destdir$dropin_dst" ]; then
	rm -f "$destdir$dropin_dst"
	rmdir "$(dirname "$destdir$dropin_dst")" 2>/dev/null || true
	echo "removed $destdir$dropin_dst (platform generic)"
fi

# 7. Tell systemd.
if [ -z "$no_system" ]; then
	if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
		systemctl daemon-reload
		echo "ran systemctl daemon-reload"
	else
		echo "systemd is not running here: skipped systemctl daemon-reload"
	fi
fi

echo
if [ -n "$destdir" ]; then
	echo "check: $destdir$bin_dst run --check --root $destdir -c $destdir$conf_dst"
else
	echo "check: $bin_dst run --check -c $conf_dst"
fi
echo "next:  systemctl enable --now edgedet"
echo "       journalctl -u edgedet -f"
