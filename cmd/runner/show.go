package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/hessian-spectra/runner/artifacts"
	"github.com/hessian-spectra/runner/runner"
)

const showHelp = `
Show prints, for each stage instance of the spec (or those ID names: an id,
a stage name or a wildcard ref), its artifact directory in the cache, or
"(not computed)". With a single ID it also lists the artifact's files.`

func runShow(c *cli, args []string) int {
	cmd := findCommand("show")
	fs := c.newFlags(cmd, showHelp)
	asJSON := fs.Bool("json", false, "print JSON: a list of {id, kind, key, digest, dir}")
	cache := cacheFlag(fs)
	var sf specFlags
	sf.add(fs)
	pos, code, ok := c.parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) < 1 || len(pos) > 2 {
		fs.Usage()
		return exitUsage
	}
	pipes, store, entries, code, ok := c.planSpecs("show", pos[:1], &sf, *cache)
	if !ok {
		return code
	}
	if len(pos) == 2 {
		insts, err := pipes[0].Match(pos[1])
		if err != nil {
			fmt.Fprintf(c.stderr, "runner show: %v\n", err)
			return exitUsage
		}
		want := map[string]bool{}
		for _, in := range insts {
			want[in.ID] = true
		}
		var keep []runner.PlanEntry
		for _, e := range entries {
			if want[e.ID] {
				keep = append(keep, e)
			}
		}
		entries = keep
	}
	if *asJSON {
		type item struct {
			ID     string           `json:"id"`
			Kind   string           `json:"kind"`
			Key    artifacts.Key    `json:"key,omitempty"`
			Digest artifacts.Digest `json:"digest,omitempty"`
			Dir    string           `json:"dir,omitempty"`
		}
		out := make([]item, len(entries))
		for i, e := range entries {
			out[i] = item{e.ID, e.Kind, e.Key, e.Digest, e.Dir}
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		enc.Encode(out)
		return exitOK
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	for _, e := range entries {
		dir := e.Dir
		if dir == "" {
			dir = "(not computed)"
		}
		fmt.Fprintf(tw, "%s\t%s\n", e.ID, dir)
	}
	tw.Flush()
	if len(pos) == 2 && len(entries) == 1 && entries[0].Digest != "" {
		m, err := store.Manifest(entries[0].Digest)
		if err == nil {
			fmt.Fprintf(c.stdout, "\n%d files, %d bytes, digest %s:\n", len(m), m.Size(), entries[0].Digest)
			for _, f := range m {
				fmt.Fprintf(c.stdout, "  %10d  %s\n", f.Size, f.Path)
			}
		}
	}
	return exitOK
}
