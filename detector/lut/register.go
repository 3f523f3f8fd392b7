package lut

/*
#cgo CFLAGS: -O2 -std=gnu11 -Wall
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "ortop.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
)

// Domain is the ONNX operator domain of the custom operators.
const Domain = C.LUT_DOMAIN

// Op types in Domain: Y = table[X] element-wise, input 1 being the 256-entry
// table of X's type, indexed by X's raw byte.
const (
	OpUint8 = "LutActivationU8"
	OpInt8  = "LutActivationS8"
)

// ErrOptionsLayout is returned by Register when onnxruntime_go's
// SessionOptions no longer has the shape this package reads.
var ErrOptionsLayout = errors.New("onnxruntime_go SessionOptions layout changed")

var registerMu sync.Mutex

// Register adds the Domain operators to opts, so that sessions created with
// opts run models that Rewrite changed. libPath must be the ONNX Runtime
// library onnxruntime_go loaded (ort.SetSharedLibraryPath, then
// InitializeEnvironment): the operators are built against the API of that
// same copy. The operators stay registered for the life of the process.
func Register(opts *ort.SessionOptions, libPath string) error {
	p, err := optionsPointer(opts)
	if err != nil {
		return err
	}
	cLib := C.CString(libPath)
	defer C.free(unsafe.Pointer(cLib))
	var buf [512]C.char
	registerMu.Lock()
	rc := C.lut_register(p, cLib, &buf[0], C.size_t(len(buf)))
	registerMu.Unlock()
	if rc != 0 {
		return fmt.Errorf("register %s operators: %s", Domain, C.GoString(&buf[0]))
	}
	return nil
}

// optionsPointer reads the *C.OrtSessionOptions that onnxruntime_go v1.27.0
// keeps in the unexported field o of SessionOptions. It checks the struct's
// shape first (one pointer field named o, to a C OrtSessionOptions) and
// fails with ErrOptionsLayout rather than read anything else.
func optionsPointer(opts *ort.SessionOptions) (unsafe.Pointer, error) {
	if opts == nil {
		return nil, errors.New("register: nil session options")
	}
	if err := checkOptionsLayout(reflect.TypeFor[ort.SessionOptions]()); err != nil {
		return nil, err
	}
	p := *(*unsafe.Pointer)(unsafe.Pointer(opts))
	if p == nil {
		return nil, errors.New("register: session options already destroyed")
	}
	return p, nil
}

func checkOptionsLayout(t reflect.Type) error {
	if t.Kind() != reflect.Struct || t.NumField() != 1 {
		return fmt.Errorf("%w: %s is not a struct of one field", ErrOptionsLayout, t)
	}
	f := t.Field(0)
	if f.Name != "o" || f.Offset != 0 || f.Type.Kind() != reflect.Pointer ||
		!strings.HasSuffix(f.Type.Elem().Name(), "OrtSessionOptions") {
		return fmt.Errorf("%w: field %s %s is not o *C.OrtSessionOptions", ErrOptionsLayout, f.Name, f.Type)
	}
	return nil
}

// versionOK reports whether an ONNX Runtime version string is new enough
// for the operators (1.24, C API 24).
func versionOK(v string) bool {
	cs := C.CString(v)
	defer C.free(unsafe.Pointer(cs))
	return C.lut_version_ok(cs) != 0
}
