//go:build !cgo

package platforms

// AvailableProviders needs cgo to call into ONNX Runtime; without it the
// result is an error naming the library.
func AvailableProviders(libPath string) ([]string, error) {
	return nil, &LibraryError{Library: libPath, Op: "GetAvailableProviders", Message: "built without cgo"}
}
