package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/hessian-spectra/runner/pipelines"
)

const dagHelp = `
Dag prints the spec's graph of stage instances, with edges labelled by input
name, as a Mermaid flowchart (paste into Markdown) or a Graphviz digraph
(dot -Tsvg). --stages draws one node per stage instead of per instance.`

type dagEdge struct{ from, to, label string }

func runDag(c *cli, args []string) int {
	cmd := findCommand("dag")
	fs := c.newFlags(cmd, dagHelp)
	format := fs.String("format", "mermaid", "mermaid or dot")
	byStage := fs.Bool("stages", false, "one node per stage, not per instance")
	var sf specFlags
	sf.add(fs)
	pos, code, ok := c.parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 || (*format != "mermaid" && *format != "dot") {
		fs.Usage()
		return exitUsage
	}
	pipes, ok := c.loadSpecs(pos, &sf)
	if !ok {
		return exitUsage
	}
	p := pipes[0]
	var nodes []string
	labels := map[string]string{}
	var edges []dagEdge
	if *byStage {
		seen := map[dagEdge]bool{}
		for _, st := range p.Stages {
			nodes = append(nodes, st.Name)
			labels[st.Name] = st.Name
			if n := len(st.Instances); n > 1 {
				labels[st.Name] = fmt.Sprintf("%s ×%d", st.Name, n)
			}
		}
		for _, inst := range p.Instances {
			for _, b := range inst.Inputs {
				for _, f := range b.From {
					e := dagEdge{f.Stage.Name, inst.Stage.Name, b.Name}
					if !seen[e] {
						seen[e] = true
						edges = append(edges, e)
					}
				}
			}
		}
	} else {
		for _, inst := range p.Instances {
			nodes = append(nodes, inst.ID)
			labels[inst.ID] = inst.ID
			for _, b := range inst.Inputs {
				for _, f := range b.From {
					edges = append(edges, dagEdge{f.ID, inst.ID, b.Name})
				}
			}
		}
	}
	if *format == "dot" {
		writeDot(c.stdout, p, nodes, labels, edges)
	} else {
		writeMermaid(c.stdout, nodes, labels, edges)
	}
	return exitOK
}

func writeMermaid(w io.Writer, nodes []string, labels map[string]string, edges []dagEdge) {
	ids := map[string]string{}
	fmt.Fprintln(w, "flowchart LR")
	for i, n := range nodes {
		ids[n] = "n" + strconv.Itoa(i)
		fmt.Fprintf(w, "  %s[\"%s\"]\n", ids[n], strings.ReplaceAll(labels[n], `"`, "#quot;"))
	}
	for _, e := range edges {
		fmt.Fprintf(w, "  %s -->|%s| %s\n", ids[e.from], e.label, ids[e.to])
	}
}

func writeDot(w io.Writer, p *pipelines.Pipeline, nodes []string, labels map[string]string, edges []dagEdge) {
	fmt.Fprintf(w, "digraph %s {\n  rankdir=LR;\n  node [shape=box];\n", strconv.Quote(p.Name))
	for _, n := range nodes {
		fmt.Fprintf(w, "  %s [label=%s];\n", strconv.Quote(n), strconv.Quote(labels[n]))
	}
	for _, e := range edges {
		fmt.Fprintf(w, "  %s -> %s [label=%s];\n", strconv.Quote(e.from), strconv.Quote(e.to), strconv.Quote(e.label))
	}
	fmt.Fprintln(w, "}")
}
