package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/hessian-spectra/runner/backend"
	"github.com/hessian-spectra/runner/datasets"
	"github.com/hessian-spectra/runner/models"
	"github.com/hessian-spectra/runner/train"
)

const benchHelp = `
Bench times, on random weights and data, LeNet's forward pass, its SGD step
(forward, backward and update of every parameter in one graph) at the seed's
batch 256 and an estimate of one FashionMNIST epoch (60000 images), its
Hessian-vector products on a 100-image batch (all parameters, then each
layer), and the SGD step of VGG11, VGG11_bn and ResNet18 at a small batch.
Each graph is compiled on its first call and then timed --repeats times.

It prints one JSON object on stdout (models.BenchResult: backend, Go version,
GOMAXPROCS, dtype, and per measurement mean_ms, median_ms, min_ms, first_ms and
images_per_s) and a line per measurement on stderr as it goes.

With --train it times what the train stage runs instead (train.Bench): the
training step of --model at --batch with SGD momentum 0.9 (the optimizer
update and its state in the same graph), --steps times after one warm-up;
with --htr-probes K also the Hessian-trace-penalised step with K probes; with
--epoch also one real training epoch over FashionMNIST read from --data (the
published IDX files, e.g. Debian's dataset-fashion-mnist) and the
evaluation of both splits that follows every epoch. --epoch and --htr-probes
imply --train. It prints one JSON object (train.BenchResult: ms per step,
images/s, epoch seconds, backend, GOMAXPROCS).`

func runBench(c *cli, args []string) int {
	cmd := findCommand("bench")
	fs := c.newFlags(cmd, benchHelp)
	be := backendFlag(fs)
	list := fs.String("models", strings.Join(models.Names(), ","), "comma-separated models to time")
	batch := fs.Int("batch", 256, "LeNet training batch")
	small := fs.Int("small-batch", 16, "VGG and ResNet training batch")
	hvpBatch := fs.Int("hvp-batch", 100, "batch of the Hessian-vector products")
	repeats := fs.Int("repeats", 5, "timed calls per measurement, after one warm-up call")
	dtype := fs.String("dtype", "float32", "float32 or float64")
	trainMode := fs.Bool("train", false, "time the train stage's step (train.Bench) instead")
	model := fs.String("model", models.LeNet, "with --train: the model")
	steps := fs.Int("steps", 5, "with --train: timed steps, after one warm-up step")
	probes := fs.Int("htr-probes", 0, "with --train: also time the HTR step with this many probes (the seed's 10)")
	epoch := fs.Bool("epoch", false, "with --train: also time one FashionMNIST epoch read from --data")
	data := fs.String("data", "/usr/share/datasets/fashion-mnist", "with --epoch: folder of FashionMNIST's IDX files")
	pos, code, ok := c.parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(c.stderr, "runner bench: unexpected %s\n", strings.Join(pos, " "))
		return exitUsage
	}
	var dt dtypes.DType
	switch *dtype {
	case "float32":
		dt = dtypes.Float32
	case "float64":
		dt = dtypes.Float64
	default:
		fmt.Fprintf(c.stderr, "runner bench: --dtype %q: want float32 or float64\n", *dtype)
		return exitUsage
	}
	if *trainMode || *epoch || *probes > 0 {
		opts := train.BenchOptions{Model: *model, Batch: *batch, Steps: *steps, HTRProbes: *probes, DType: dt}
		return c.trainBench(*be, opts, *epoch, *data)
	}
	var names []string
	for _, n := range strings.Split(*list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if _, err := models.New(n, 1, 10); err != nil {
			fmt.Fprintf(c.stderr, "runner bench: %v\n", err)
			return exitUsage
		}
		names = append(names, n)
	}
	b, err := backend.Open(*be)
	if err != nil {
		fmt.Fprintf(c.stderr, "runner bench: %v\n", err)
		return exitFailed
	}
	res, err := models.Bench(b, models.BenchOptions{
		Models: names, Batch: *batch, SmallBatch: *small, HVPBatch: *hvpBatch, Repeats: *repeats, DType: dt,
		Progress: func(m models.Measurement) {
			fmt.Fprintf(c.stderr, "%-9s %-20s batch %5d  %9.1f ms  %8.0f images/s\n", m.Model, m.Name, m.Batch, m.MeanMs, m.ImagesPerSec)
		},
	})
	if err != nil {
		fmt.Fprintf(c.stderr, "runner bench: %v\n", err)
		return exitFailed
	}
	res.Backend = backend.Resolve(*be)
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		fmt.Fprintf(c.stderr, "runner bench: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// trainBench runs train.Bench and prints its JSON; with epoch it first reads
// FashionMNIST from dataDir.
func (c *cli) trainBench(be string, opts train.BenchOptions, epoch bool, dataDir string) int {
	fail := func(err error) int {
		fmt.Fprintf(c.stderr, "runner bench: %v\n", err)
		return exitFailed
	}
	if _, err := models.New(opts.Model, 1, 10); err != nil {
		fmt.Fprintf(c.stderr, "runner bench: %v\n", err)
		return exitUsage
	}
	b, err := backend.Open(be)
	if err != nil {
		return fail(err)
	}
	if epoch {
		info, err := datasets.Lookup("FashionMNIST")
		if err != nil {
			return fail(err)
		}
		set, err := datasets.ReadDir(info, dataDir, false, nil)
		if err != nil {
			return fail(err)
		}
		tmp, err := os.MkdirTemp("", "runner-bench-")
		if err != nil {
			return fail(err)
		}
		defer os.RemoveAll(tmp)
		dir := filepath.Join(tmp, "data")
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fail(err)
		}
		if err := set.Write(dir); err != nil {
			return fail(err)
		}
		if opts.Data, err = datasets.Load(dir); err != nil {
			return fail(err)
		}
	}
	opts.Progress = func(line string) { fmt.Fprintln(c.stderr, line) }
	res, err := train.Bench(context.Background(), b, opts)
	if err != nil {
		return fail(err)
	}
	res.Backend = backend.Resolve(be)
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		return fail(err)
	}
	return exitOK
}
