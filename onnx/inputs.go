package onnx

import "context"

// Inputs supplies calibration inputs: already preprocessed model inputs
// (NCHW float32), produced on demand so that memory stays bounded. The
// agent implements it with the detector's own preprocessing.
type Inputs interface {
	// Len is the number of inputs.
	Len() int
	// Input writes input i into dst (len = the model input's element count).
	Input(ctx context.Context, i int, dst []float32) error
}
