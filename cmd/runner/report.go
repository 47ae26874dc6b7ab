package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/hessian-spectra/runner/report"
)

const reportHelp = `
Report renders a text/template (see package report) over the cached
artifacts of the specs and writes the page to --out, copying the figures it
names into --assets (default: a folder "results" beside --out). Every stage
the template names must be cached: run the specs first. Rendering reads only
the cache, so the same cache gives the same bytes.

  runner report specs/htr_lenet_fashionmnist_cpu.yaml specs/te_lenet_fashionmnist_cpu.yaml \
      --template docs/RESULTS.tmpl.md --out RESULTS.md --assets docs/results`

func runReport(c *cli, args []string) int {
	cmd := findCommand("report")
	fs := c.newFlags(cmd, reportHelp)
	tmplPath := fs.String("template", "", "the template file (Go text/template)")
	out := fs.String("out", "", "the page to write")
	assets := fs.String("assets", "", "folder for copied figures (default: results/ beside --out)")
	cache := cacheFlag(fs)
	var sf specFlags
	sf.add(fs)
	pos, code, ok := c.parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) == 0 || *tmplPath == "" || *out == "" {
		fs.Usage()
		return exitUsage
	}
	text, err := os.ReadFile(*tmplPath)
	if err != nil {
		fmt.Fprintf(c.stderr, "runner report: %v\n", err)
		return exitUsage
	}
	_, store, entries, code, ok := c.planSpecs("report", pos, &sf, *cache)
	if !ok {
		return code
	}
	stages := make([]report.Stage, 0, len(entries))
	for _, e := range entries {
		s := report.Stage{Spec: e.Spec, ID: e.ID, Kind: e.Kind}
		if e.Cached {
			rec, found, err := store.Get(e.Key)
			if err != nil {
				fmt.Fprintf(c.stderr, "runner report: %s: %v\n", e.ID, err)
				return exitFailed
			}
			if found {
				s.Dir, s.Seconds = e.Dir, rec.Seconds
			}
		}
		stages = append(stages, s)
	}
	linkDir := filepath.Dir(*out)
	if *assets == "" {
		*assets = filepath.Join(linkDir, "results")
	}
	page, err := report.Render(filepath.Base(*tmplPath), string(text), report.Options{
		Stages: stages, AssetsDir: *assets, LinkDir: linkDir,
	})
	if err != nil {
		fmt.Fprintf(c.stderr, "runner report: %v\n", err)
		return exitFailed
	}
	if err := report.WriteFile(*out, page); err != nil {
		fmt.Fprintf(c.stderr, "runner report: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(c.stdout, "wrote %s (%d bytes)\n", *out, len(page))
	return exitOK
}
