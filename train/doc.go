// Package train is a small training engine in pure Go for the operators
// YOLO-family ONNX models use: float32 NCHW tensors, forward and backward
// passes of each operator, a graph executor built from an ONNX model, and
// optimisers. It is the foundation of teacher–student distillation.
package train
