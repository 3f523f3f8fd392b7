package detector

import (
	"fmt"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

var runtimeMu sync.Mutex

// InitRuntime loads the ONNX Runtime shared library at libPath and creates
// its process-wide environment. main calls it once, before any Detector is
// built, and DestroyRuntime last. Calling it again with the same library is
// a no-op; with another library it is an error.
func InitRuntime(libPath string) error {
	runtimeMu.Lock()
	defer runtimeMu.Unlock()
	if ort.IsInitialized() {
		if loadedLib != libPath {
			return fmt.Errorf("onnx runtime already initialised from %s, cannot load %s", loadedLib, libPath)
		}
		return nil
	}
	ort.SetSharedLibraryPath(libPath)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("load onnx runtime %s: %w", libPath, err)
	}
	loadedLib = libPath
	return nil
}

var loadedLib string

// DestroyRuntime tears the ONNX Runtime environment down. Every Detector must
// be closed first.
func DestroyRuntime() error {
	runtimeMu.Lock()
	defer runtimeMu.Unlock()
	if !ort.IsInitialized() {
		return nil
	}
	loadedLib = ""
	return ort.DestroyEnvironment()
}

// RuntimeVersion is the loaded ONNX Runtime's version, "" before InitRuntime.
func RuntimeVersion() string {
	if !ort.IsInitialized() {
		return ""
	}
	return ort.GetVersion()
}

// RuntimeLoaded reports whether ONNX Runtime is initialised.
func RuntimeLoaded() bool { return ort.IsInitialized() }

// RuntimeLibrary is the library InitRuntime loaded, "" before.
func RuntimeLibrary() string {
	runtimeMu.Lock()
	defer runtimeMu.Unlock()
	return loadedLib
}
