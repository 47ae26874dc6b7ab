package cpu

// simplify rewrites the graph before lowering; it returns the nodes in
// topological order.
func simplify(nodes []*node, outs []*node) []*node { return nodes }
