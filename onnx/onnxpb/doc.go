// Package onnxpb holds the Go types generated from ONNX 1.12's onnx-ml.proto
// (IR version 8), edgedet's one copy of them.
//
// onnx-ml.pb.go is generated and committed; building needs no protoc.
// generate.sh pins the protoc and protoc-gen-go versions that reproduce it.
//
// The messages register under their ONNX full names ("onnx.ModelProto", ...)
// from the file path "onnx/onnxpb/onnx-ml.proto". A binary must not also
// link another Go module that registers ONNX types under those names: the
// protobuf registry panics at start-up on such a conflict.
//
// Unknown fields (from a newer ONNX than 1.12) are kept by Unmarshal and
// written back by Marshal, so a read-modify-write does not lose them.
package onnxpb

//go:generate ./generate.sh
