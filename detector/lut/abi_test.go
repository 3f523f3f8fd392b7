package lut

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

var (
	abiFuncs = []string{"CreateStatus", "GetErrorMessage", "CreateCustomOpDomain", "CustomOpDomain_Add",
		"AddCustomOpDomain", "GetTensorMutableData", "GetTensorElementType", "GetDimensionsCount", "GetDimensions",
		"GetTensorShapeElementCount", "GetTensorTypeAndShape", "KernelContext_GetInputCount",
		"KernelContext_GetInput", "KernelContext_GetOutput", "ReleaseStatus", "ReleaseTensorTypeAndShapeInfo",
		"ReleaseCustomOpDomain", "ShapeInferContext_GetInputTypeShape", "ShapeInferContext_SetOutputTypeShape",
		"KernelContext_ParallelFor"}
	abiFields = []string{"version", "CreateKernel", "GetName", "GetExecutionProviderType", "GetInputType",
		"GetInputTypeCount", "GetOutputType", "GetOutputTypeCount", "KernelCompute", "KernelDestroy",
		"GetInputCharacteristic", "GetOutputCharacteristic", "GetInputMemoryType", "GetVariadicInputMinArity",
		"GetVariadicInputHomogeneity", "GetVariadicOutputMinArity", "GetVariadicOutputHomogeneity",
		"CreateKernelV2", "KernelComputeV2", "InferOutputShapeFn", "GetStartVersion", "GetEndVersion",
		"GetMayInplace", "ReleaseMayInplace", "GetAliasMap", "ReleaseAliasMap"}
	// our enum name → the header's
	abiEnums = [][2]string{{"LUT_ELEM_FLOAT", "ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT"},
		{"LUT_ELEM_UINT8", "ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8"}, {"LUT_ELEM_INT8", "ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8"},
		{"LUT_ORT_FAIL", "ORT_FAIL"}, {"LUT_ORT_INVALID_ARGUMENT", "ORT_INVALID_ARGUMENT"},
		{"LUT_IO_REQUIRED", "INPUT_OUTPUT_REQUIRED"}, {"LUT_MEM_DEFAULT", "OrtMemTypeDefault"},
		{"LUT_ORT_API_VERSION", "ORT_API_VERSION"}}
)

// probe writes a C program that prints every checked value, using the
// header's names (real) or ortmini.h's, compiles it and returns its output.
func probe(t *testing.T, real bool, incDir string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("#include <stdio.h>\n#include <stddef.h>\n")
	if real {
		b.WriteString("#include \"onnxruntime_c_api.h\"\n")
	} else {
		b.WriteString("#include \"ortmini.h\"\n")
	}
	b.WriteString("int main(void) {\n")
	for _, f := range abiFuncs {
		if real {
			fmt.Fprintf(&b, "printf(\"api %s %%zu\\n\", offsetof(OrtApi, %s) / sizeof(void *));\n", f, f)
		} else {
			fmt.Fprintf(&b, "printf(\"api %s %%d\\n\", (int)LUT_API_%s);\n", f, f)
		}
	}
	for _, f := range abiFields {
		fmt.Fprintf(&b, "printf(\"op %s %%zu\\n\", offsetof(OrtCustomOp, %s));\n", f, f)
	}
	b.WriteString("printf(\"sizeof op %zu\\n\", sizeof(OrtCustomOp));\n")
	for _, e := range abiEnums {
		name := e[0]
		if real {
			name = e[1]
		}
		fmt.Fprintf(&b, "printf(\"enum %s %%d\\n\", (int)%s);\n", e[0], name)
	}
	b.WriteString("return 0;\n}\n")
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "probe.c"), filepath.Join(dir, "probe")
	if err := os.WriteFile(src, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	if out, err := exec.Command(cc, "-I", incDir, "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("compile probe against %s: %v\n%s", incDir, err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("run probe: %v", err)
	}
	return string(out)
}

// TestABIMatchesHeader checks ortmini.h against the onnxruntime_c_api.h
// that onnxruntime_go ships: every OrtApi index, the OrtCustomOp layout and
// the enum values. An onnxruntime_go upgrade that moves any of them fails
// here, not at run time.
func TestABIMatchesHeader(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, "list", "-m", "-f", "{{.Dir}}", "github.com/yalue/onnxruntime_go").Output()
	if err != nil {
		t.Fatalf("locate onnxruntime_go: %v", err)
	}
	modDir := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(modDir, "onnxruntime_c_api.h")); err != nil {
		t.Fatalf("onnxruntime_go has no C API header: %v", err)
	}
	here, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	real, ours := probe(t, true, modDir), probe(t, false, here)
	rl, ol := strings.Split(real, "\n"), strings.Split(ours, "\n")
	if len(rl) != len(ol) {
		t.Fatalf("probe outputs differ in length:\n%s\n%s", real, ours)
	}
	for i := range rl {
		if rl[i] != ol[i] {
			t.Errorf("header %q, ortmini.h %q", rl[i], ol[i])
		}
	}
}
