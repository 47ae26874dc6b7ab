package jsonfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The written form is fixed: artifacts' digests cover these bytes.
func TestWriteForm(t *testing.T) {
	p := filepath.Join(t.TempDir(), "meta.json")
	v := struct {
		B     string         `json:"b"`
		A     *int           `json:"a"`
		Extra map[string]any `json:"extra"`
	}{B: "<x&y>", Extra: map[string]any{"z": 1.5, "y": []int{1, 2}}}
	if err := Write(p, v); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	want := "{\n  \"b\": \"\\u003cx\\u0026y\\u003e\",\n  \"a\": null,\n  \"extra\": {\n    \"y\": [\n      1,\n      2\n    ],\n    \"z\": 1.5\n  }\n}\n"
	if string(got) != want {
		t.Errorf("wrote\n%s\nwant\n%s", got, want)
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	type value struct{ N int }
	if _, err := Read[value](filepath.Join(dir, "none.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{"), 0o644)
	if _, err := Read[value](bad); err == nil || !strings.HasPrefix(err.Error(), bad+": ") {
		t.Errorf("malformed file: %v", err)
	}
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"N": 3}`), 0o644)
	if v, err := Read[value](good); err != nil || v.N != 3 {
		t.Errorf("read %+v, %v", v, err)
	}
}
