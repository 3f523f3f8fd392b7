package prune

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// TestCut removes rows (axis 0) and columns (axis 1) of a [3 2 2] tensor
// and refuses removals that leave nothing or do not fit the tensor.
func TestCut(t *testing.T) {
	v := []float32{0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23} // [row][col][2]
	dims := []int64{3, 2, 2}
	got, nd, err := cut(v, dims, map[int][]int{0: {1}, 1: {0}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{2, 3, 22, 23}; !slices.Equal(got, want) || !slices.Equal(nd, []int64{2, 1, 2}) {
		t.Errorf("cut row 1, column 0: %v %v, want %v [2 1 2]", got, nd, want)
	}
	if !slices.Equal(dims, []int64{3, 2, 2}) {
		t.Errorf("cut changed the caller's dims to %v", dims)
	}
	got, nd, err = cut([]float32{1, 2, 3}, []int64{3}, map[int][]int{0: {0, 2}})
	if err != nil || !slices.Equal(got, []float32{2}) || !slices.Equal(nd, []int64{1}) {
		t.Errorf("cut a vector: %v %v %v", got, nd, err)
	}
	for _, c := range []struct {
		name   string
		v      []float32
		dims   []int64
		remove map[int][]int
		err    string
	}{
		{"all rows", v, dims, map[int][]int{0: {0, 1, 2}}, "no channels left on axis 0"},
		{"all columns", v, dims, map[int][]int{1: {1, 0}}, "no channels left on axis 1"},
		{"row out of range", v, dims, map[int][]int{0: {3}}, "channel 3 out of range on axis 0"},
		{"negative column", v, dims, map[int][]int{1: {-1}}, "channel -1 out of range on axis 1"},
		{"vector column", []float32{1, 2}, []int64{2}, map[int][]int{1: {0}}, "out of range on axis 1"},
		{"scalar", []float32{1}, nil, map[int][]int{0: {0}}, "scalar has no channel axis"},
		{"short data", v[:11], dims, map[int][]int{0: {0}}, "11 values for dims [3 2 2]"},
	} {
		if got, nd, err := cut(c.v, c.dims, c.remove); err == nil || !strings.Contains(err.Error(), c.err) || got != nil || nd != nil {
			t.Errorf("%s: %v %v %v, want error %q", c.name, got, nd, err, c.err)
		}
	}
}

// TestNodeLabel: reasons name a node by its quoted name, else by its
// position and first output.
func TestNodeLabel(t *testing.T) {
	for _, c := range []struct {
		n    *onnxpb.NodeProto
		want string
	}{
		{&onnxpb.NodeProto{Name: proto.String("conv1"), Output: []string{"y"}}, `"conv1"`},
		{&onnxpb.NodeProto{Output: []string{"y", "z"}}, `#3 (output "y")`},
		{&onnxpb.NodeProto{}, `#3 (output "")`},
	} {
		if got := nodeLabel(c.n, 3); got != c.want {
			t.Errorf("nodeLabel = %s, want %s", got, c.want)
		}
	}
}
