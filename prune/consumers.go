package prune

import (
	"fmt"
	"slices"
)

// RemovedInputs returns, for every group-1 Conv whose input channels the
// removal plan cuts, the indices of its input channels (its weight's axis 1,
// in the unpruned model's numbering, Concat offsets applied) that go, sorted:
// what a reconstruction of that Conv must do without.
func (a *Analysis) RemovedInputs(remove map[int][]int) (map[string][]int, error) {
	return a.removed(remove, axisCols)
}

// RemovedOutputs returns, for every Conv whose output channels (weight
// rows) the removal plan cuts, the indices that go, sorted.
func (a *Analysis) RemovedOutputs(remove map[int][]int) (map[string][]int, error) {
	return a.removed(remove, axisRows)
}

func (a *Analysis) removed(remove map[int][]int, axis int) (map[string][]int, error) {
	nodes := a.model.GetGraph().GetNode()
	out := map[string][]int{}
	for id, idx := range remove {
		if id < 0 || id >= len(a.plans) {
			return nil, fmt.Errorf("removed inputs: no group %d", id)
		}
		for _, u := range a.plans[id].uses {
			if u.axis != axis || u.input != 1 || nodes[u.node].GetOpType() != "Conv" {
				continue
			}
			name := nodeName(nodes[u.node], u.node)
			for _, i := range idx {
				out[name] = append(out[name], u.offset+i)
			}
		}
	}
	for name, idx := range out {
		slices.Sort(idx)
		out[name] = slices.Compact(idx)
	}
	return out, nil
}
