package onnx

import "slices"

// elementwiseRules are the operators whose output has the shape of their
// input, or the broadcast shape of their inputs.
var elementwiseRules = mergeRules(
	ruleFor((*Shapes).broadcasting,
		"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu",
		"Where", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
		"And", "Or", "Xor", "Mod", "BitShift"),
	ruleFor((*Shapes).sameShape,
		"Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Clip", "Tanh",
		"Elu", "Selu", "Celu", "Softplus", "Softsign", "Mish", "Gelu", "Erf",
		"ThresholdedRelu", "Shrink", "Identity", "Dropout", "Neg", "Abs", "Sqrt",
		"Exp", "Log", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos",
		"BatchNormalization", "Softmax", "LogSoftmax", "Hardmax", "Cast", "Not",
		"IsNaN", "IsInf", "LRN", "InstanceNormalization", "LayerNormalization",
		"QuantizeLinear", "DequantizeLinear"),
	map[string]shapeRule{"DynamicQuantizeLinear": (*Shapes).dynamicQuantize},
)

// ruleFor maps each of ops to rule.
func ruleFor(rule shapeRule, ops ...string) map[string]shapeRule {
	m := make(map[string]shapeRule, len(ops))
	for _, op := range ops {
		m[op] = rule
	}
	return m
}

// sameShape gives the first output the first input's shape (and Dropout's
// mask too); Identity and Cast keep integer values.
func (s *Shapes) sameShape(n *node) {
	s.set(n.out[0], n.x)
	if n.op == "Dropout" && len(n.out) > 1 {
		s.set(n.out[1], n.x)
	}
	if n.op == "Identity" || n.op == "Cast" {
		s.passInts(n.in[0], n.out[0])
	}
}

// dynamicQuantize: y has x's shape, the scale and zero point are scalars.
func (s *Shapes) dynamicQuantize(n *node) {
	s.set(n.out[0], n.x)
	for _, o := range n.out[1:] {
		s.set(o, []int64{})
	}
}

// broadcasting gives the output the broadcast shape of all inputs, and
// folds integer arithmetic.
func (s *Shapes) broadcasting(n *node) {
	var y []int64
	for _, name := range n.GetInput() {
		if name == "" {
			continue
		}
		d := s.dims[name]
		if d == nil {
			return
		}
		var ok bool
		if y, ok = broadcast(y, d); !ok {
			return
		}
	}
	s.set(n.out[0], y)
	s.intArith(n)
}

// broadcast is the numpy-style broadcast of shapes a and b (a may be nil
// for "nothing yet").
func broadcast(a, b []int64) ([]int64, bool) {
	if a == nil {
		return slices.Clone(b), true
	}
	r := max(len(a), len(b))
	y := make([]int64, r)
	for i := range r {
		da, db := int64(1), int64(1)
		if j := i - (r - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (r - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db || db == 1:
			y[i] = da
		case da == 1:
			y[i] = db
		default:
			return nil, false
		}
	}
	return y, true
}
