# edgedet — `make run` runs the agent with agent.toml, `make test` runs the
# tests (fuzz targets on their seed corpora), `make fuzz` fuzzes every target
# for FUZZTIME each. All run scripts/setup.sh first (idempotent, quick once done).
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
export EDGEDET_ORT_LIB := $(CURDIR)/build/lib/libonnxruntime.so.1

.PHONY: setup build run test nocgo cover vet bench fuzz mutate clean

setup:
	@scripts/setup.sh

build: setup
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o build/edgedet ./cmd/edgedet

run: build
	./build/edgedet run -c agent.toml

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy (go mod tidy -diff shows the change): run go mod tidy"; exit 1; }
	$(GO) vet ./...

# matprofile makes gocv count live Mats, so tests can prove none leak.
test: setup vet nocgo
	$(GO) test -tags matprofile -count=1 -timeout 15m ./...

# The plain-Go parts (the detection core: types, decoders, NMS, geometry;
# tracking, zones, event reports, topics and messages; the ONNX graph
# toolkit) must build and pass their tests without cgo, i.e. without OpenCV
# or ONNX Runtime (onnx's tests compare with ONNX Runtime, so it is only
# built here).
NOCGO_PKGS := ./detection/... ./agent/track/... ./agent/zone/... ./agent/report/... ./agent/topic/... ./agent/publish/...
nocgo:
	CGO_ENABLED=0 $(GO) build $(NOCGO_PKGS) ./onnx ./onnx/onnxpb ./onnx/onnxtest/graphgen ./train ./distill
	CGO_ENABLED=0 $(GO) test -count=1 $(NOCGO_PKGS)

# Every FuzzXxx target of every package, one at a time, FUZZTIME each;
# crashers land in <package>/testdata/fuzz/ (commit them with the fix).
FUZZTIME ?= 10m
fuzz: setup
	FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

# cover runs the suite with coverage, counting the binary the end-to-end
# tests start, and prints per-package figures (scripts/cover.sh); slower
# than test, which stays uninstrumented.
cover: setup
	scripts/cover.sh

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./detection ./detector ./agent
	./build/edgedet bench --model ../shared/models/yolox_nano_416.onnx --threads 1 ../shared/datasets/samples/*.jpg
	./build/edgedet bench --model ../shared/models/yolox_nano_416.onnx --threads 2 ../shared/datasets/samples/*.jpg

# Mutation testing (scripts/mutate): each mutant is applied through
# go test -overlay, never to the tree. PKG=motion runs one package; SAMPLE=n
# tests a fixed-seed sample of n mutants per package (SEED=1). onnx, quant and prune
# are always sampled: their suites take ~40 s per mutant. Survivors judged
# equivalent are listed, with a reason each, in scripts/mutate/equivalent.txt.
# Each mutant runs only the top-level tests whose coverage reaches it (one
# per-test coverage pass per package first); SELECT=false runs whole suites.
MUTATE_FAST := agent/zone agent/track motion agent/spool eval agent/outbox detection detector
MUTATE_SLOW := onnx quant prune
SAMPLE ?= 0
SLOW_SAMPLE ?= 30
SEED ?= 1
SELECT ?= true
MUTATE_FLAGS = -tags matprofile -seed $(SEED) -timeout 4m -select=$(SELECT)
# The real-model tests take minutes each on a loaded machine; the slow
# packages are mutated against their unit tests only.
MUTATE_SLOW_FLAGS = -skip=YOLOX|SharedModels|Nano
mutate: setup
	@$(GO) build -o build/mutate ./scripts/mutate
	@set -e; for p in $(or $(PKG),$(MUTATE_FAST) $(MUTATE_SLOW)); do \
	  n=$(SAMPLE); f=; case " $(MUTATE_SLOW) " in *" $$p "*) [ "$$n" -gt 0 ] || n=$(SLOW_SAMPLE); f="$(MUTATE_SLOW_FLAGS)";; esac; \
	  build/mutate $(MUTATE_FLAGS) $$f -sample $$n $$p; \
	done

clean:
	rm -rf build
