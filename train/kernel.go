package train

// kernel is one operator's forward and backward pass on a batch.
type kernel interface {
	// forward computes the outputs from the inputs; state is whatever
	// backward needs beyond the tensors kept per keeps.
	forward(ins []*Tensor) (outs []*Tensor, state any, err error)
	// backward returns the gradient of the loss with respect to each
	// input (nil where there is none or it is not needed) given those of
	// the outputs (nil = zero). ins and outs hold data only where keeps
	// says so; elsewhere only their shapes are valid.
	backward(ins, outs []*Tensor, state any, gOuts []*Tensor) ([]*Tensor, error)
	// keeps reports which data backward reads: a bit mask over the inputs
	// (bit i = input i) and whether it reads the outputs.
	keeps() (inputs uint, outputs bool)
}

// unary is a kernel of one input and one output; it lifts a simpler pair
// of functions to the kernel interface.
type unary struct {
	fwd     func(x *Tensor) (*Tensor, error)
	bwd     func(x, y, g *Tensor) *Tensor
	keepIn  bool
	keepOut bool
}

func (u unary) forward(ins []*Tensor) ([]*Tensor, any, error) {
	y, err := u.fwd(ins[0])
	if err != nil {
		return nil, nil, err
	}
	return []*Tensor{y}, nil, nil
}

func (u unary) backward(ins, outs []*Tensor, _ any, gOuts []*Tensor) ([]*Tensor, error) {
	if gOuts[0] == nil {
		return make([]*Tensor, len(ins)), nil
	}
	g := make([]*Tensor, len(ins))
	g[0] = u.bwd(ins[0], outs[0], gOuts[0])
	return g, nil
}

func (u unary) keeps() (uint, bool) {
	if u.keepIn {
		return 1, u.keepOut
	}
	return 0, u.keepOut
}
