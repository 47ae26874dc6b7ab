package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/hessian-spectra/runner/backend"
	"github.com/hessian-spectra/runner/models"
)

func init() {
	register(&command{
		name:    "bench",
		args:    "[--backend NAME] [--models LIST] [--batch N] [--small-batch N] [--repeats N] [--dtype float32|float64]",
		summary: "time the models' training steps and Hessian-vector products; print JSON",
		run:     runBench,
	})
}

const benchHelp = `
Bench times, on random weights and data, LeNet's forward pass, its SGD step
(forward, backward and update of every parameter in one graph) at the seed's
batch 256 and an estimate of one FashionMNIST epoch (60000 images), its
Hessian-vector products on a 100-image batch (all parameters, then each
layer), and the SGD step of VGG11, VGG11_bn and ResNet18 at a small batch.
Each graph is compiled on its first call and then timed --repeats times.

It prints one JSON object on stdout (models.BenchResult: backend, Go version,
GOMAXPROCS, dtype, and per measurement mean_ms, min_ms, first_ms and
images_per_s) and a line per measurement on stderr as it goes.`

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
