package train

import "fmt"

// inputSpec is how many inputs an operator takes and which must be float
// (bit i = input i), so that a malformed model is an error, not a panic.
type inputSpec struct {
	min, max int
	float    uint
}

const anyCount = 1 << 30

var inputSpecs = map[string]inputSpec{
	"Conv":      {2, 3, 0b111},
	"MaxPool":   {1, 1, 1},
	"Resize":    {1, 4, 0b0101},
	"Upsample":  {1, 2, 0b11},
	"Sigmoid":   {1, 1, 1},
	"SiLU":      {1, 1, 1},
	"Relu":      {1, 1, 1},
	"LeakyRelu": {1, 1, 1},
	"Softmax":   {1, 1, 1},
	"Add":       {2, 2, 0},
	"Sub":       {2, 2, 0},
	"Mul":       {2, 2, 0},
	"Div":       {2, 2, 0},
	"Concat":    {1, anyCount, 0},
	"Split":     {1, 2, 1},
	"Slice":     {1, 5, 0},
	"Reshape":   {2, 2, 0},
	"Transpose": {1, 1, 0},
	"Flatten":   {1, 1, 0},
	"Gather":    {2, 2, 0},
	"Unsqueeze": {1, 2, 0},
	"Squeeze":   {1, 2, 0},
	"Identity":  {1, 1, 0},
	"Shape":     {1, 1, 0},
	"Cast":      {1, 1, 0},
}

// checkInputs validates a node's inputs before its kernel runs: their
// count, that required ones (the first min) are present, and that those
// the operator reads as floats are not integer tensors.
func checkInputs(n *node, ins []*Tensor) error {
	spec, ok := inputSpecs[n.op]
	if !ok {
		return nil
	}
	if len(ins) < spec.min || len(ins) > spec.max {
		want := fmt.Sprintf("%d to %d", spec.min, spec.max)
		switch {
		case spec.min == spec.max:
			want = fmt.Sprint(spec.min)
		case spec.max == anyCount:
			want = fmt.Sprintf("at least %d", spec.min)
		}
		return fmt.Errorf("%s: %d inputs, want %s", n.label(), len(ins), want)
	}
	for j, t := range ins {
		if t == nil {
			if j < spec.min {
				return fmt.Errorf("%s: required input %d is missing", n.label(), j)
			}
			continue
		}
		if spec.float&(1<<j) != 0 && t.isInt() {
			return fmt.Errorf("%s: input %d (%q) is an integer tensor, want float", n.label(), j, n.ins[j])
		}
	}
	return nil
}
