package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/models"
	"github.com/hessian-spectra/runner/stage"
)

// TestBenchCommand runs a tiny `runner bench` and checks that stdout is one
// JSON result and stderr has a line per measurement.
func TestBenchCommand(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main([]string{"bench", "--backend", "go", "--models", "LeNet", "--batch", "4", "--hvp-batch", "2", "--repeats", "1"},
		stage.Registry{}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res models.BenchResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out.String())
	}
	if res.Backend != "go" || len(res.Measurements) < 4 || res.Measurements[1].Name != "sgd_step" || res.Measurements[1].Batch != 4 {
		t.Errorf("result %+v", res)
	}
	if lines := strings.Count(errb.String(), "\n"); lines != len(res.Measurements) {
		t.Errorf("stderr has %d lines for %d measurements:\n%s", lines, len(res.Measurements), errb.String())
	}
	for _, bad := range [][]string{{"bench", "--models", "AlexNet"}, {"bench", "--dtype", "int8"}, {"bench", "--backend", "tpu", "--models", "LeNet"}} {
		if code := Main(bad, stage.Registry{}, &out, &errb); code == exitOK {
			t.Errorf("%v succeeded", bad)
		}
	}
}
