package prune

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// groups turns the union-find classes that have a producing Conv into
// Groups, ordered by their first producer in topological order.
func (a *analyzer) groups() *Analysis {
	type class struct {
		root      int
		first     int // topological rank of the first producer
		producers []int
		reason    string
	}
	classes := map[int]*class{}
	for s, sp := range a.spaces {
		if sp.producer < 0 {
			continue
		}
		r := a.find(s)
		c := classes[r]
		if c == nil {
			c = &class{root: r, first: a.order[sp.producer]}
			classes[r] = c
		}
		c.first = min(c.first, a.order[sp.producer])
		c.producers = append(c.producers, sp.producer)
	}
	for _, b := range a.blocks {
		if c := classes[a.find(b.space)]; c != nil && c.reason == "" {
			c.reason = b.reason
		}
	}
	list := make([]*class, 0, len(classes))
	for _, c := range classes {
		list = append(list, c)
	}
	slices.SortFunc(list, func(x, y *class) int { return x.first - y.first })

	res := &Analysis{model: a.m, Groups: make([]Group, len(list)), plans: make([]groupPlan, len(list))}
	id := map[int]int{} // root -> group ID
	for k, c := range list {
		id[c.root] = k
		byOrder := func(x, y int) int { return a.order[x] - a.order[y] }
		slices.SortFunc(c.producers, byOrder)
		g := Group{ID: k, Channels: a.spaces[c.root].n, Reason: c.reason}
		for _, p := range c.producers {
			g.Producers = append(g.Producers, nodeName(a.nodes[p], p))
			bn, ok := a.bnOf[p]
			if !ok {
				bn = -1
			}
			res.plans[k].producers = append(res.plans[k].producers, producerInfo{node: p, bn: bn})
		}
		if g.Reason == "" && g.Channels < 2 {
			g.Reason = "single channel"
		}
		g.Prunable = g.Reason == ""
		res.Groups[k] = g
	}
	collect := func(list []nodeSpace, dst func(*Group) *[]string) {
		seen := map[[2]int]bool{}
		sorted := slices.Clone(list)
		slices.SortStableFunc(sorted, func(x, y nodeSpace) int { return a.order[x.node] - a.order[y.node] })
		for _, ns := range sorted {
			k, ok := id[a.find(ns.space)]
			if !ok || seen[[2]int{k, ns.node}] {
				continue
			}
			seen[[2]int{k, ns.node}] = true
			p := dst(&res.Groups[k])
			*p = append(*p, nodeName(a.nodes[ns.node], ns.node))
		}
	}
	collect(a.readers, func(g *Group) *[]string { return &g.Consumers })
	collect(a.touched, func(g *Group) *[]string { return &g.Nodes })
	for _, u := range a.uses {
		if k, ok := id[a.find(u.space)]; ok {
			res.plans[k].uses = append(res.plans[k].uses, u.use)
		}
	}
	for _, t := range a.tensors {
		seen := map[int]bool{}
		for _, s := range a.layouts[t].segs {
			if k, ok := id[a.find(s.space)]; ok && !seen[k] {
				seen[k] = true
				res.plans[k].tensors = append(res.plans[k].tensors, t)
			}
		}
	}
	return res
}

// fingerprint hashes m's graph structure and initializer shapes, so that
// Apply can tell an Analysis of another model.
func fingerprint(m *onnxpb.ModelProto) [sha256.Size]byte {
	h := sha256.New()
	str := func(s string) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(len(s)))
		h.Write(b[:])
		h.Write([]byte(s))
	}
	gp := m.GetGraph()
	for _, n := range gp.GetNode() {
		str(n.GetOpType())
		str(n.GetDomain())
		str(n.GetName())
		str(fmt.Sprint(n.GetInput(), n.GetOutput()))
		for _, at := range n.GetAttribute() {
			if at.GetName() == "group" || at.GetName() == "axis" {
				str(fmt.Sprint(at.GetName(), at.GetI()))
			}
		}
	}
	for _, t := range gp.GetInitializer() {
		str(t.GetName())
		str(fmt.Sprint(t.GetDataType(), t.GetDims()))
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
