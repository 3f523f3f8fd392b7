package onnx

import (
	"fmt"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Graph indexes the main graph of a model: which node produces each tensor,
// which nodes consume it, and the initializers, inputs, outputs and
// value_info by name. It reads the model in place and keeps no copy: after
// editing the model's nodes or tensors, call Reindex before querying again.
//
// Only the main graph is indexed. A node whose subgraph (If, Loop, Scan)
// reads a tensor of the main graph counts as a consumer of that tensor.
type Graph struct {
	Model *onnxpb.ModelProto

	producer    map[string]*onnxpb.NodeProto
	consumers   map[string][]*onnxpb.NodeProto
	initializer map[string]*onnxpb.TensorProto
	valueInfo   map[string]*onnxpb.ValueInfoProto
	input       map[string]bool
	output      map[string]bool
}

// NewGraph indexes m's graph. m must have a graph (LoadModel checks that).
func NewGraph(m *onnxpb.ModelProto) *Graph {
	g := &Graph{Model: m}
	g.Reindex()
	return g
}

// Reindex rebuilds the index from the model; call it after edits.
func (g *Graph) Reindex() {
	gp := g.Model.GetGraph()
	g.producer = make(map[string]*onnxpb.NodeProto)
	g.consumers = make(map[string][]*onnxpb.NodeProto)
	g.initializer = make(map[string]*onnxpb.TensorProto, len(gp.GetInitializer()))
	g.valueInfo = make(map[string]*onnxpb.ValueInfoProto)
	g.input = make(map[string]bool, len(gp.GetInput()))
	g.output = make(map[string]bool, len(gp.GetOutput()))
	for _, n := range gp.GetNode() {
		for _, name := range n.GetOutput() {
			if _, dup := g.producer[name]; name != "" && !dup {
				g.producer[name] = n
			}
		}
		for _, name := range nodeInputs(n) {
			g.consumers[name] = append(g.consumers[name], n)
		}
	}
	for _, t := range gp.GetInitializer() {
		if _, dup := g.initializer[t.GetName()]; !dup {
			g.initializer[t.GetName()] = t
		}
	}
	// Later entries do not override earlier ones: inputs and outputs carry
	// the declared types, value_info only inferred ones.
	for _, list := range [][]*onnxpb.ValueInfoProto{gp.GetInput(), gp.GetOutput(), gp.GetValueInfo()} {
		for _, vi := range list {
			if _, dup := g.valueInfo[vi.GetName()]; !dup {
				g.valueInfo[vi.GetName()] = vi
			}
		}
	}
	for _, vi := range gp.GetInput() {
		g.input[vi.GetName()] = true
	}
	for _, vi := range gp.GetOutput() {
		g.output[vi.GetName()] = true
	}
}

// nodeInputs is the distinct, non-empty tensor names n reads: its inputs,
// then the outer-scope names its subgraphs read.
func nodeInputs(n *onnxpb.NodeProto) []string {
	var names []string
	seen := map[string]bool{"": true}
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	for _, name := range n.GetInput() {
		add(name)
	}
	for _, a := range n.GetAttribute() {
		if a.GetG() != nil {
			for _, name := range outerRefs(a.GetG()) {
				add(name)
			}
		}
		for _, sg := range a.GetGraphs() {
			for _, name := range outerRefs(sg) {
				add(name)
			}
		}
	}
	return names
}

// outerRefs is the names a subgraph reads but does not define itself (as
// input, initializer or node output): those come from the enclosing scope.
func outerRefs(sg *onnxpb.GraphProto) []string {
	defined := map[string]bool{"": true}
	for _, vi := range sg.GetInput() {
		defined[vi.GetName()] = true
	}
	for _, t := range sg.GetInitializer() {
		defined[t.GetName()] = true
	}
	for _, n := range sg.GetNode() {
		for _, o := range n.GetOutput() {
			defined[o] = true
		}
	}
	var refs []string
	seen := map[string]bool{}
	ref := func(name string) {
		if !defined[name] && !seen[name] {
			seen[name] = true
			refs = append(refs, name)
		}
	}
	for _, n := range sg.GetNode() {
		for _, name := range nodeInputs(n) {
			ref(name)
		}
	}
	for _, vi := range sg.GetOutput() {
		ref(vi.GetName())
	}
	return refs
}

// Producer is the node that outputs tensor, nil for graph inputs,
// initializers and unknown names.
func (g *Graph) Producer(tensor string) *onnxpb.NodeProto { return g.producer[tensor] }

// Consumers are the nodes that read tensor, in graph order, each once. The
// slice belongs to the index: do not modify it. A graph output is not a
// node: check IsOutput too before removing a tensor.
func (g *Graph) Consumers(tensor string) []*onnxpb.NodeProto { return g.consumers[tensor] }

// Initializer is the initializer named name, or nil.
func (g *Graph) Initializer(name string) *onnxpb.TensorProto { return g.initializer[name] }

// ValueInfo is the type and shape recorded for tensor: from the graph's
// inputs, outputs or value_info, in that order of preference; nil if none.
func (g *Graph) ValueInfo(tensor string) *onnxpb.ValueInfoProto { return g.valueInfo[tensor] }

// IsInput reports whether tensor is one of the graph's inputs. Models of IR
// version < 4 (and some later exporters) also list initializers as inputs.
func (g *Graph) IsInput(tensor string) bool { return g.input[tensor] }

// IsOutput reports whether tensor is one of the graph's outputs.
func (g *Graph) IsOutput(tensor string) bool { return g.output[tensor] }

// Opset is the version of the default (ai.onnx) operator set the model
// imports, 0 if it imports none.
func (g *Graph) Opset() int64 {
	for _, op := range g.Model.GetOpsetImport() {
		if d := op.GetDomain(); d == "" || d == "ai.onnx" {
			return op.GetVersion()
		}
	}
	return 0
}

// TopoSort returns the main graph's nodes in an order where every node comes
// after the producers of the tensors it reads. It keeps the stored order
// where that order is already valid. Tensors nobody produces (graph inputs,
// initializers, missing names) impose no order. A cycle is an error that
// names a node on it.
func (g *Graph) TopoSort() ([]*onnxpb.NodeProto, error) {
	nodes := g.Model.GetGraph().GetNode()
	index := make(map[*onnxpb.NodeProto]int, len(nodes))
	for i, n := range nodes {
		index[n] = i
	}
	// deps[i] are the distinct nodes i waits for; users[j] the nodes waiting for j.
	pending := make([]int, len(nodes))
	users := make([][]int, len(nodes))
	for i, n := range nodes {
		seen := map[int]bool{}
		for _, name := range nodeInputs(n) {
			p, ok := g.producer[name]
			if !ok {
				continue
			}
			j := index[p]
			if !seen[j] {
				seen[j] = true
				pending[i]++
				users[j] = append(users[j], i)
			}
		}
	}
	// Kahn's algorithm with a min-heap on the original position keeps the
	// stored order whenever it is valid.
	ready := &intHeap{}
	for i := range nodes {
		if pending[i] == 0 {
			ready.push(i)
		}
	}
	sorted := make([]*onnxpb.NodeProto, 0, len(nodes))
	for ready.len() > 0 {
		i := ready.pop()
		sorted = append(sorted, nodes[i])
		for _, u := range users[i] {
			if pending[u]--; pending[u] == 0 {
				ready.push(u)
			}
		}
	}
	if len(sorted) == len(nodes) {
		return sorted, nil
	}
	c := g.onCycle(nodes, index, pending)
	return nil, fmt.Errorf("graph has a cycle through %s", nodeLabel(nodes[c], c))
}

// onCycle returns the index of a node that lies on a cycle, given the
// pending counts Kahn's algorithm left: it walks back from an unsorted node
// through unsorted producers until it meets a node twice.
func (g *Graph) onCycle(nodes []*onnxpb.NodeProto, index map[*onnxpb.NodeProto]int, pending []int) int {
	cur := -1
	for i := range nodes {
		if pending[i] > 0 {
			cur = i
			break
		}
	}
	visited := map[int]bool{}
	for !visited[cur] {
		visited[cur] = true
		for _, name := range nodeInputs(nodes[cur]) {
			if p, ok := g.producer[name]; ok && pending[index[p]] > 0 {
				cur = index[p]
				break
			}
		}
	}
	return cur
}

// nodeLabel names a node in errors: by name when it has one, else by its
// position and first output.
func nodeLabel(n *onnxpb.NodeProto, i int) string {
	if n.GetName() != "" {
		return fmt.Sprintf("node %q (%s)", n.GetName(), n.GetOpType())
	}
	out := ""
	if len(n.GetOutput()) > 0 {
		out = n.GetOutput()[0]
	}
	return fmt.Sprintf("node #%d (%s, output %q)", i, n.GetOpType(), out)
}

// intHeap is a min-heap of ints.
type intHeap struct{ a []int }

func (h *intHeap) len() int { return len(h.a) }

func (h *intHeap) push(x int) {
	h.a = append(h.a, x)
	for i := len(h.a) - 1; i > 0; {
		p := (i - 1) / 2
		if h.a[p] <= h.a[i] {
			break
		}
		h.a[p], h.a[i] = h.a[i], h.a[p]
		i = p
	}
}

func (h *intHeap) pop() int {
	top := h.a[0]
	last := len(h.a) - 1
	h.a[0] = h.a[last]
	h.a = h.a[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && h.a[l] < h.a[m] {
			m = l
		}
		if r < last && h.a[r] < h.a[m] {
			m = r
		}
		if m == i {
			break
		}
		h.a[m], h.a[i] = h.a[i], h.a[m]
		i = m
	}
	return top
}

// Attr is n's attribute name, nil when it has none.
func Attr(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// AttrInt is n's int attribute name, or def when n has none.
func AttrInt(n *onnxpb.NodeProto, name string, def int64) int64 {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a.GetI()
		}
	}
	return def
}
