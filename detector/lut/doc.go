// Package lut runs element-wise activations of INT8 models as one table
// lookup per element on ONNX Runtime's CPU provider.
//
// Between a quantised producer and a quantised consumer, any element-wise
// activation (SiLU, Sigmoid, HardSwish, LeakyReLU, ...) maps 256 input codes
// to 256 output codes, so it is a 256-entry table computed from the input
// and output scales and zero points: one read and one write per element,
// exact to the table (dequantise, f, quantise with round-half-to-even and
// saturation). ONNX Runtime has no such operator: it runs a quantised SiLU
// as QLinearSigmoid + QLinearMul (two passes, each converting through
// float), or, where the SiLU stayed float, as DequantizeLinear + QuickGelu +
// QuantizeLinear.
//
// The package has three parts:
//
//   - a kernel in C (kernel.c): out[i] = table[in[i]], portable, AVX-512
//     VBMI (two vpermi2b and a blend per 64 bytes: 23 GB/s against 4 GB/s
//     for the portable loop on a Sapphire Rapids-class Xeon) and aarch64
//     NEON (four tbl over the table's 64-byte quarters), chosen at run time
//     (BestPath). An AVX2 path (16 masked pshufb per 32 bytes) exists and is
//     tested, but measured no faster than the portable loop, so it is not
//     chosen automatically;
//   - the custom operators (ortop.c): domain "ai.edgedet", ops
//     LutActivationU8 and LutActivationS8 (X, table) → Y, registered on a
//     session's options by Register. The kernels run on ORT's threads
//     (KernelContext_ParallelFor over 64 KiB chunks) and never call Go;
//   - the graph rewrite (Rewrite, OptimizeAndRewrite), in memory: model files
//     stay standard ONNX QDQ.
//
// # Rewrite after ORT's optimisation
//
// ORT's layout transformer moves QLinearConv to channels-last and cancels
// the transposes only through operators it knows, so a custom operator
// between two convolutions gains a Transpose on each side: rewriting the
// QDQ model before loading it took yolox_nano all-INT8 from 11 Transposes to
// 211 and made it slower than not rewriting. OptimizeAndRewrite lets ORT
// optimise first (level all, written with SetOptimizedModelFilePath),
// rewrites the optimised graph (its QLinearSigmoid + QLinearMul pairs, and
// DQ → Sigmoid → Mul → Q where float SiLU remained) and returns a model to
// load at level extended, which does not redo the layout: the Transposes
// stay at 11.
//
// # Using it
//
//	opt, n, err := lut.OptimizeAndRewrite(model, "", configure) // configure: threads etc.
//	// n == 0 or err: load model as usual (log the reason once).
//	opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableExtended)
//	lut.Register(opts, libPath) // the library onnxruntime_go loaded
//	ort.NewAdvancedSessionWithONNXData(opt, ...)
//
// # Reaching ORT from Go
//
// onnxruntime_go v1.27.0 keeps its *C.OrtSessionOptions in the unexported
// field o of SessionOptions. Register reads it through unsafe after checking
// with reflect that SessionOptions is still one pointer field named o to a C
// OrtSessionOptions; any other shape is ErrOptionsLayout, never a crash.
// (The upstreamable alternative, an exported accessor or an
// AddCustomOpDomain method on SessionOptions, would need a fork and a
// replace directive until released; the check keeps this safe meanwhile.)
// The OrtApi comes from the same loaded library: dlopen(libPath,
// RTLD_NOLOAD) then OrtGetApiBase, and the library must be ORT ≥ 1.24 (C API
// 24, the OrtCustomOp layout in ortmini.h, which TestABIMatchesHeader checks
// against the header onnxruntime_go ships).
package lut
