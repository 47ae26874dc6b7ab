package models

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/npz"
)

// Weights are the values of a model's state_dict, held as GoMLX tensors so
// that they can be fed to and taken from graph executions without copies.
type Weights struct {
	// Model is the architecture the weights belong to.
	Model *Model
	// DType is Float32 or Float64; every tensor of Params and Buffers has it.
	DType dtypes.DType
	// Params holds the trainable tensors in Model.Params order.
	Params []*tensors.Tensor
	// Buffers holds the batch-norm running statistics in Model.Buffers order.
	Buffers []*tensors.Tensor
	// Batches holds each batch-norm layer's num_batches_tracked, in
	// Model.Counters order.
	Batches []int64
}

func checkDType(dtype dtypes.DType) error {
	if dtype != dtypes.Float32 && dtype != dtypes.Float64 {
		return fmt.Errorf("models: dtype %s: want float32 or float64", dtype)
	}
	return nil
}

// Init returns the seed's initialisation of m drawn from a seeded RNG: for
// LeNet PyTorch's defaults (U(±1/√fan_in) for weights and biases); for the
// VGGs conv weights N(0, 2/(9·out)), zero conv biases, linear weights
// N(0, 0.01²) and zero biases; for ResNet18 conv weights N(0, 2/(k²·out)) and
// PyTorch's default for fc. Batch norm starts at γ=1, β=0, running mean 0,
// variance 1, no batches tracked. Values are drawn in float64, in state_dict
// order, then converted to dtype. The RNG is ours, not torch's: the same seed
// gives the same weights here on every platform, not PyTorch's.
func (m *Model) Init(seed uint64, dtype dtypes.DType) (*Weights, error) {
	if err := checkDType(dtype); err != nil {
		return nil, err
	}
	s := newSampler(seed)
	w := &Weights{Model: m, DType: dtype, Batches: make([]int64, len(m.counters))}
	for _, e := range m.state {
		if e.Kind == Counter {
			continue
		}
		v := make([]float64, e.Size())
		s.fill(e.init, v)
		t := newTensor(v, dtype, e.Shape)
		if e.Kind == Param {
			w.Params = append(w.Params, t)
		} else {
			w.Buffers = append(w.Buffers, t)
		}
	}
	return w, nil
}

// fromValues builds Weights from float64 values in state order.
func (m *Model) fromValues(values [][]float64, batches []int64, dtype dtypes.DType) *Weights {
	w := &Weights{Model: m, DType: dtype, Batches: batches}
	for _, j := range m.params {
		w.Params = append(w.Params, newTensor(values[j], dtype, m.state[j].Shape))
	}
	for _, j := range m.buffers {
		w.Buffers = append(w.Buffers, newTensor(values[j], dtype, m.state[j].Shape))
	}
	return w
}

func newTensor(v []float64, dtype dtypes.DType, shape []int) *tensors.Tensor {
	if dtype == dtypes.Float64 {
		return tensors.FromFlatDataAndDimensions(slices.Clone(v), shape...)
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return tensors.FromFlatDataAndDimensions(f, shape...)
}

// values returns a float tensor's data as float64.
func values(t *tensors.Tensor) ([]float64, error) {
	switch t.DType() {
	case dtypes.Float64:
		return tensors.CopyFlatData[float64](t)
	case dtypes.Float32:
		f, err := tensors.CopyFlatData[float32](t)
		if err != nil {
			return nil, err
		}
		out := make([]float64, len(f))
		for i, x := range f {
			out[i] = float64(x)
		}
		return out, nil
	}
	return nil, fmt.Errorf("tensor of dtype %s", t.DType())
}

// check verifies that w's tensors match its model and dtype.
func (w *Weights) check() error {
	m := w.Model
	if err := checkDType(w.DType); err != nil {
		return err
	}
	if len(w.Params) != len(m.params) || len(w.Buffers) != len(m.buffers) || len(w.Batches) != len(m.counters) {
		return fmt.Errorf("models: %s weights have %d params, %d buffers, %d counters; want %d, %d, %d",
			m.name, len(w.Params), len(w.Buffers), len(w.Batches), len(m.params), len(m.buffers), len(m.counters))
	}
	for _, set := range []struct {
		idx []int
		ts  []*tensors.Tensor
	}{{m.params, w.Params}, {m.buffers, w.Buffers}} {
		for i, j := range set.idx {
			e, t := m.state[j], set.ts[i]
			if t == nil || !slices.Equal(t.Shape().Dimensions, e.Shape) || t.DType() != w.DType {
				return fmt.Errorf("models: %s weights: %s is %v, want %s%v", m.name, e.Name, shapeOf(t), w.DType, e.Shape)
			}
		}
	}
	return nil
}

// stateValues returns the float64 values of every non-counter entry in state
// order (nil for counters).
func (w *Weights) stateValues() ([][]float64, error) {
	if err := w.check(); err != nil {
		return nil, err
	}
	m := w.Model
	out := make([][]float64, len(m.state))
	for _, set := range []struct {
		idx []int
		ts  []*tensors.Tensor
	}{{m.params, w.Params}, {m.buffers, w.Buffers}} {
		for i, j := range set.idx {
			v, err := values(set.ts[i])
			if err != nil {
				return nil, fmt.Errorf("models: %s weights: %s: %w", m.name, m.state[j].Name, err)
			}
			out[j] = v
		}
	}
	return out, nil
}

func shapeOf(t *tensors.Tensor) any {
	if t == nil {
		return "missing"
	}
	return t.Shape()
}

// Arrays returns the state_dict as named arrays in registration order, in
// PyTorch's layouts: params and buffers in the weights' dtype, counters as
// int64 scalars (what PyTorch's strict load_state_dict expects).
func (w *Weights) Arrays() ([]npz.Named, error) {
	if err := w.check(); err != nil {
		return nil, err
	}
	m := w.Model
	tensorOf := map[int]*tensors.Tensor{}
	for i, j := range m.params {
		tensorOf[j] = w.Params[i]
	}
	for i, j := range m.buffers {
		tensorOf[j] = w.Buffers[i]
	}
	out := make([]npz.Named, 0, len(m.state))
	c := 0
	for j, e := range m.state {
		a := &npz.Array{Shape: slices.Clone(e.Shape)}
		if e.Kind == Counter {
			a.Data = []int64{w.Batches[c]}
			c++
		} else {
			var err error
			if w.DType == dtypes.Float64 {
				a.Data, err = tensors.CopyFlatData[float64](tensorOf[j])
			} else {
				a.Data, err = tensors.CopyFlatData[float32](tensorOf[j])
			}
			if err != nil {
				return nil, fmt.Errorf("models: %s weights: %s: %w", m.name, e.Name, err)
			}
		}
		out = append(out, npz.Named{Name: e.Name, Array: a})
	}
	return out, nil
}

// WriteFile writes the state_dict to path as an .npz archive (atomically):
// numpy.load reads it, and in PyTorch
// model.load_state_dict({k: torch.from_numpy(v) for k, v in np.load(path).items()})
// loads it.
func (w *Weights) WriteFile(path string) error {
	arrays, err := w.Arrays()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return npz.WriteFile(path, arrays)
}

// ReadWeights reads a state_dict .npz (ours, or one exported from PyTorch)
// for m and converts it to dtype. See FromArchive for what it checks.
func (m *Model) ReadWeights(path string, dtype dtypes.DType) (*Weights, error) {
	ar, err := npz.ReadFile(path)
	if err != nil {
		return nil, err
	}
	w, err := m.FromArchive(ar, dtype)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return w, nil
}

// FromArchive takes m's state_dict out of an .npz archive, converting every
// float entry to dtype. Every param and buffer must be present with its exact
// PyTorch shape; num_batches_tracked may be absent (then 0). An archive whose
// every name starts with "module." (saved from nn.DataParallel) is read
// without that prefix. Names that m does not have are an error. The error
// lists every missing, unexpected and misshapen tensor.
func (m *Model) FromArchive(ar *npz.Archive, dtype dtypes.DType) (*Weights, error) {
	if err := checkDType(dtype); err != nil {
		return nil, err
	}
	arrays := ar.Arrays
	if len(ar.Names) > 0 && allPrefixed(ar.Names, "module.") {
		arrays = map[string]*npz.Array{}
		for _, n := range ar.Names {
			arrays[strings.TrimPrefix(n, "module.")] = ar.Arrays[n]
		}
	}
	var problems []string
	known := map[string]bool{}
	values := make([][]float64, len(m.state))
	batches := make([]int64, 0, len(m.counters))
	for j, e := range m.state {
		known[e.Name] = true
		a, ok := arrays[e.Name]
		if !ok {
			if e.Kind == Counter {
				batches = append(batches, 0)
				continue
			}
			problems = append(problems, fmt.Sprintf("missing %q %v", e.Name, e.Shape))
			continue
		}
		if !slices.Equal(a.Shape, e.Shape) && !(e.Kind == Counter && a.Len() == 1) {
			problems = append(problems, fmt.Sprintf("%q is %v, want %v", e.Name, a.Shape, e.Shape))
			continue
		}
		if e.Kind == Counter {
			n, err := a.Int64s()
			if err != nil {
				problems = append(problems, fmt.Sprintf("%q: %v", e.Name, err))
				continue
			}
			batches = append(batches, n[0])
			continue
		}
		if _, isBool := a.Data.([]bool); isBool {
			problems = append(problems, fmt.Sprintf("%q is boolean, want floats", e.Name))
			continue
		}
		values[j] = a.Float64s()
	}
	names := make([]string, 0, len(arrays))
	for n := range arrays {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if !known[n] {
			problems = append(problems, fmt.Sprintf("unexpected %q %v", n, arrays[n].Shape))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("not a %s state_dict (%d input channels, %d classes): %s",
			m.name, m.inChannels, m.classes, strings.Join(problems, "; "))
	}
	return m.fromValues(values, batches, dtype), nil
}

func allPrefixed(names []string, prefix string) bool {
	for _, n := range names {
		if !strings.HasPrefix(n, prefix) {
			return false
		}
	}
	return true
}

// Convert returns a copy of w in dtype (float32 or float64).
func (w *Weights) Convert(dtype dtypes.DType) (*Weights, error) {
	if err := checkDType(dtype); err != nil {
		return nil, err
	}
	vals, err := w.stateValues()
	if err != nil {
		return nil, err
	}
	return w.Model.fromValues(vals, slices.Clone(w.Batches), dtype), nil
}

// Clone returns a deep copy of w.
func (w *Weights) Clone() (*Weights, error) { return w.Convert(w.DType) }

// UpdateBuffers replaces the running statistics with those a training-mode
// Forward returned and counts one more batch in every num_batches_tracked, as
// one PyTorch forward pass in train mode does.
func (w *Weights) UpdateBuffers(buffers []*tensors.Tensor) error {
	if len(buffers) != len(w.Buffers) {
		return fmt.Errorf("models: %s: got %d buffers, want %d", w.Model.name, len(buffers), len(w.Buffers))
	}
	for i, b := range buffers {
		e := w.Model.state[w.Model.buffers[i]]
		if b == nil || !slices.Equal(b.Shape().Dimensions, e.Shape) || b.DType() != w.DType {
			return fmt.Errorf("models: %s: new %s is %v, want %s%v", w.Model.name, e.Name, shapeOf(b), w.DType, e.Shape)
		}
	}
	copy(w.Buffers, buffers)
	for i := range w.Batches {
		w.Batches[i]++
	}
	return nil
}

// Finalize releases the tensors' memory (on device too) now rather than at
// garbage collection. w must not be used afterwards.
func (w *Weights) Finalize() error {
	var errs []error
	for _, t := range slices.Concat(w.Params, w.Buffers) {
		if t != nil {
			errs = append(errs, t.FinalizeAll())
		}
	}
	return errors.Join(errs...)
}
