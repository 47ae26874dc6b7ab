package models

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/hessian-spectra/runner/internal/testenv"
	"github.com/hessian-spectra/runner/npz"
)

func mustNew(t testing.TB, name string, in, classes int) *Model {
	t.Helper()
	m, err := New(name, in, classes)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestParamCounts compares with SEED-SPEC §2 (numbers computed from PyTorch's layer lists).
func TestParamCounts(t *testing.T) {
	for _, c := range []struct {
		name        string
		in, classes int
		want        int
	}{
		{LeNet, 1, 10, 61706},
		{LeNet, 3, 10, 62006},
		{VGG11, 3, 10, 28152202},
		{VGG11BN, 3, 10, 28157706},
		{ResNet18, 3, 10, 11173962},
	} {
		if got := mustNew(t, c.name, c.in, c.classes).ParamCount(); got != c.want {
			t.Errorf("%s(%d ch, %d classes): %d params, SEED-SPEC says %d", c.name, c.in, c.classes, got, c.want)
		}
	}
}

// TestLayers checks the seed's valid-layer lists (SEED-SPEC §2.4).
func TestLayers(t *testing.T) {
	lenet := []string{"conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight", "fc3.weight"}
	if got := mustNew(t, LeNet, 1, 10).Layers(); !slices.Equal(got, lenet) {
		t.Errorf("LeNet layers %v", got)
	}
	vggBN := []string{"features.0.weight", "features.4.weight", "features.8.weight", "features.11.weight",
		"features.15.weight", "features.18.weight", "features.22.weight", "features.25.weight",
		"classifier.0.weight", "classifier.3.weight", "classifier.6.weight"}
	if got := mustNew(t, VGG11BN, 3, 10).Layers(); !slices.Equal(got, vggBN) {
		t.Errorf("VGG11_bn layers %v", got)
	}
	vgg := []string{"features.0.weight", "features.3.weight", "features.6.weight", "features.8.weight",
		"features.11.weight", "features.13.weight", "features.16.weight", "features.18.weight",
		"classifier.0.weight", "classifier.3.weight", "classifier.6.weight"}
	if got := mustNew(t, VGG11, 3, 10).Layers(); !slices.Equal(got, vgg) {
		t.Errorf("VGG11 layers %v", got)
	}
	var resnet []string
	resnet = append(resnet, "conv1.weight", "layer1.0.conv1.weight", "layer1.0.conv2.weight", "layer1.1.conv1.weight", "layer1.1.conv2.weight")
	for _, l := range []string{"layer2", "layer3", "layer4"} {
		resnet = append(resnet, l+".0.conv1.weight", l+".0.conv2.weight", l+".0.downsample.0.weight", l+".1.conv1.weight", l+".1.conv2.weight")
	}
	resnet = append(resnet, "fc.weight")
	if got := mustNew(t, ResNet18, 3, 10).Layers(); !slices.Equal(got, resnet) {
		t.Errorf("ResNet18 layers %v", got)
	}
}

// TestStateDictLayout spot-checks PyTorch names, shapes, kinds and order.
func TestStateDictLayout(t *testing.T) {
	m := mustNew(t, VGG11BN, 3, 100)
	st := m.State()
	want := []Entry{
		{Name: "features.0.weight", Shape: []int{64, 3, 3, 3}},
		{Name: "features.0.bias", Shape: []int{64}},
		{Name: "features.1.weight", Shape: []int{64}},
		{Name: "features.1.bias", Shape: []int{64}},
		{Name: "features.1.running_mean", Shape: []int{64}, Kind: Buffer},
		{Name: "features.1.running_var", Shape: []int{64}, Kind: Buffer},
		{Name: "features.1.num_batches_tracked", Kind: Counter},
		{Name: "features.4.weight", Shape: []int{128, 64, 3, 3}},
	}
	for i, w := range want {
		if st[i].Name != w.Name || !slices.Equal(st[i].Shape, w.Shape) || st[i].Kind != w.Kind {
			t.Errorf("VGG11_bn state[%d] = %s %v %s, want %s %v %s", i, st[i].Name, st[i].Shape, st[i].Kind, w.Name, w.Shape, w.Kind)
		}
	}
	last := st[len(st)-2:]
	if last[0].Name != "classifier.6.weight" || !slices.Equal(last[0].Shape, []int{100, 4096}) || last[1].Name != "classifier.6.bias" {
		t.Errorf("VGG11_bn ends with %v", last)
	}
	// Plain VGG11 has no feature BN but its classifier has two BatchNorm1d.
	v := mustNew(t, VGG11, 3, 10)
	if got := len(v.Counters()); got != 2 {
		t.Errorf("VGG11 has %d BN layers, want 2 (classifier.1, classifier.4)", got)
	}
	if v.ParamIndex("classifier.1.weight") < 0 || v.ParamIndex("features.1.weight") >= 0 {
		t.Errorf("VGG11 BN params misplaced")
	}
	r := mustNew(t, ResNet18, 3, 10)
	i := slices.IndexFunc(r.State(), func(e Entry) bool { return e.Name == "layer2.0.downsample.0.weight" })
	if i < 0 || !slices.Equal(r.State()[i].Shape, []int{128, 64, 1, 1}) || r.State()[i+1].Name != "layer2.0.downsample.1.weight" {
		t.Errorf("ResNet18 downsample entries wrong around %d", i)
	}
	if got := len(r.Buffers()); got != 2*20 {
		t.Errorf("ResNet18 has %d buffers, want 40 (20 BN layers)", got)
	}
	if _, err := New("AlexNet", 3, 10); err == nil || !strings.Contains(err.Error(), "ResNet18") {
		t.Errorf("unknown model error %v should list the known ones", err)
	}
}

// TestRoundTrip writes and reads back every model's weights: bit-exact.
func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name  string
		in    int
		dtype dtypes.DType
	}{{LeNet, 1, dtypes.Float64}, {LeNet, 3, dtypes.Float32}, {VGG11, 3, dtypes.Float32}, {VGG11BN, 1, dtypes.Float32}, {ResNet18, 3, dtypes.Float32}} {
		m := mustNew(t, c.name, c.in, 10)
		w, err := m.Init(7, c.dtype)
		if err != nil {
			t.Fatal(err)
		}
		for i := range w.Batches {
			w.Batches[i] = int64(100 + i)
		}
		path := filepath.Join(dir, c.name+".npz")
		if err := w.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		back, err := m.ReadWeights(path, c.dtype)
		if err != nil {
			t.Fatal(err)
		}
		a1, _ := w.Arrays()
		a2, err := back.Arrays()
		if err != nil {
			t.Fatal(err)
		}
		for i := range a1 {
			if a1[i].Name != a2[i].Name || !equalData(a1[i].Array.Data, a2[i].Array.Data) {
				t.Errorf("%s: %s changed in the round trip", c.name, a1[i].Name)
			}
		}
		// The file lists the state_dict in order, counters as int64 scalars.
		ar, err := npz.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range m.State() {
			names = append(names, e.Name)
		}
		if !slices.Equal(ar.Names, names) {
			t.Errorf("%s: archive order %v", c.name, ar.Names[:5])
		}
		for _, e := range m.Counters() {
			a := ar.Arrays[e.Name]
			if dt, _ := a.DType(); dt != "<i8" || len(a.Shape) != 0 {
				t.Errorf("%s: %s is %s %v, want an int64 scalar", c.name, e.Name, dt, a.Shape)
			}
		}
		os.Remove(path)
	}
}

func equalData(a, b any) bool {
	switch x := a.(type) {
	case []float32:
		return slices.Equal(x, b.([]float32))
	case []float64:
		return slices.Equal(x, b.([]float64))
	case []int64:
		return slices.Equal(x, b.([]int64))
	}
	return false
}

// TestReadErrors checks that a checkpoint that does not fit says what is wrong.
func TestReadErrors(t *testing.T) {
	m := mustNew(t, LeNet, 1, 10)
	ar, err := npz.ReadFile(fixtureDir + "weights.npz")
	if err != nil {
		t.Fatal(err)
	}
	clone := func() *npz.Archive {
		c := &npz.Archive{Names: slices.Clone(ar.Names), Arrays: map[string]*npz.Array{}}
		for k, v := range ar.Arrays {
			c.Arrays[k] = v
		}
		return c
	}
	missing := clone()
	delete(missing.Arrays, "fc3.bias")
	extra := clone()
	extra.Arrays["fc4.weight"] = &npz.Array{Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}}
	extra.Names = append(extra.Names, "fc4.weight")
	shaped := clone()
	shaped.Arrays["conv1.weight"] = &npz.Array{Shape: []int{6, 3, 5, 5}, Data: make([]float32, 450)}
	for _, c := range []struct {
		ar   *npz.Archive
		want string
	}{
		{missing, `missing "fc3.bias" [10]`},
		{extra, `unexpected "fc4.weight" [2 2]`},
		{shaped, `"conv1.weight" is [6 3 5 5], want [6 1 5 5]`},
	} {
		_, err := m.FromArchive(c.ar, dtypes.Float32)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want it to contain %s", err, c.want)
		}
	}
	// DataParallel prefixes are accepted; a missing num_batches_tracked is 0.
	prefixed := &npz.Archive{Arrays: map[string]*npz.Array{}}
	for _, n := range ar.Names {
		prefixed.Names = append(prefixed.Names, "module."+n)
		prefixed.Arrays["module."+n] = ar.Arrays[n]
	}
	if _, err := m.FromArchive(prefixed, dtypes.Float64); err != nil {
		t.Errorf("module.-prefixed archive: %v", err)
	}
	bn := mustNew(t, VGG11, 3, 10)
	w, _ := bn.Init(1, dtypes.Float32)
	arrays, _ := w.Arrays()
	noCounters := &npz.Archive{Arrays: map[string]*npz.Array{}}
	for _, a := range arrays {
		if !strings.HasSuffix(a.Name, "num_batches_tracked") {
			noCounters.Names = append(noCounters.Names, a.Name)
			noCounters.Arrays[a.Name] = a.Array
		}
	}
	back, err := bn.FromArchive(noCounters, dtypes.Float32)
	if err != nil || !slices.Equal(back.Batches, []int64{0, 0}) {
		t.Errorf("archive without num_batches_tracked: %v, batches %v", err, back)
	}
	if _, err := bn.Init(1, dtypes.Int32); err == nil {
		t.Error("Init accepted int32")
	}
}

// TestInitDistributions checks the seed's initialisation rules by their
// statistics and bounds, and determinism by seed.
func TestInitDistributions(t *testing.T) {
	get := func(w *Weights, name string) []float64 {
		i := w.Model.ParamIndex(name)
		if i < 0 {
			t.Fatalf("no param %s", name)
		}
		v, err := values(w.Params[i])
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	stats := func(v []float64) (mean, std, maxAbs float64) {
		for _, x := range v {
			mean += x
			maxAbs = math.Max(maxAbs, math.Abs(x))
		}
		mean /= float64(len(v))
		for _, x := range v {
			std += (x - mean) * (x - mean)
		}
		return mean, math.Sqrt(std / float64(len(v))), maxAbs
	}
	lenet, _ := mustNew(t, LeNet, 1, 10).Init(3, dtypes.Float64)
	for _, c := range []struct {
		name  string
		fanIn int
	}{{"conv1.weight", 25}, {"conv2.weight", 150}, {"conv2.bias", 150}, {"fc1.weight", 400}, {"fc3.weight", 84}} {
		v := get(lenet, c.name)
		b := 1 / math.Sqrt(float64(c.fanIn))
		_, std, maxAbs := stats(v)
		// U(±b) has std b/√3; with n values the estimate is within a few b/√n.
		if !(maxAbs <= b) || !(math.Abs(std-b/math.Sqrt(3)) <= 4*b/math.Sqrt(float64(len(v)))) {
			t.Errorf("LeNet %s: max %.4g, std %.4g; want U(±%.4g)", c.name, maxAbs, std, b)
		}
	}
	vgg, _ := mustNew(t, VGG11BN, 3, 10).Init(3, dtypes.Float32)
	for _, c := range []struct {
		name string
		std  float64
	}{{"features.0.weight", math.Sqrt(2.0 / (9 * 64))}, {"features.25.weight", math.Sqrt(2.0 / (9 * 512))}, {"classifier.0.weight", 0.01}, {"classifier.6.weight", 0.01}} {
		mean, std, _ := stats(get(vgg, c.name))
		n := float64(len(get(vgg, c.name)))
		if !(math.Abs(std-c.std) <= 5*c.std/math.Sqrt(2*n)) || !(math.Abs(mean) <= 5*c.std/math.Sqrt(n)) {
			t.Errorf("VGG11_bn %s: mean %.3g std %.5g, want N(0, %.5g²)", c.name, mean, std, c.std)
		}
	}
	for _, name := range []string{"features.0.bias", "classifier.6.bias", "features.1.bias"} {
		if _, _, maxAbs := stats(get(vgg, name)); maxAbs != 0 {
			t.Errorf("VGG11_bn %s not zero", name)
		}
	}
	if mean, std, _ := stats(get(vgg, "features.1.weight")); mean != 1 || std != 0 {
		t.Errorf("BN weight not 1")
	}
	rv, _ := values(vgg.Buffers[1])
	if rv[0] != 1 || len(rv) != 64 {
		t.Errorf("running_var starts at %v", rv[0])
	}
	res, _ := mustNew(t, ResNet18, 3, 10).Init(3, dtypes.Float64)
	if _, std, _ := stats(get(res, "layer2.0.downsample.0.weight")); !(math.Abs(std-math.Sqrt(2.0/128)) <= 0.05*math.Sqrt(2.0/128)) {
		t.Errorf("ResNet18 1×1 downsample std %.4g, want √(2/128)", std)
	}
	if _, _, maxAbs := stats(get(res, "fc.bias")); !(maxAbs <= 1/math.Sqrt(512)) || maxAbs == 0 {
		t.Errorf("ResNet18 fc.bias max %.4g, want U(±1/√512)", maxAbs)
	}
	// Same seed, same weights; another seed, other weights.
	again, _ := mustNew(t, LeNet, 1, 10).Init(3, dtypes.Float64)
	other, _ := mustNew(t, LeNet, 1, 10).Init(4, dtypes.Float64)
	if !slices.Equal(get(lenet, "fc2.weight"), get(again, "fc2.weight")) {
		t.Error("Init(3) is not deterministic")
	}
	if slices.Equal(get(lenet, "fc2.weight"), get(other, "fc2.weight")) {
		t.Error("Init(3) and Init(4) agree")
	}
}

// TestNumpyLoads checks with the system's numpy that our files load there
// with the names, dtypes and shapes PyTorch's load_state_dict needs.
func TestNumpyLoads(t *testing.T) {
	py := testenv.RequirePython(t, "numpy")
	m := mustNew(t, VGG11, 1, 10)
	w, _ := m.Init(1, dtypes.Float32)
	w.Batches[1] = 42
	path := filepath.Join(t.TempDir(), "w.npz")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-c", `
import numpy as np, sys
d = np.load(sys.argv[1])
for k in ["features.0.weight", "classifier.1.running_var", "classifier.4.num_batches_tracked", "classifier.6.bias"]:
    print(k, d[k].dtype, d[k].shape, d[k].ravel()[0])
`, path).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy: %v\n%s", err, out)
	}
	want := "features.0.weight float32 (64, 1, 3, 3)"
	got := string(out)
	for _, line := range []string{want, "classifier.1.running_var float32 (4096,) 1.0", "classifier.4.num_batches_tracked int64 () 42", "classifier.6.bias float32 (10,) 0.0"} {
		if !strings.Contains(got, line) {
			t.Errorf("numpy printed\n%s\nwant a line %q", got, line)
		}
	}
}

var _ = tensors.FromShape
