package train

import (
	"fmt"
	"slices"
)

// step is what one node's forward left for its backward.
type step struct {
	ins, outs []*Tensor
	state     any
	ran       bool // the node ran in this pass
}

// Tape is one training forward pass: what backward needs, in node order.
// Backward consumes it.
type Tape struct {
	g     *Graph
	steps []step
	done  bool
}

// Forward runs the graph and returns the tensors named in want (the graph
// outputs when want is empty). inputs are keyed by tensor name: the graph
// inputs, or any intermediate tensor, which then replaces what its
// producer would compute (to run one block of a network on features taken
// from elsewhere). Only the operators the wanted tensors depend on run, and
// every tensor they read must be given. Intermediate tensors are released
// as soon as no later operator reads them.
func (g *Graph) Forward(inputs map[string]*Tensor, want ...string) (map[string]*Tensor, error) {
	outs, _, err := g.run(inputs, want, false)
	return outs, err
}

// ForwardTrain is Forward that also records what Backward needs: the
// inputs or outputs each operator's backward reads and nothing else.
// Gradients stop at the given inputs.
func (g *Graph) ForwardTrain(inputs map[string]*Tensor, want ...string) (map[string]*Tensor, *Tape, error) {
	outs, tape, err := g.run(inputs, want, true)
	return outs, tape, err
}

func (g *Graph) run(inputs map[string]*Tensor, want []string, train bool) (map[string]*Tensor, *Tape, error) {
	if len(want) == 0 {
		want = g.outputs
	}
	for name, t := range inputs {
		if !g.isTensor(name) {
			return nil, nil, fmt.Errorf("%q is not a tensor of the graph (its inputs: %v)", name, g.inputs)
		}
		if _, isConst := g.consts[name]; isConst {
			return nil, nil, fmt.Errorf("%q is a constant of the graph, not an input", name)
		}
		if t == nil || t.isInt() || len(t.Data) != t.Len() {
			return nil, nil, fmt.Errorf("input %q: want a float tensor whose data matches its shape", name)
		}
	}
	for _, w := range want {
		if !g.isTensor(w) {
			return nil, nil, fmt.Errorf("tensor %q is not in the graph", w)
		}
	}
	active, err := g.activeNodes(inputs, want)
	if err != nil {
		return nil, nil, err
	}
	values := make(map[string]*Tensor, len(g.nodes)+len(g.consts))
	for name, t := range g.consts {
		values[name] = t
	}
	for name, t := range inputs {
		values[name] = t
	}
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w] = true
	}
	readers, kept := g.liveness(active, train)
	var tape *Tape
	if train {
		tape = &Tape{g: g, steps: make([]step, len(g.nodes))}
	}
	for i, n := range g.nodes {
		if !active[i] {
			continue
		}
		ins := make([]*Tensor, len(n.ins))
		for j, name := range n.ins {
			if name != "" {
				ins[j] = values[name]
			}
		}
		if err := checkInputs(n, ins); err != nil {
			return nil, nil, err
		}
		outs, state, err := n.k.forward(ins)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", n.label(), err)
		}
		if len(outs) != len(n.outs) {
			return nil, nil, fmt.Errorf("%s: %d outputs, the model declares %d", n.label(), len(outs), len(n.outs))
		}
		for j, name := range n.outs {
			if name != "" {
				values[name] = outs[j]
			}
		}
		if train {
			tape.steps[i] = step{ins: ins, outs: outs, state: state, ran: true}
		}
		// Release what no later node reads and backward does not keep.
		for _, name := range append(slices.Clone(n.ins), n.outs...) {
			if name == "" {
				continue
			}
			if readers[name]--; readers[name] <= 0 && !kept[name] && !wanted[name] {
				_, isConst := g.consts[name]
				_, given := inputs[name]
				if t := values[name]; t != nil && !t.isInt() && !isConst && !given {
					t.Data = nil // the tape and later shape reads keep the shape
				}
			}
		}
	}
	res := make(map[string]*Tensor, len(want))
	for _, w := range want {
		res[w] = values[w]
	}
	return res, tape, nil
}

// activeNodes marks the nodes the wanted tensors depend on, walking back
// from them and stopping at given inputs and constants. A tensor that is
// needed but neither given, constant nor produced is an error.
func (g *Graph) activeNodes(inputs map[string]*Tensor, want []string) ([]bool, error) {
	needed := map[string]bool{}
	for _, w := range want {
		needed[w] = true
	}
	active := make([]bool, len(g.nodes))
	for i := len(g.nodes) - 1; i >= 0; i-- {
		n := g.nodes[i]
		run := false
		for _, out := range n.outs {
			if _, given := inputs[out]; needed[out] && !given {
				run = true
			}
		}
		if !run {
			continue
		}
		active[i] = true
		for _, in := range n.ins {
			if in != "" {
				needed[in] = true
			}
		}
	}
	produced := map[string]bool{}
	for i, n := range g.nodes {
		if active[i] {
			for _, out := range n.outs {
				produced[out] = true
			}
		}
	}
	var missing []string
	for name := range needed {
		_, given := inputs[name]
		_, isConst := g.consts[name]
		if !given && !isConst && !produced[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("input %q not given (needed for %v)", missing[0], want)
	}
	return active, nil
}

// liveness counts each tensor's forward readers among the active nodes
// (the producing node counts once, so a tensor nobody reads is released
// right after it is made) and, for training, marks the tensors some
// backward reads.
func (g *Graph) liveness(active []bool, train bool) (readers map[string]int, kept map[string]bool) {
	readers = map[string]int{}
	kept = map[string]bool{}
	for i, n := range g.nodes {
		if !active[i] {
			continue
		}
		for _, in := range n.ins {
			readers[in]++
		}
		for _, out := range n.outs {
			readers[out]++
		}
		if !train || !g.nodeNeedsBackward(n) {
			continue
		}
		inMask, keepOuts := n.k.keeps()
		for j, in := range n.ins {
			if inMask&(1<<j) != 0 {
				kept[in] = true
			}
		}
		if keepOuts {
			for _, out := range n.outs {
				kept[out] = true
			}
		}
	}
	return readers, kept
}

func (g *Graph) nodeNeedsBackward(n *node) bool {
	for _, out := range n.outs {
		if g.needsGrad[out] {
			return true
		}
	}
	return false
}

// Backward propagates the loss gradients of chosen tensors (by name, each
// shaped like the tensor; typically the outputs ForwardTrain returned)
// back to the parameters, adding to each Param's Grad. A tape can be used
// once.
func (t *Tape) Backward(grads map[string]*Tensor) error {
	if t.done {
		return fmt.Errorf("backward: the tape has already been used")
	}
	t.done = true
	g := t.g
	pending := make(map[string]*Tensor, len(grads))
	for name, gr := range grads {
		if !g.needsGrad[name] {
			if !g.isTensor(name) {
				return fmt.Errorf("backward: tensor %q is not in the graph", name)
			}
			continue // does not depend on any parameter
		}
		pending[name] = gr
	}
	for i := len(g.nodes) - 1; i >= 0; i-- {
		n := g.nodes[i]
		s := t.steps[i]
		t.steps[i] = step{} // release this node's tape whatever happens
		if !s.ran || !g.nodeNeedsBackward(n) {
			continue
		}
		gOuts := make([]*Tensor, len(n.outs))
		reached := false
		for j, name := range n.outs {
			if gr := pending[name]; gr != nil {
				if !slices.Equal(gr.Shape, s.outs[j].Shape) || len(gr.Data) != s.outs[j].Len() {
					return fmt.Errorf("backward: gradient of %q has shape %v, the tensor %v", name, gr.Shape, s.outs[j].Shape)
				}
				gOuts[j] = gr
				reached = true
			}
			delete(pending, name)
		}
		if !reached {
			continue
		}
		gIns, err := n.k.backward(s.ins, s.outs, s.state, gOuts)
		if err != nil {
			return fmt.Errorf("backward of %s: %w", n.label(), err)
		}
		for j, name := range n.ins {
			if name == "" || gIns[j] == nil || !g.needsGrad[name] {
				continue
			}
			if p := g.byName[name]; p != nil {
				addInto(p.Grad.Data, gIns[j].Data)
				continue
			}
			if prev := pending[name]; prev != nil {
				sum := &Tensor{Shape: prev.Shape, Data: slices.Clone(prev.Data)}
				addInto(sum.Data, gIns[j].Data)
				pending[name] = sum
			} else {
				pending[name] = gIns[j]
			}
		}
	}
	return nil
}

// isTensor reports whether name is a graph input, a constant or the
// output of some node.
func (g *Graph) isTensor(name string) bool {
	if _, ok := g.consts[name]; ok || slices.Contains(g.inputs, name) {
		return true
	}
	for _, n := range g.nodes {
		if slices.Contains(n.outs, name) {
			return true
		}
	}
	return false
}

func addInto(dst, src []float32) {
	for i, v := range src {
		dst[i] += v
	}
}
