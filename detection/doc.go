// Package detection is edgedet's plain-Go detection core: everything about
// YOLO object detection that needs neither OpenCV nor ONNX Runtime, so it
// builds and tests with CGO_ENABLED=0.
//
// It owns the detection types (Box, Detection), the model description
// (Spec: format, input size, preprocessing conventions, labels, read from
// the config, a sidecar <model>.toml or the ONNX metadata), the output
// decoders (one per layout: yolov8, yolov5, yolox, end2end, fastestv2, with
// DetectFormat to pick one from the output shape), class labels and the
// score and class filters built from them, NMS and IoU, and the
// letterbox/stretch Geometry that maps boxes between model-input and frame
// pixels.
//
// Package detector runs the models (the ONNX Runtime sessions, gocv
// preprocessing, drawing) on top of it.
package detection
