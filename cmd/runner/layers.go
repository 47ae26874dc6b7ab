package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/hessian-spectra/runner/models/onnxmodel"
)

const layersHelp = `
Layers reads an ONNX model (an .onnx file, or a folder holding one and its
external data) as the snapshot kind imports it and lists its trainable
parameters — the Hessian targets a lanczos stage's layer: names, besides
full — with their shapes and uses, marking the layers (the weights of Conv,
Gemm and MatMul nodes), then the batch-norm statistics held fixed and what
the import noticed (names that look machine-generated, untied copies). It
fails, naming them, on ops the importer does not convert.`

func runLayers(c *cli, args []string) int {
	cmd := findCommand("layers")
	fs := c.newFlags(cmd, layersHelp+"\n\nThe ops the importer converts: "+strings.Join(onnxmodel.SupportedOps(), ", ")+".")
	files, code, ok := c.parse(fs, args)
	if !ok {
		return code
	}
	if len(files) != 1 {
		fs.SetOutput(c.stderr)
		fs.Usage()
		return exitUsage
	}
	m, err := onnxmodel.Open(files[0])
	if err != nil {
		fmt.Fprintf(c.stderr, "runner layers: %v\n", err)
		return exitFailed
	}
	w := c.stdout
	fmt.Fprintf(w, "%s: %s, ONNX opset %d; input %s, output %s\n", m.Path(), m.Producer(), m.Opset(), m.InputString(), m.OutputString())
	counts := m.Ops()
	var ops []string
	for _, op := range slices.Sorted(maps.Keys(counts)) {
		ops = append(ops, fmt.Sprintf("%s %d", op, counts[op]))
	}
	fmt.Fprintf(w, "ops: %s\n\n", strings.Join(ops, ", "))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARAM\tSHAPE\tSIZE\tLAYER\tUSED BY")
	total := 0
	params, layers := m.Params(), m.Layers()
	for _, e := range params {
		layer := ""
		if slices.Contains(layers, e.Name) {
			layer = "layer"
		}
		fmt.Fprintf(tw, "%s\t%v\t%d\t%s\t%s\n", e.Name, e.Shape, e.Size(), layer, strings.Join(m.Uses(e.Name), ", "))
		total += e.Size()
	}
	tw.Flush()
	fmt.Fprintf(w, "%d parameters in %d tensors; lanczos layer: full, or any PARAM above\n", total, len(params))
	if bufs := m.Buffers(); len(bufs) > 0 {
		var names []string
		for _, e := range bufs {
			names = append(names, e.Name)
		}
		fmt.Fprintf(w, "batch-norm running statistics (fixed; used with bn_mode eval): %s\n", strings.Join(names, ", "))
	}
	for _, n := range m.Notes() {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return exitOK
}
