package onnxmodel

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's idiom.

	"github.com/hessian-spectra/runner/models"
)

// ModelName is the name an imported network goes by in artifacts (a
// snapshot's meta.json "model", a lanczos summary's "model").
const ModelName = "ONNX"

// Model is a network read from an ONNX file: a graph function of explicit
// parameter nodes, like models.Model. It is immutable and safe for
// concurrent use.
type Model struct {
	path    string
	f       *file
	input   valueInfo
	output  valueInfo
	state   []models.Entry // params and buffers, in order of first use
	params  []int          // indices into state, Kind Param
	buffers []int          // indices into state, Kind Buffer
	layers  []string
	values  map[string]*tensor // every initializer, by name, after untying
	uses    map[string][]string
	nodes   []*graphNode // the nodes to convert (untied Identity nodes removed)
	notes   []string
}

// Open reads the ONNX model at path: an .onnx file, or a folder holding
// exactly one .onnx file (with its external data files, if any). It checks
// everything that can be checked without data: every op has a conversion,
// the model has one input and one output, external data files exist, and a
// forward pass builds for one example of the declared input shape (when
// that shape is fully known apart from the batch axis) with an output of
// shape [batch, classes].
func Open(path string) (*Model, error) {
	p, err := modelFile(path)
	if err != nil {
		return nil, err
	}
	f, err := readFile(p)
	if err != nil {
		return nil, err
	}
	m, err := newModel(f)
	if err != nil {
		return nil, err
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m, nil
}

// IsModelPath reports whether path names an ONNX model as Open takes it:
// a file whose name ends in .onnx, or a folder holding .onnx files.
func IsModelPath(path string) bool {
	if strings.EqualFold(filepath.Ext(path), ".onnx") {
		return true
	}
	st, err := os.Stat(path)
	if err != nil || !st.IsDir() {
		return false
	}
	found, _ := filepath.Glob(filepath.Join(path, "*.onnx"))
	return len(found) > 0
}

// modelFile returns the .onnx file path names: path itself, or the only
// .onnx file in the folder path.
func modelFile(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return path, nil
	}
	found, err := filepath.Glob(filepath.Join(path, "*.onnx"))
	if err != nil {
		return "", err
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%s: a folder without an .onnx file", path)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%s: a folder with %d .onnx files (%s); want one", path, len(found), strings.Join(baseNames(found), ", "))
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

// newModel interprets a parsed file: unties deduplicated initializers,
// classifies the initializers into parameters, batch-norm statistics and
// constants, and checks the ops and the graph's inputs and outputs.
func newModel(f *file) (*Model, error) {
	m := &Model{path: f.path, f: f, values: map[string]*tensor{}, uses: map[string][]string{}}
	for _, t := range f.inits {
		if _, dup := m.values[t.name]; dup {
			return nil, fmt.Errorf("%s: two initializers named %q", f.path, t.name)
		}
		m.values[t.name] = t
	}
	if err := m.checkOps(); err != nil {
		return nil, err
	}
	m.untie()
	if err := m.findIO(); err != nil {
		return nil, err
	}
	if err := m.classify(); err != nil {
		return nil, err
	}
	m.findLayers()
	if gen := m.generatedNames(); len(gen) > 0 {
		m.notes = append(m.notes, fmt.Sprintf("%d of %d weights have machine-generated names (%s): PyTorch's state_dict names were lost, probably to batch norm folded into convolutions or to constant folding; export with training=torch.onnx.TrainingMode.PRESERVE on an eval() model and do_constant_folding=False (see README, \"Your own model\")",
			len(gen), len(m.params), strings.Join(firstN(gen, 3), ", ")))
	}
	return m, nil
}

// untie takes the file's nodes into the model, but for the Identity copies
// of initializers. PyTorch's exporter replaces an initializer equal to an
// earlier one (e.g. two zero biases, or fresh batch-norm statistics) by an
// Identity of it. Those were distinct tensors in PyTorch: each gets its own
// copy under its own name, so that the Hessian sees distinct parameters.
func (m *Model) untie() {
	untied := 0
	for _, n := range m.f.nodes {
		if n.op == "Identity" && len(n.in) == 1 && len(n.out) == 1 && m.values[n.in[0]] != nil && m.values[n.out[0]] == nil {
			src := m.values[n.in[0]]
			cp := *src
			cp.name, cp.f, cp.i = n.out[0], slices.Clone(src.f), slices.Clone(src.i)
			m.values[cp.name] = &cp
			untied++
			continue
		}
		m.nodes = append(m.nodes, n)
	}
	if untied > 0 {
		m.notes = append(m.notes, fmt.Sprintf("%d initializers were exported as Identity copies of equal ones (PyTorch's de-duplication); each is a tensor of its own here", untied))
	}
}

// findIO finds the model's one data input, the batch, and its one output,
// the logits.
func (m *Model) findIO() error {
	f := m.f
	var data []valueInfo
	for _, in := range f.inputs {
		if m.values[in.name] == nil { // keep_initializers_as_inputs lists initializers as inputs too
			data = append(data, in)
		}
	}
	if len(data) != 1 {
		return fmt.Errorf("%s: the model has %d data inputs (%s); want one, the batch", f.path, len(data), infoNames(data))
	}
	if len(f.outputs) != 1 {
		return fmt.Errorf("%s: the model has %d outputs (%s); want one, the logits", f.path, len(f.outputs), infoNames(f.outputs))
	}
	m.input, m.output = data[0], f.outputs[0]
	if m.input.dtype != dtypes.InvalidDType && !m.input.dtype.IsFloat() {
		return fmt.Errorf("%s: input %s is %s; want floating-point inputs", f.path, m.input.name, m.input.dtype)
	}
	if len(m.input.dims) == 0 {
		return fmt.Errorf("%s: input %s is a scalar; want a batch [N, …]", f.path, m.input.name)
	}
	if m.input.dims[0] > 0 {
		m.notes = append(m.notes, fmt.Sprintf("the file fixes the batch size to %d (input %s); the importer feeds other sizes, which fails where the graph bakes that size in (a Reshape to it): export with dynamic_axes={%q: {0: \"batch\"}, …}",
			m.input.dims[0], m.InputString(), m.input.name))
	}
	return nil
}

// classify sorts the floating-point initializers by their uses into
// parameters (read by computations) and batch-norm running statistics, in
// the order the graph first reads them: PyTorch's registration order for a
// forward pass that follows it, whatever the exporter's de-duplication
// moved. Integer constants and unused initializers are neither.
func (m *Model) classify() error {
	kinds := m.initializerUses()
	var byUse []string
	seen := map[string]bool{}
	for _, n := range m.nodes {
		for _, in := range n.in {
			if m.values[in] != nil && !seen[in] {
				seen[in] = true
				byUse = append(byUse, in)
			}
		}
	}
	for _, name := range byUse {
		t, k := m.values[name], kinds[name]
		switch {
		case k == nil || !t.isFloat():
			continue // unused, or an integer constant
		case k["dynamic"] && k["stat"]:
			return fmt.Errorf("%s: initializer %q is used both as a batch-norm running statistic and as a weight", m.path, name)
		case k["dynamic"] && k["static"]:
			return fmt.Errorf("%s: initializer %q is used both as a weight and as a shape or constant argument (%s)", m.path, name, strings.Join(m.uses[name], ", "))
		case k["dynamic"]:
			m.params = append(m.params, len(m.state))
			m.state = append(m.state, models.Entry{Name: name, Shape: slices.Clone(t.shape), Kind: models.Param})
		case k["stat"]:
			m.buffers = append(m.buffers, len(m.state))
			m.state = append(m.state, models.Entry{Name: name, Shape: slices.Clone(t.shape), Kind: models.Buffer})
		}
	}
	if len(m.params) == 0 {
		return fmt.Errorf("%s: the model has no weights (no floating-point initializer feeds a computation); export it with export_params=True", m.path)
	}
	return nil
}

// initializerUses records in m.uses every use of an initializer and
// returns, by name, the kinds of use: "dynamic" (computed with), "static"
// (a shape or constant argument), "stat" (a batch-norm running statistic).
func (m *Model) initializerUses() map[string]map[string]bool {
	kinds := map[string]map[string]bool{}
	mark := func(name, kind, use string) {
		if kinds[name] == nil {
			kinds[name] = map[string]bool{}
		}
		kinds[name][kind] = true
		m.uses[name] = append(m.uses[name], use)
	}
	for _, n := range m.nodes {
		spec := ops[n.op]
		for slot, in := range n.in {
			if in == "" || m.values[in] == nil {
				continue
			}
			use := fmt.Sprintf("%s input %d", n.op, slot)
			switch {
			case slices.Contains(spec.static, slot):
				mark(in, "static", use)
			case n.op == "BatchNormalization" && (slot == 3 || slot == 4):
				mark(in, "stat", use)
			default:
				mark(in, "dynamic", use)
			}
		}
	}
	return kinds
}

// findLayers lists the layers: the weights of Conv, Gemm and MatMul nodes,
// MatMul's possibly through the Transpose PyTorch exports for a Linear on a
// batch of sequences (x @ weight.T).
func (m *Model) findLayers() {
	transposed := map[string]string{}
	for _, n := range m.nodes {
		if n.op == "Transpose" && m.isParam(n.in[0]) {
			transposed[n.out[0]] = n.in[0]
		}
	}
	for _, n := range m.nodes {
		var cands []string
		switch n.op {
		case "Conv", "Gemm":
			if len(n.in) > 1 {
				cands = n.in[1:2]
			}
		case "MatMul":
			for _, in := range n.in {
				if p, ok := transposed[in]; ok {
					in = p
				}
				cands = append(cands, in)
			}
		}
		for _, w := range cands {
			if m.isParam(w) && !slices.Contains(m.layers, w) {
				m.layers = append(m.layers, w)
			}
		}
	}
}

func infoNames(vs []valueInfo) string {
	if len(vs) == 0 {
		return "none"
	}
	var s []string
	for _, v := range vs {
		s = append(s, v.name+" "+v.String())
	}
	return strings.Join(s, ", ")
}

func firstN(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(slices.Clone(s[:n]), "…")
}

// generatedRE matches the names PyTorch's exporter makes up for tensors it
// created or renamed: "onnx::Conv_39", "/conv1/Conv_output_0", "123".
var generatedRE = regexp.MustCompile(`::|^/|^[0-9]+$|_output_[0-9]+$`)

// generatedNames lists the parameters whose names look machine-made.
func (m *Model) generatedNames() []string {
	var out []string
	for _, j := range m.params {
		if generatedRE.MatchString(m.state[j].Name) {
			out = append(out, m.state[j].Name)
		}
	}
	return out
}

// isParam reports whether name is a trainable parameter.
func (m *Model) isParam(name string) bool { return name != "" && m.ParamIndex(name) >= 0 }

// checkOps fails, naming every op without a conversion, when the graph has
// any.
func (m *Model) checkOps() error {
	count := map[string]int{}
	for _, n := range m.f.nodes {
		op := n.op
		if n.domain != "" && n.domain != "ai.onnx" {
			op = n.domain + "." + n.op
		} else if _, ok := ops[n.op]; ok {
			continue
		}
		count[op]++
	}
	if len(count) == 0 {
		return nil
	}
	var names []string
	for op, c := range count {
		names = append(names, fmt.Sprintf("%s (%d %s)", op, c, plural(c, "node", "nodes")))
	}
	sort.Strings(names)
	return fmt.Errorf("%s: unsupported ONNX %s %s; `runner help layers` lists the ops the importer converts",
		m.path, plural(len(names), "op", "ops"), strings.Join(names, ", "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Path is the file the model was read from.
func (m *Model) Path() string { return m.path }

// Opset is the version of the standard ONNX operator set the file uses.
func (m *Model) Opset() int64 { return m.f.opset }

// Producer names the program that wrote the file, e.g. "pytorch 1.13.0".
func (m *Model) Producer() string { return m.f.producer }

// External lists the external data files the weights were read from,
// relative to the model's folder (none for a self-contained file).
func (m *Model) External() []string { return slices.Clone(m.f.external) }

// Input is the name of the model's data input.
func (m *Model) Input() string { return m.input.name }

// InputShape is the shape of one example as the file declares it (the
// input's dimensions after the batch axis); -1 marks a dimension the file
// leaves symbolic.
func (m *Model) InputShape() []int {
	if len(m.input.dims) == 0 {
		return nil
	}
	return slices.Clone(m.input.dims[1:])
}

// InputString is the declared input shape, e.g. "x [batch, 1, 32, 32]".
func (m *Model) InputString() string { return m.input.name + " " + m.input.String() }

// OutputString is the declared output shape, e.g. "logits [batch, 10]".
func (m *Model) OutputString() string { return m.output.name + " " + m.output.String() }

// State lists the parameters and batch-norm running statistics in the
// order the graph first reads them (PyTorch's registration order, for a
// forward pass that follows it).
func (m *Model) State() []models.Entry { return slices.Clone(m.state) }

// Params lists the trainable parameters (every floating-point initializer
// a computation reads, batch-norm running statistics excepted): the order
// of Forward's params argument and of Weights.Params.
func (m *Model) Params() []models.Entry { return m.pick(m.params) }

// Buffers lists the batch-norm running statistics: the order of Forward's
// buffers argument and of Weights.Buffers.
func (m *Model) Buffers() []models.Entry { return m.pick(m.buffers) }

func (m *Model) pick(idx []int) []models.Entry {
	out := make([]models.Entry, len(idx))
	for i, j := range idx {
		out[i] = m.state[j]
	}
	return out
}

// Layers lists the weights of the model's Conv, Gemm and MatMul nodes, in
// graph order: the analogue of the seed's "valid layers" (every parameter
// is a valid Hessian target all the same).
func (m *Model) Layers() []string { return slices.Clone(m.layers) }

// Uses describes how a parameter is used, e.g. ["Conv input 1"].
func (m *Model) Uses(name string) []string { return slices.Clone(m.uses[name]) }

// ParamIndex returns the position of the named parameter in Params, or -1.
func (m *Model) ParamIndex(name string) int {
	for i, j := range m.params {
		if m.state[j].Name == name {
			return i
		}
	}
	return -1
}

// Notes are remarks about the import a user should see: untied
// de-duplicated initializers, names that look machine-generated.
func (m *Model) Notes() []string { return slices.Clone(m.notes) }

// Ops counts the model's nodes by op type.
func (m *Model) Ops() map[string]int {
	out := map[string]int{}
	for _, n := range m.nodes {
		out[n.op]++
	}
	return out
}

// Classes is the size of the output's last axis as declared (-1 when the
// file leaves it symbolic), the number of logits.
func (m *Model) Classes() int {
	if len(m.output.dims) != 2 {
		return -1
	}
	return m.output.dims[1]
}

// Marshal returns the model as a self-contained ONNX file (external data
// inlined): the file's own bytes when it has no external data.
func (m *Model) Marshal() ([]byte, error) {
	if len(m.f.external) == 0 {
		return os.ReadFile(m.path)
	}
	return m.f.marshal()
}

// CheckData checks that the model takes examples of shape example and
// returns one logit per class of the data: it builds the forward pass for
// one example and compares the output with [1, classes] (the output may
// have more logits than the data has classes, as the seed's SVHN models do,
// but not fewer). Errors are one line, naming both shapes.
func (m *Model) CheckData(example []int, classes int) error {
	want := m.InputShape()
	mismatch := len(want) != len(example)
	for i := range want {
		if !mismatch && want[i] >= 0 && want[i] != example[i] {
			mismatch = true
		}
	}
	if mismatch {
		return fmt.Errorf("the model's input %s does not take the data's examples of shape %v (a batch is [N %s])",
			m.InputString(), example, strings.Trim(fmt.Sprint(example), "[]"))
	}
	out, err := m.outputShape(example)
	if err != nil {
		return err
	}
	if len(out) != 2 || out[0] != 1 {
		return fmt.Errorf("the model's output %s is %v for one example; want logits [1, classes]", m.output.name, out)
	}
	if out[1] < classes {
		return fmt.Errorf("the model has %d outputs but the data has %d classes (labels 0…%d); want one logit per class", out[1], classes, classes-1)
	}
	return nil
}

// check builds the forward pass for one example of the declared input
// shape, when it is known, and checks the output's shape.
func (m *Model) check() error {
	example := m.InputShape()
	if slices.Contains(example, -1) || m.input.dims == nil {
		return nil // checked with the data (CheckData)
	}
	out, err := m.outputShape(example)
	if err != nil {
		return err
	}
	if len(out) != 2 {
		return fmt.Errorf("%s: the model's output %s is %v for a batch of 1; want logits [batch, classes]", m.path, m.output.name, out)
	}
	return nil
}

// outputShape builds the forward pass for one example and returns the
// output's shape.
func (m *Model) outputShape(example []int) (out []int, err error) {
	g := NewGraph(shapeBackend(), "onnx-check")
	defer g.Finalize()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %v", m.path, r)
			if e, ok := r.(error); ok {
				err = fmt.Errorf("%s: %w", m.path, e)
			}
		}
	}()
	params := make([]*Node, len(m.params))
	for i, e := range m.Params() {
		params[i] = Parameter(g, e.Name, shapeOf(dtypes.Float32, e.Shape))
	}
	buffers := make([]*Node, len(m.buffers))
	for i, e := range m.Buffers() {
		buffers[i] = Parameter(g, e.Name, shapeOf(dtypes.Float32, e.Shape))
	}
	x := Parameter(g, "x", shapeOf(dtypes.Float32, append([]int{1}, example...)))
	y := m.Forward(params, buffers, x, false)
	return y.Shape().Dimensions, nil
}
