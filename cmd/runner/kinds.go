package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/hessian-spectra/runner/stage"
)

const kindsHelp = `
Kinds lists the stage kinds built into this runner (or the named ones) with
their version, params (name, type, default, bounds, doc), inputs, and the
params in which a cached run it can build on may differ.`

func runKinds(c *cli, args []string) int {
	cmd := findCommand("kinds")
	fs := c.newFlags(cmd, kindsHelp)
	names, code, ok := c.parse(fs, args)
	if !ok {
		return code
	}
	if len(names) == 0 {
		names = c.reg.Names()
	}
	if len(names) == 0 {
		fmt.Fprintln(c.stdout, "no stage kinds are built into this runner")
		return exitOK
	}
	for i, name := range names {
		k := c.reg[name]
		if k == nil {
			fmt.Fprintf(c.stderr, "runner kinds: no kind %q%s\n", name, stage.DidYouMean(name, c.reg.Names()))
			return exitUsage
		}
		if i > 0 {
			fmt.Fprintln(c.stdout)
		}
		fmt.Fprintf(c.stdout, "%s (v%d): %s\n", k.Name, k.Version, k.Doc)
		if len(k.Params) > 0 {
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  PARAM\tTYPE\tDEFAULT\tDOC")
			writeParams(tw, "", k.Params)
			tw.Flush()
		}
		for _, in := range k.Inputs {
			var tags []string
			if in.Many {
				tags = append(tags, "many")
			}
			if in.Optional {
				tags = append(tags, "optional")
			}
			t := ""
			if len(tags) > 0 {
				t = " (" + strings.Join(tags, ", ") + ")"
			}
			fmt.Fprintf(c.stdout, "  input %s%s: %s\n", in.Name, t, in.Doc)
		}
		if k.Reuse != nil {
			fmt.Fprintf(c.stdout, "  reuses a cached run that differs only in %s\n", strings.Join(k.Reuse.Params, ", "))
		}
	}
	return exitOK
}

func writeParams(tw *tabwriter.Writer, prefix string, ps []stage.Param) {
	for _, p := range ps {
		typ := p.Type.String()
		if p.Type == stage.List || p.Type == stage.Map {
			typ += " of " + p.Elem.String()
		}
		def := "-"
		switch {
		case p.Required:
			def = "(required)"
		case p.Type == stage.Object:
			def = "(fields)"
		case p.Default != nil:
			def = fmtValue(p.Default)
		}
		doc := p.Doc
		var limits []string
		if p.Min != nil && p.MinExclusive {
			limits = append(limits, "> "+fmtValue(*p.Min))
		} else if p.Min != nil {
			limits = append(limits, "≥ "+fmtValue(*p.Min))
		}
		if p.Max != nil {
			limits = append(limits, "≤ "+fmtValue(*p.Max))
		}
		if len(p.Enum) > 0 {
			limits = append(limits, "one of "+strings.Join(p.Enum, ", "))
		}
		if len(limits) > 0 {
			doc = strings.TrimSpace(doc + " [" + strings.Join(limits, "; ") + "]")
		}
		fmt.Fprintf(tw, "  %s%s\t%s\t%s\t%s\n", prefix, p.Name, typ, def, doc)
		if p.Type == stage.Object {
			writeParams(tw, prefix+p.Name+".", p.Fields)
		}
	}
}

// fmtValue shows a default or a bound as a spec would write it.
func fmtValue(v any) string {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatFloat(x, 'f', -1, 64)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		if x == "" {
			return `""`
		}
		return x
	case []string:
		return "[" + strings.Join(x, ", ") + "]"
	}
	return fmt.Sprint(v)
}
