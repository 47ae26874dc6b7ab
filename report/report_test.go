package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func setup(t *testing.T) (Options, string) {
	t.Helper()
	root := t.TempDir()
	mk := func(dir string, files map[string]string) string {
		d := filepath.Join(root, "cache", dir)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for n, c := range files {
			if err := os.WriteFile(filepath.Join(d, n), []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	o := Options{
		Stages: []Stage{
			{Spec: "s", ID: "table", Kind: "aggregate", Seconds: 0.5,
				Dir: mk("a", map[string]string{"table.md": "| a |\n|---|\n| 1 |\n", "summary.json": `{"methods":[{"name":"sgd","test":5.25}]}`})},
			{Spec: "s", ID: "train[seed=0]", Kind: "train", Seconds: 120, Dir: mk("b", nil)},
			{Spec: "s", ID: "train[seed=1]", Kind: "train", Seconds: 60, Dir: mk("c", nil)},
			{Spec: "s", ID: "curves", Kind: "plot", Seconds: 1, Dir: mk("d", map[string]string{"curves.png": "PNG-BYTES"})},
			{Spec: "t", ID: "late", Kind: "plot"},
		},
		AssetsDir: filepath.Join(root, "docs", "results"),
		LinkDir:   root,
	}
	return o, root
}

// TestTimingsShared counts a stage that two specs share once: it was
// computed once.
func TestTimingsShared(t *testing.T) {
	o, _ := setup(t)
	o.Stages = o.Stages[:4]
	shared := o.Stages[1]
	shared.Spec = "u"
	o.Stages = append(o.Stages, shared)
	got, err := Render("t.md", `{{ timings }}`, o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "| train | 2 | 3.0 | 90.0 | 120.0 |") {
		t.Errorf("shared stage counted twice:\n%s", got)
	}
	got, err = Render("t.md", `{{ timings "u" }}`, o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "| train | 1 | 2.0 | 120.0 | 120.0 |") || strings.Contains(string(got), "plot") {
		t.Errorf("timings of spec u:\n%s", got)
	}
}

func TestHeadings(t *testing.T) {
	in := "# T\ntext #1\n## S\n#hashtag\n```\n# code\n```\n##### five"
	want := "### T\ntext #1\n#### S\n#hashtag\n```\n# code\n```\n###### five"
	if got := headings(2, in); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	o, _ := setup(t)
	got, err := Render("t.md", `{{ file "s" "table" "table.md" | headings 1 }}`, o)
	if err != nil || string(got) != "| a |\n|---|\n| 1 |" {
		t.Errorf("pipeline: %q, %v", got, err)
	}
}

func TestRender(t *testing.T) {
	o, root := setup(t)
	tmpl := `# R
{{ file "s" "table" "table.md" }}
{{ with json "s" "table" "summary.json" }}{{ range .methods }}{{ .name }} {{ printf "%.1f" .test }}{{ end }}{{ end }}
![c]({{ figure "s" "curves" "curves.png" }})
{{ seconds "s" "train[seed=1]" }} {{ printf "%.2f" (sub (div (seconds "s" "train[seed=0]") 4) 10) }} {{ abs -2 }} {{ mul 2 (add 1 0.5) }}
{{ timings "s" }}`
	got, err := Render("t.md", tmpl, o)
	if err != nil {
		t.Fatal(err)
	}
	want := `# R
| a |
|---|
| 1 |
sgd 5.2
![c](docs/results/s__curves__curves.png)
60 20.00 2 3
| stage kind | stages | total (min) | mean (s) | longest (s) |
|---|---:|---:|---:|---:|
| aggregate | 1 | 0.0 | 0.5 | 0.5 |
| plot | 1 | 0.0 | 1.0 | 1.0 |
| train | 2 | 3.0 | 90.0 | 120.0 |`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	b, err := os.ReadFile(filepath.Join(root, "docs", "results", "s__curves__curves.png"))
	if err != nil || string(b) != "PNG-BYTES" {
		t.Errorf("copied figure: %q, %v", b, err)
	}
	// Rendering again gives the same bytes and leaves the copy untouched.
	fi, _ := os.Stat(filepath.Join(root, "docs", "results", "s__curves__curves.png"))
	again, err := Render("t.md", tmpl, o)
	if err != nil || string(again) != string(got) {
		t.Fatalf("second render differs: %v", err)
	}
	fi2, _ := os.Stat(filepath.Join(root, "docs", "results", "s__curves__curves.png"))
	if !fi.ModTime().Equal(fi2.ModTime()) {
		t.Error("an unchanged figure was rewritten")
	}
}

func TestRenderErrors(t *testing.T) {
	o, _ := setup(t)
	for tmpl, want := range map[string]string{
		`{{ file "s" "nope" "x" }}`:                       `no stage "nope" in spec "s"`,
		`{{ file "t" "late" "x" }}`:                       "stage late of spec t is not computed",
		`{{ file "s" "table" "../../etc/x" }}`:            "is not a file inside the artifact",
		`{{ file "s" "table" "missing.md" }}`:             "missing.md",
		`{{ timings }}`:                                   "1 stages are not computed",
		`{{ with json "s" "table" "table.md" }}{{ end }}`: "table.md",
		`{{ bogus }}`:                                     `function "bogus" not defined`,
	} {
		_, err := Render("t.md", tmpl, o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to contain %q", tmpl, err, want)
		}
	}
}
