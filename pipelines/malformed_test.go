package pipelines

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/internal/fakekinds"
	"github.com/hessian-spectra/runner/stage"
)

// testRegistry holds the fake kinds plus one with a required param.
func testRegistry() stage.Registry {
	r := fakekinds.Registry()
	r.Register(&stage.Kind{
		Name: "needy", Version: 1, Doc: "has a required param",
		Params: []stage.Param{{Name: "model", Type: stage.String, Required: true, Doc: "which model"}},
		Run:    func(context.Context, *stage.Env) error { return nil },
	})
	return r
}

// want is one expected problem: a position and a substring of the message.
type want struct {
	line, col int
	// where is "" for a file position, "flag" for a --set position (no
	// line), "any" when the position is not checked.
	where string
	msg   string
}

func (w want) String() string {
	switch w.where {
	case "flag", "any":
		return w.where + ": " + w.msg
	}
	return fmt.Sprintf("%d:%d: %s", w.line, w.col, w.msg)
}

var (
	wantTrailing = regexp.MustCompile(`#\s*want (\d+|flag|any): (.*)$`)
	wantLine     = regexp.MustCompile(`^#\s*want (\d+):(\d+): (.*)$`)
)

// readWants reads the expectations of a malformed spec: a comment
// "# want COL: text" on the offending line, or a comment line
// "# want LINE:COL: text". Column 0 means the error has a line only.
func readWants(t *testing.T, src string) []want {
	var ws []want
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if m := wantLine.FindStringSubmatch(trimmed); m != nil {
			l, _ := strconv.Atoi(m[1])
			c, _ := strconv.Atoi(m[2])
			ws = append(ws, want{line: l, col: c, msg: m[3]})
			continue
		}
		if m := wantTrailing.FindStringSubmatch(line); m != nil {
			w := want{line: i + 1, msg: m[2]}
			if c, err := strconv.Atoi(m[1]); err == nil {
				w.col = c
			} else {
				w.where = m[1]
			}
			ws = append(ws, w)
		}
	}
	if len(ws) == 0 {
		t.Fatal("no # want comments")
	}
	return ws
}

// setsFor lists the --set flags some malformed specs are parsed with.
var setsFor = map[string][]Set{
	"set_unknown_var.yaml": {{Name: "epoch", Value: "5"}},
	"set_wrong_type.yaml":  {{Name: "epochs", Value: "many"}},
}

// TestMalformed parses each spec in testdata/malformed and checks that it
// reports exactly the expected problems, each at its line and column.
func TestMalformed(t *testing.T) {
	files, err := filepath.Glob("testdata/malformed/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Fatalf("only %d malformed specs", len(files))
	}
	reg := testRegistry()
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			wants := readWants(t, string(src))
			_, err = Parse(file, src, Options{Registry: reg, Sets: setsFor[filepath.Base(file)], BaseDir: "/base"})
			if err == nil {
				t.Fatalf("no error; want %v", wants)
			}
			got := Errors(err)
			var unmatched []string
			used := make([]bool, len(wants))
			for _, g := range got {
				var pe *Error
				if !errors.As(g, &pe) {
					t.Errorf("error %q is not positioned", g)
					continue
				}
				matched := false
				for i, w := range wants {
					if used[i] || !strings.Contains(pe.Msg, w.msg) {
						continue
					}
					ok := false
					switch w.where {
					case "any":
						ok = true
					case "flag":
						ok = pe.Pos.Line == 0 && strings.HasPrefix(pe.Pos.File, "--set ")
					default:
						ok = pe.Pos.File == file && pe.Pos.Line == w.line && pe.Pos.Col == w.col
					}
					if ok {
						used[i], matched = true, true
						break
					}
				}
				if !matched {
					unmatched = append(unmatched, pe.Error())
				}
			}
			for i, w := range wants {
				if !used[i] {
					t.Errorf("missing error %v", w)
				}
			}
			for _, u := range unmatched {
				t.Errorf("unexpected error %s", u)
			}
		})
	}
}

// TestAllErrorsAtOnce checks that problems in different stages are all
// reported, in position order, and that the error text lists one a line.
func TestAllErrorsAtOnce(t *testing.T) {
	src, _ := os.ReadFile("testdata/malformed/many_errors.yaml")
	_, err := Parse("many.yaml", src, Options{Registry: testRegistry()})
	errs := Errors(err)
	if len(errs) != 5 {
		t.Fatalf("%d errors, want 5:\n%v", len(errs), err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "many.yaml:6:10: ") {
		t.Errorf("error text:\n%s", err)
	}
	var positions []int
	for _, e := range errs {
		positions = append(positions, e.(*Error).Pos.Line)
	}
	if !sort.IntsAreSorted(positions) {
		t.Errorf("errors not in line order: %v", positions)
	}
}
