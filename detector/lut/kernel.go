package lut

/*
#include "kernel.h"
#include "ortop.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Path is one implementation of the byte lookup.
type Path int

// The lookup paths. PathAuto is the fastest one the CPU supports.
const (
	PathAuto   Path = C.LUT_PATH_AUTO
	PathScalar Path = C.LUT_PATH_SCALAR
	PathAVX2   Path = C.LUT_PATH_AVX2
	PathVBMI   Path = C.LUT_PATH_VBMI
	PathNEON   Path = C.LUT_PATH_NEON
)

// Paths lists every concrete path (not PathAuto).
var Paths = []Path{PathScalar, PathAVX2, PathVBMI, PathNEON}

func (p Path) String() string {
	switch p {
	case PathAuto:
		return "auto"
	case PathScalar:
		return "scalar"
	case PathAVX2:
		return "avx2"
	case PathVBMI:
		return "avx512vbmi"
	case PathNEON:
		return "neon"
	}
	return fmt.Sprintf("path(%d)", int(p))
}

// Supported reports whether p runs on this CPU.
func (p Path) Supported() bool { return C.lut_path_supported(C.int(p)) != 0 }

// BestPath is the path PathAuto uses on this CPU.
func BestPath() Path { return Path(C.lut_best_path()) }

// Apply maps in through table into out (len(out) >= len(in)) with path p.
func Apply(p Path, table *[256]byte, in, out []byte) error {
	if len(out) < len(in) {
		return fmt.Errorf("lut apply: output has %d bytes, input %d", len(out), len(in))
	}
	if len(in) == 0 {
		if !p.Supported() {
			return fmt.Errorf("lut apply: path %s not supported on this CPU", p)
		}
		return nil
	}
	rc := C.lut_apply(C.int(p), (*C.uint8_t)(unsafe.Pointer(&table[0])),
		(*C.uint8_t)(unsafe.Pointer(&in[0])), (*C.uint8_t)(unsafe.Pointer(&out[0])), C.size_t(len(in)))
	if rc != 0 {
		return fmt.Errorf("lut apply: path %s not supported on this CPU", p)
	}
	return nil
}

// SetOperatorPath makes kernels created from now on (at session creation)
// use path p. For benchmarks and tests; the default is PathAuto.
func SetOperatorPath(p Path) error {
	if !p.Supported() {
		return fmt.Errorf("lut: path %s not supported on this CPU", p)
	}
	C.lut_set_op_path(C.int(p))
	return nil
}
