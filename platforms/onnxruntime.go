// Package platforms knows where edgedet runs: the board and its CPU
// features, the ONNX Runtime library and the execution providers it has,
// and the plan (providers, quantization profile, threads) that suits it.
package platforms

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ORTLibraryName is the file name of ONNX Runtime's shared library on Linux.
const ORTLibraryName = "libonnxruntime.so.1"

// ORTLibraryEnv names the environment variable that points at the ONNX
// Runtime library; the Makefile sets it to the copy that setup.sh installed.
const ORTLibraryEnv = "EDGEDET_ORT_LIB"

// ORTCandidates lists, in search order, the places FindONNXRuntime looks:
// the explicit path (from config or flag), $EDGEDET_ORT_LIB, lib/ next to the
// executable (the repo's build/ layout), ../lib/edgedet next to it and
// /usr/lib/edgedet (the installed layout).
func ORTCandidates(explicit, exe string) []string {
	var c []string
	if explicit != "" {
		return []string{explicit}
	}
	if env := os.Getenv(ORTLibraryEnv); env != "" {
		return []string{env}
	}
	if exe != "" {
		dir := filepath.Dir(exe)
		c = append(c,
			filepath.Join(dir, "lib", ORTLibraryName),
			filepath.Join(dir, "..", "lib", "edgedet", ORTLibraryName))
	}
	return append(c, filepath.Join("/usr/lib/edgedet", ORTLibraryName))
}

// FindONNXRuntime returns the first existing ONNX Runtime library among
// ORTCandidates. An explicit path or $EDGEDET_ORT_LIB that does not exist is
// an error naming it, never a silent fall-through to another copy.
func FindONNXRuntime(explicit string) (string, error) {
	exe, _ := os.Executable()
	cands := ORTCandidates(explicit, exe)
	for _, p := range cands {
		st, err := os.Stat(p)
		if err == nil && !st.IsDir() {
			return p, nil
		}
		if len(cands) == 1 {
			if err == nil {
				err = errors.New("is a directory")
			}
			return "", fmt.Errorf("onnx runtime library %s: %w", p, err)
		}
	}
	return "", fmt.Errorf("onnx runtime library %s not found in %s: run scripts/setup.sh, or set %s or detector.onnxruntime_library",
		ORTLibraryName, strings.Join(cands, ", "), ORTLibraryEnv)
}
