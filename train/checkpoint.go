package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/models"
	"github.com/hessian-spectra/runner/npz"
)

// CheckpointPath returns the path of epoch's weights under a train artifact
// dir: dir/checkpoints/epoch_NNNN.npz (0000 = initialisation).
func CheckpointPath(dir string, epoch int) string {
	return filepath.Join(dir, CheckpointsDir, fmt.Sprintf("epoch_%04d.npz", epoch))
}

// OptimizerPath returns the path of epoch's optimizer state beside its
// weights: dir/checkpoints/epoch_NNNN.optim.npz.
func OptimizerPath(dir string, epoch int) string {
	return filepath.Join(dir, CheckpointsDir, fmt.Sprintf("epoch_%04d.optim.npz", epoch))
}

// CheckpointEpochs lists, ascending, the epochs a run of epochs epochs with
// snapshot_every every checkpoints (Run's rule): the initialisation (0) and
// every every-th epoch when every > 0, and always the last epoch.
func CheckpointEpochs(epochs, every int) []int {
	var out []int
	if every > 0 {
		for e := 0; e < epochs; e += every {
			out = append(out, e)
		}
	}
	return append(out, epochs)
}

// Checkpoints lists the epochs a train artifact dir holds weights of, in
// increasing order.
func Checkpoints(dir string) ([]int, error) {
	entries, err := os.ReadDir(filepath.Join(dir, CheckpointsDir))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var epochs []int
	for _, e := range entries {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, "epoch_")
		if !ok || strings.HasSuffix(name, ".optim.npz") {
			continue
		}
		num, ok := strings.CutSuffix(rest, ".npz")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(num); err == nil && n >= 0 {
			epochs = append(epochs, n)
		}
	}
	slices.Sort(epochs)
	return epochs, nil
}

// WriteCheckpoint writes the current weights and optimizer state as epoch's
// checkpoint under dir (CheckpointPath, OptimizerPath), each file atomically.
func (t *Trainer) WriteCheckpoint(dir string, epoch int) error {
	if err := os.MkdirAll(filepath.Join(dir, CheckpointsDir), 0o755); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	if err := t.w.WriteFile(CheckpointPath(dir, epoch)); err != nil {
		return fmt.Errorf("train: checkpoint epoch %d: %w", epoch, err)
	}
	arrays, err := t.OptimizerArrays()
	if err != nil {
		return fmt.Errorf("train: checkpoint epoch %d: %w", epoch, err)
	}
	path := OptimizerPath(dir, epoch)
	if err := npz.WriteFile(path, arrays); err != nil {
		return fmt.Errorf("train: checkpoint epoch %d: %w", epoch, err)
	}
	return nil
}

// OptimizerArrays returns the optimizer state as PyTorch's optimizer
// state_dict names it, per parameter: "<param>.momentum_buffer" (SGD with
// momentum), "<param>.exp_avg" and "<param>.exp_avg_sq" (Adam), plus Adam's
// "step" (int64 scalar). As in PyTorch, there is no state before the first
// step (an empty list), and plain SGD has none.
func (t *Trainer) OptimizerArrays() ([]npz.Named, error) {
	if t.steps == 0 {
		return nil, nil
	}
	slots := t.cfg.Optimizer.Slots()
	var out []npz.Named
	for i, e := range t.cfg.Model.Params() {
		for j, slot := range slots {
			a, err := array(t.state[i*len(slots)+j], e.Shape)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", e.Name, slot, err)
			}
			out = append(out, npz.Named{Name: e.Name + "." + slot, Array: a})
		}
	}
	if t.cfg.Optimizer.Name == NameAdam {
		out = append(out, npz.Named{Name: "step", Array: &npz.Array{Data: []int64{t.steps}}})
	}
	return out, nil
}

// ReadCheckpoint reads the weights at path (a checkpoint WriteCheckpoint
// wrote, or any state_dict .npz) for m, and checks them before any use:
// every name and shape of m's state_dict (models.Model.FromArchive), and
// every float tensor of one dtype — dtype, or either float32 or float64
// when dtype is dtypes.InvalidDType. It returns the weights in that dtype;
// errors name the file.
func ReadCheckpoint(m *models.Model, path string, dtype dtypes.DType) (*models.Weights, error) {
	ar, err := npz.ReadFile(path)
	if err != nil {
		return nil, err
	}
	got, err := floatDType(ar)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if dtype != dtypes.InvalidDType && got != dtype {
		return nil, fmt.Errorf("%s: weights are %s, the run is %s", path, got, dtype)
	}
	w, err := m.FromArchive(ar, got)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return w, nil
}

// floatDType returns the one dtype of an archive's float arrays, which
// must be all but the batch-norm counters (num_batches_tracked).
func floatDType(ar *npz.Archive) (dtypes.DType, error) {
	dt, first := dtypes.InvalidDType, ""
	for _, n := range ar.Names {
		var d dtypes.DType
		switch ar.Arrays[n].Data.(type) {
		case []float32:
			d = dtypes.Float32
		case []float64:
			d = dtypes.Float64
		default:
			if strings.HasSuffix(n, "num_batches_tracked") {
				continue
			}
			dt, _ := ar.Arrays[n].DType()
			return d, fmt.Errorf("%q has dtype %s, want float32 or float64", n, dt)
		}
		if dt != dtypes.InvalidDType && d != dt {
			return dt, fmt.Errorf("%q is %s but %q is %s: want one float dtype", n, d, first, dt)
		}
		dt, first = d, n
	}
	if dt == dtypes.InvalidDType {
		return dt, errors.New("no float32 or float64 arrays")
	}
	return dt, nil
}

// array copies a float tensor into an npz array of the given shape.
func array(t *tensors.Tensor, shape []int) (*npz.Array, error) {
	a := &npz.Array{Shape: slices.Clone(shape)}
	var err error
	switch t.DType() {
	case dtypes.Float32:
		a.Data, err = tensors.CopyFlatData[float32](t)
	case dtypes.Float64:
		a.Data, err = tensors.CopyFlatData[float64](t)
	default:
		err = fmt.Errorf("tensor of dtype %s", t.DType())
	}
	return a, err
}
