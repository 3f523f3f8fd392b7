package quant

import (
	"fmt"
	"math"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Profile selects the activation encoding for a target runtime.
type Profile string

// Quantization profiles.
const (
	// ProfileCPU: uint8 asymmetric activations, ONNX Runtime's fast x86 path
	// (u8s8 kernels, VNNI where the CPU has it).
	ProfileCPU Profile = "cpu"
	// ProfileARM: int8 asymmetric activations (Arm s8s8 kernels).
	ProfileARM Profile = "arm"
	// ProfileTensorRT: int8 symmetric activations with zero point 0, as
	// TensorRT requires.
	ProfileTensorRT Profile = "tensorrt"
)

// ParseProfile checks a profile name.
func ParseProfile(s string) (Profile, error) {
	switch p := Profile(s); p {
	case ProfileCPU, ProfileARM, ProfileTensorRT:
		return p, nil
	}
	return "", fmt.Errorf("quantization profile %q is not one of cpu, arm, tensorrt", s)
}

// computeOps carry the INT8 compute: their weights are quantized.
var computeOps = map[string]bool{"Conv": true, "Gemm": true, "MatMul": true}

// elementwiseOps may run in INT8 between compute ops when enabled.
var elementwiseOps = map[string]bool{
	"Sigmoid": true, "Mul": true, "Add": true, "Concat": true, "MaxPool": true, "Resize": true,
	"Relu": true,
	// Data movement: ONNX Runtime runs these on the INT8 tensor itself
	// when the Q/DQ pairs around them have equal parameters. Left float
	// between two quantized layers (ShuffleNet's channel shuffle:
	// Reshape, Transpose, Reshape, Gather), each adds a DequantizeLinear
	// and a QuantizeLinear pass.
	"Reshape": true, "Transpose": true, "Squeeze": true, "Unsqueeze": true, "Flatten": true,
	"Split": true, "Gather": true, "Slice": true,
}

// sharesInputParams are ops whose output must use its input's quantization
// parameters (they only move or select values).
var sharesInputParams = map[string]bool{
	"MaxPool": true, "Resize": true,
	"Reshape": true, "Transpose": true, "Squeeze": true, "Unsqueeze": true, "Flatten": true,
	"Split": true, "Gather": true, "Slice": true,
}

// actInputs returns the indices of n's inputs that are activations to
// quantize when n is quantized.
func actInputs(g *onnx.Graph, n *onnxpb.NodeProto) []int {
	switch n.GetOpType() {
	case "Conv", "Gemm", "Sigmoid", "MaxPool", "Resize", "Relu",
		"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Split", "Gather", "Slice":
		// Only the data input: shapes, axes and indices are not activations.
		return []int{0}
	case "MatMul":
		if g.Initializer(n.GetInput()[1]) != nil {
			return []int{0}
		}
		return []int{0, 1}
	default: // Add, Mul, Concat
		idx := make([]int, 0, len(n.GetInput()))
		for i, in := range n.GetInput() {
			if in != "" {
				idx = append(idx, i)
			}
		}
		return idx
	}
}

// qparams are one tensor's quantization parameters.
type qparams struct {
	scale float32
	zp    int32
	dtype onnxpb.TensorProto_DataType // UINT8 or INT8
}

// activationParams turns a calibrated range into scale and zero point for
// the profile. The range always contains 0 so that 0 is exact (padding).
func activationParams(lo, hi float32, p Profile) qparams {
	lo, hi = min(lo, 0), max(hi, 0)
	switch p {
	case ProfileTensorRT:
		t := max(-lo, hi)
		if t == 0 {
			return qparams{scale: 1, dtype: onnxpb.TensorProto_INT8}
		}
		return qparams{scale: t / 127, dtype: onnxpb.TensorProto_INT8}
	case ProfileARM:
		if hi-lo == 0 {
			return qparams{scale: 1, dtype: onnxpb.TensorProto_INT8}
		}
		s := (hi - lo) / 255
		zp := int32(math.Round(float64(-128 - lo/s)))
		return qparams{scale: s, zp: min(max(zp, -128), 127), dtype: onnxpb.TensorProto_INT8}
	default:
		if hi-lo == 0 {
			return qparams{scale: 1, dtype: onnxpb.TensorProto_UINT8}
		}
		s := (hi - lo) / 255
		zp := int32(math.Round(float64(-lo / s)))
		return qparams{scale: s, zp: min(max(zp, 0), 255), dtype: onnxpb.TensorProto_UINT8}
	}
}

// Plan says what to quantize: which nodes (by name), with which activation
// ranges, for which profile.
type Plan struct {
	Quantize   map[string]bool
	Ranges     map[string][2]float32
	Profile    Profile
	PerChannel bool
	// ReduceRange quantizes weights to 7 bits ([-63, 63]).
	ReduceRange bool
	// FloatWeights says how the weights of compute layers kept float are
	// stored (by node name); a layer not listed keeps float32 weights.
	FloatWeights map[string]WeightStorage
	// InputMeans are per-channel means of activation tensors on the
	// calibration frames (by tensor name), for bias correction.
	InputMeans map[string][]float32
	// BiasCorrection also corrects the biases of quantized Convs for their
	// weights' rounding (float-stored layers always are).
	BiasCorrection bool
	// Hessians, by Conv node name, make quantizeWeights round those
	// weights by GPTQ (see gptq.go).
	Hessians map[string]*hessian
}

// WeightStorage is how the file stores the weights of a layer that computes
// in float. Int8 and Float16 weights are turned back into float32 by nodes
// that ONNX Runtime folds into constants when it loads the model, so they
// shrink the file without costing any time per inference.
type WeightStorage string

// Weight storages.
const (
	// WeightsInt8: int8 per output channel, Cast and Mul by the scales; the
	// bias is corrected for the rounding's mean shift.
	WeightsInt8 WeightStorage = "int8"
	// WeightsFloat16: float16 and Cast.
	WeightsFloat16 WeightStorage = "fp16"
	// WeightsFloat32: unchanged.
	WeightsFloat32 WeightStorage = "fp32"
)

// ParseWeightStorage parses int8, fp16 or fp32.
func ParseWeightStorage(s string) (WeightStorage, error) {
	switch w := WeightStorage(s); w {
	case WeightsInt8, WeightsFloat16, WeightsFloat32:
		return w, nil
	}
	return "", fmt.Errorf("weight storage %q is not one of int8, fp16, fp32", s)
}
