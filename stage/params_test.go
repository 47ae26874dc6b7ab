package stage

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestConvert(t *testing.T) {
	obj := Param{Name: "subset", Type: Object, Fields: []Param{
		{Name: "per_class", Type: Int, Default: 10, Min: Bound(1)},
		{Name: "seed", Type: Int, Default: 0},
	}}
	for _, c := range []struct {
		p    Param
		in   any
		want any
	}{
		{Param{Type: Int}, 3, 3},
		{Param{Type: Int}, int64(3), 3},
		{Param{Type: Int}, 1e3, 1000},
		{Param{Type: Float}, 2, 2.0},
		{Param{Type: Float}, 1e-2, 0.01},
		{Param{Type: String, Enum: []string{"a", "b"}}, "b", "b"},
		{Param{Type: Bool}, true, true},
		{Param{Type: Path}, "x/y", "x/y"},
		{Param{Type: List, Elem: Int}, []any{1, 2.0}, []int{1, 2}},
		{Param{Type: List, Elem: Float}, []any{1, 0.5}, []float64{1, 0.5}},
		{Param{Type: List, Elem: String}, []any{"a"}, []string{"a"}},
		{Param{Type: Map, Elem: String}, map[string]any{"k": "v"}, map[string]any{"k": "v"}},
		{obj, map[string]any{"seed": 3}, Params{"per_class": 10, "seed": 3}},
	} {
		got, err := c.p.Convert(c.in)
		if err != nil {
			t.Errorf("%v ← %#v: %v", c.p.Type, c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v ← %#v = %#v, want %#v", c.p.Type, c.in, got, c.want)
		}
	}
}

func TestConvertErrors(t *testing.T) {
	obj := Param{Name: "subset", Type: Object, Fields: []Param{
		{Name: "per_class", Type: Int, Default: 10, Min: Bound(1)},
		{Name: "seed", Type: Int, Required: true},
	}}
	for _, c := range []struct {
		p    Param
		in   any
		want string
	}{
		{Param{Type: Int}, 2.5, "want an integer, got 2.5"},
		{Param{Type: Int}, "3", `want an integer, got the string "3"`},
		{Param{Type: Int, Min: Bound(1)}, 0, "0 is below the minimum 1"},
		{Param{Type: Float, Max: Bound(1)}, 1.5, "1.5 is above the maximum 1"},
		{Param{Type: String, Enum: []string{"sgd", "adam"}}, "sdg", `want one of sgd, adam, got "sdg" (did you mean "sgd"?)`},
		{Param{Type: String, Enum: []string{"sgd", "adam"}}, "lbfgs", `want one of sgd, adam, got "lbfgs"`},
		{Param{Type: Bool}, "yes", `want true or false, got the string "yes"`},
		{Param{Type: Path}, "", "empty string"},
		{Param{Type: List, Elem: Int}, []any{1, "x"}, "item 1: want an integer"},
		{Param{Type: List, Elem: Int}, 3, "want a list of integers"},
		{Param{Type: Map, Elem: Float}, map[string]any{"a": "b"}, `key "a": want a number`},
		{obj, map[string]any{"seed": 1, "per_clas": 3}, `unknown key "per_clas" (want per_class, seed)`},
		{obj, map[string]any{"per_class": 3}, `missing key "seed"`},
		{obj, map[string]any{"seed": 1, "per_class": 0}, "per_class: 0 is below the minimum 1"},
	} {
		_, err := c.p.Convert(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v ← %#v: error %v, want %q", c.p.Type, c.in, err, c.want)
		}
	}
}

func TestRegistryRejectsBadKinds(t *testing.T) {
	run := func(context.Context, *Env) error { return nil }
	for name, k := range map[string]*Kind{
		"no version":    {Name: "a", Run: run},
		"dup param":     {Name: "a", Version: 1, Run: run, Params: []Param{{Name: "x", Type: Int}, {Name: "x", Type: Int}}},
		"bad default":   {Name: "a", Version: 1, Run: run, Params: []Param{{Name: "x", Type: Int, Default: "three"}}},
		"list no elem":  {Name: "a", Version: 1, Run: run, Params: []Param{{Name: "x", Type: List}}},
		"required+dflt": {Name: "a", Version: 1, Run: run, Params: []Param{{Name: "x", Type: Int, Default: 1, Required: true}}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: registered without a panic", name)
				}
			}()
			Registry{}.Register(k)
		}()
	}
	r := Registry{}
	r.Register(&Kind{Name: "b", Version: 1, Run: run})
	r.Register(&Kind{Name: "a", Version: 1, Run: run})
	if got := r.Names(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("Names() = %v", got)
	}
}

func TestEnvInput(t *testing.T) {
	e := &Env{ID: "s", Inputs: map[string][]Artifact{"one": {{Dir: "/a"}}, "two": {{Dir: "/a"}, {Dir: "/b"}}}}
	if a, err := e.Input("one"); err != nil || a.Dir != "/a" {
		t.Errorf("Input(one) = %v, %v", a, err)
	}
	if _, err := e.Input("two"); err == nil || !strings.Contains(err.Error(), "bound to 2 artifacts") {
		t.Errorf("Input(two): %v", err)
	}
	if _, err := e.Input("none"); err == nil || !strings.Contains(err.Error(), "not bound") {
		t.Errorf("Input(none): %v", err)
	}
}

func TestResolve(t *testing.T) {
	k := &Kind{Name: "k", Version: 1, Params: []Param{
		{Name: "lr", Type: Float, Required: true},
		{Name: "epochs", Type: Int, Default: 3},
		{Name: "note", Type: String},
	}}
	got, err := k.Resolve(map[string]any{"lr": 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Params{"lr": 1.0, "epochs": 3}); !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve = %#v, want %#v", got, want)
	}
	for given, want := range map[string]map[string]any{
		`unknown param "lrr"`:           {"lr": 1, "lrr": 2},
		`missing required param "lr"`:   {},
		"param epochs: want an integer": {"lr": 1, "epochs": "x"},
	} {
		if _, err := k.Resolve(want); err == nil || !strings.Contains(err.Error(), given) {
			t.Errorf("Resolve(%v): %v, want %q", want, err, given)
		}
	}
}
