#!/usr/bin/env bash
# Regenerates onnx-ml.pb.go from onnx-ml.proto. The normal build never runs
# this: the generated file is committed. Run it (or `go generate
# ./onnx/onnxpb`) only after replacing onnx-ml.proto.
#
# Pinned tools (the output embeds both versions, so other versions would not
# reproduce the committed file byte for byte):
#   protoc         libprotoc 3.21.12   Debian 12: apt-get install -y protobuf-compiler
#   protoc-gen-go  v1.36.12            go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#                                      (same version as google.golang.org/protobuf in go.mod)
# Pinned input:
#   onnx-ml.proto  ONNX 1.12 (IR 8), copied unmodified from Debian 12's
#                  python3-onnx (dpkg -L python3-onnx | grep onnx-ml.proto)
#
# The proto is compiled from the repository root so that it registers as
# "onnx/onnxpb/onnx-ml.proto" (a path no other ONNX Go module uses). Its
# go_package is given with --go_opt=M... so the .proto stays unmodified. Its
# message full names stay "onnx.*" (wire format does not depend on them):
# the binary must not also link another Go module that registers "onnx.*"
# types, or protobuf's registry panics at start-up.
#
# Usage: ./generate.sh          regenerate onnx-ml.pb.go
#        ./generate.sh --check  exit 1 if the committed file is not what the pinned tools generate
set -euo pipefail

want_protoc="libprotoc 3.21.12"
want_gen="protoc-gen-go v1.36.12"
want_proto_sha256="35f16c52c19ba1da72240a45609129a3cf685dc44b76777e0055271e8bde1d3e"
go_pkg="github.com/edgedet/edgedet/onnx/onnxpb;onnxpb"
rel="onnx/onnxpb"

die() { echo "generate.sh: $*" >&2; exit 1; }

check=0
case "${1:-}" in
"") ;;
--check) check=1 ;;
*) die "unknown argument ${1} (usage: $0 [--check])" ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
[[ -f "$root/go.mod" && -f "$root/$rel/onnx-ml.proto" ]] || die "cannot find the repository root from $here"

protoc="${PROTOC:-protoc}"
command -v "$protoc" >/dev/null 2>&1 || die "protoc not found (want $want_protoc: apt-get install -y protobuf-compiler)"
got="$("$protoc" --version 2>&1)"
[[ "$got" == "$want_protoc" ]] || die "$protoc is \"$got\", want \"$want_protoc\""

gen="${PROTOC_GEN_GO:-}"
if [[ -z "$gen" ]]; then
	gen="$(command -v protoc-gen-go 2>/dev/null || true)"
fi
if [[ -z "$gen" ]] && command -v go >/dev/null 2>&1; then
	for d in "$(go env GOBIN)" "$(go env GOPATH)/bin"; do
		if [[ -n "$d" && -x "$d/protoc-gen-go" ]]; then
			gen="$d/protoc-gen-go"
			break
		fi
	done
fi
[[ -n "$gen" && -x "$gen" ]] || die "protoc-gen-go not found (want $want_gen: go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12)"
got="$("$gen" --version 2>&1)"
[[ "$got" == "$want_gen" ]] || die "$gen is \"$got\", want \"$want_gen\""

got="$(sha256sum "$root/$rel/onnx-ml.proto" | cut -d' ' -f1)"
[[ "$got" == "$want_proto_sha256" ]] ||
	die "onnx-ml.proto sha256 is $got, want $want_proto_sha256 (ONNX 1.12); update the pin if you replaced it on purpose"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
(cd "$root" && "$protoc" \
	--plugin=protoc-gen-go="$gen" \
	-I . \
	--go_out="$out" \
	--go_opt=paths=source_relative \
	--go_opt="M$rel/onnx-ml.proto=$go_pkg" \
	"$rel/onnx-ml.proto")
generated="$out/$rel/onnx-ml.pb.go"
[[ -f "$generated" ]] || die "protoc produced no $rel/onnx-ml.pb.go"

if ((check)); then
	if ! cmp -s "$generated" "$here/onnx-ml.pb.go"; then
		diff -u "$here/onnx-ml.pb.go" "$generated" | head -40 >&2 || true
		die "$rel/onnx-ml.pb.go is stale or edited: run $rel/generate.sh"
	fi
	echo "$rel/onnx-ml.pb.go is up to date"
	exit 0
fi
cp "$generated" "$here/onnx-ml.pb.go"
echo "wrote $rel/onnx-ml.pb.go"
