package runner

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/internal/fakekinds"
	"github.com/hessian-spectra/runner/stage"
)

// reference encodes v with encoding/json, which sorts map keys: the
// independent definition canonicalJSON must match.
func reference(t *testing.T, v any) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

func TestCanonicalMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	strs := []string{"", "a", "plain text", `quo"te`, `back\slash`, "tab\there", "new\nline", "<html>&", "é ü ∑", "\u2028\u2029", "\x00\x1f", "bad utf8 \xff", "emoji 🙂"}
	floats := []float64{0, 1, -1, 0.01, 1e-2, 1e-6, 1e-7, 9.99e-7, 1e20, 1e21, 1.5e300, -2.5e-300, 123456789.125, math.Pi, 1.0 / 3, 5e-324}
	var gen func(depth int) any
	gen = func(depth int) any {
		switch k := rng.IntN(12); {
		case k == 0:
			return nil
		case k == 1:
			return rng.IntN(2) == 0
		case k == 2:
			return rng.IntN(1<<40) - 1<<39
		case k == 3:
			return floats[rng.IntN(len(floats))]
		case k == 4:
			return strs[rng.IntN(len(strs))]
		case k == 5:
			return []int{rng.IntN(100), -rng.IntN(100)}
		case k == 6:
			return []float64{floats[rng.IntN(len(floats))], floats[rng.IntN(len(floats))]}
		case k == 7:
			return []string{strs[rng.IntN(len(strs))]}
		case k == 8:
			return []bool{true, false}
		case depth > 3:
			return "leaf"
		case k == 9:
			out := []any{}
			for i := rng.IntN(4); i > 0; i-- {
				out = append(out, gen(depth+1))
			}
			return out
		default:
			out := map[string]any{}
			for i := rng.IntN(5); i > 0; i-- {
				out[strs[rng.IntN(len(strs))]+string(rune('a'+rng.IntN(26)))] = gen(depth + 1)
			}
			if rng.IntN(2) == 0 {
				return stage.Params(out)
			}
			return out
		}
	}
	for i := 0; i < 2000; i++ {
		v := gen(0)
		got, err := canonicalJSON(v)
		if err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
		if want := reference(t, v); string(got) != want {
			t.Fatalf("canonical\n got %s\nwant %s", got, want)
		}
	}
}

func TestCanonicalDescription(t *testing.T) {
	d := &Description{Kind: "train", Version: 3, Params: map[string]any{"lr": 1e-2, "z": -0.0, "a": []int{1}},
		Inputs: map[string][]artifacts.Digest{"data": {"ab"}}}
	got, err := d.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"inputs":{"data":["ab"]},"kind":"train","params":{"a":[1],"lr":0.01,"z":0},"version":3}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if _, err := canonicalJSON(math.NaN()); err == nil {
		t.Error("NaN encoded")
	}
}

func TestJobRoundTrip(t *testing.T) {
	j := &Job{
		Description: Description{Kind: "gen", Version: 1, Params: map[string]any{"value": 0.5, "n": 3},
			Inputs: map[string][]artifacts.Digest{"in": {"aa"}}},
		ID: "s[epoch=3]", Spec: "x",
		Params: map[string]any{"value": 0.5, "n": 3, "flags": []string{"a"}, "opts": stage.Params{"alpha": 1.0}},
		Inputs: map[string][]JobInput{"in": {{Stage: "u[epoch=3,lr=0.01]", Matrix: map[string]any{"epoch": 3, "lr": 0.01}, Digest: "aa"}}},
	}
	k, err := j.Description.Key()
	if err != nil {
		t.Fatal(err)
	}
	j.Key = k
	data, err := encodeJob(j)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeJob(data)
	if err != nil {
		t.Fatal(err)
	}
	if m := back.Inputs["in"][0].Matrix; m["epoch"] != 3 || m["lr"] != 0.01 {
		t.Errorf("matrix %#v: want int 3 and float 0.01", m)
	}
	if back.Params["n"] != 3 || back.Params["value"] != 0.5 {
		t.Errorf("params %#v", back.Params)
	}
	params, err := convertParams(fakekinds.Gen, back.Params)
	if err != nil {
		t.Fatal(err)
	}
	if params.Int("n") != 3 || params.Object("opts").Float("alpha") != 1 || params.Strings("flags")[0] != "a" {
		t.Errorf("converted %#v", params)
	}
}
