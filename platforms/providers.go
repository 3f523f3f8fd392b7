package platforms

import "fmt"

// LibraryError reports a failure querying an ONNX Runtime library: loading
// it, finding its entry point, or an ONNX Runtime call (then Code keeps
// ONNX Runtime's OrtErrorCode).
type LibraryError struct {
	Library string // the path given
	Op      string // "dlopen", "dlsym OrtGetApiBase", "GetApi(24)", "GetAvailableProviders"
	Code    int    // OrtErrorCode for ONNX Runtime calls, else 0
	Message string // dlerror() or ONNX Runtime's message
	Version string // the library's version string, when it got that far
}

func (e *LibraryError) Error() string {
	msg := fmt.Sprintf("onnx runtime library %s: %s", e.Library, e.Op)
	if e.Version != "" {
		msg += " (version " + e.Version + ")"
	}
	if e.Code != 0 {
		msg += fmt.Sprintf(": code %d", e.Code)
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}
