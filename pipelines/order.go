package pipelines

import "strings"

// order sorts the instances topologically (Kahn's algorithm, taking ready
// instances in spec order) and reports a cycle if there is one.
func (b *builder) order() {
	var all []*Instance
	for _, st := range b.p.Stages {
		all = append(all, st.Instances...)
	}
	pos := make(map[*Instance]int, len(all))
	for i, inst := range all {
		pos[inst] = i
	}
	indeg := make([]int, len(all))
	users := make([][]int, len(all))
	for i, inst := range all {
		indeg[i] = len(inst.Deps)
		for _, f := range inst.Deps {
			users[pos[f]] = append(users[pos[f]], i)
		}
	}
	queue := make([]int, 0, len(all))
	for i := range all {
		if indeg[i] == 0 {
			queue = append(queue, i)
		}
	}
	out := make([]*Instance, 0, len(all))
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		all[i].Index = len(out)
		out = append(out, all[i])
		for _, u := range users[i] {
			indeg[u]--
			if indeg[u] == 0 {
				queue = append(queue, u)
			}
		}
	}
	if len(out) == len(all) {
		b.p.Instances = out
		return
	}
	// A cycle: walk inputs from a stuck instance until one repeats.
	var start *Instance
	for i, d := range indeg {
		if d > 0 {
			start = all[i]
			break
		}
	}
	path := []*Instance{start}
	onPath := map[*Instance]int{start: 0}
	cur := start
	for {
		var next *Instance
		for _, f := range cur.Deps {
			if indeg[pos[f]] > 0 {
				next = f
				break
			}
		}
		if next == nil {
			break
		}
		if at, ok := onPath[next]; ok {
			cycle := path[at:]
			ids := make([]string, 0, len(cycle)+1)
			for _, c := range cycle {
				ids = append(ids, c.ID)
			}
			ids = append(ids, cycle[0].ID)
			b.errs.add(cycle[0].Stage.Pos, "cycle in needs (each needs the next): %s", strings.Join(ids, " → "))
			return
		}
		onPath[next] = len(path)
		path = append(path, next)
		cur = next
	}
	b.errs.add(start.Stage.Pos, "cycle in needs involving %s", start.ID)
}
