// Package fetch is the fetch stage kind: one dataset read from its official
// addresses, a local folder or an .npz, preprocessed as the seed does, and
// stored as a fetch artifact (see datasets/README.md).
//
//	data: {kind: fetch, with: {dataset: FashionMNIST}}                        # official URLs
//	data: {kind: fetch, with: {dataset: FashionMNIST, source: dir,
//	                           path: /usr/share/datasets/fashion-mnist}}     # Debian's package
//	data: {kind: fetch, with: {dataset: FashionMNIST, source: npz,
//	                           path: testdata/lenet-fmnist/subset.npz}}
//	data: {kind: fetch, with: {dataset: custom, source: npz, path: my.npz}}  # x, y of your own
//
// The url source keeps downloads under the runner's downloads directory
// (Env.Downloads), resumes partial ones, verifies the published checksums,
// and without a network fails at once with one line naming the address.
package fetch

import (
	"context"
	"fmt"
	"os"

	"github.com/hessian-spectra/runner/datasets"
	"github.com/hessian-spectra/runner/datasets/download"
	"github.com/hessian-spectra/runner/stage"
)

// version is the kind's implementation version: bump it when the artifact
// changes meaning or layout.
const version = 1

// Kind is the fetch stage kind.
var Kind = &stage.Kind{
	Name:    "fetch",
	Version: version,
	Doc:     "a dataset from its official URLs, a local folder or an .npz, preprocessed as the seed does",
	Params: []stage.Param{
		{Name: "dataset", Type: stage.String, Required: true, Enum: datasets.Names(),
			Doc: "which dataset; custom: arrays of your own (source npz: x of any shape, taken as they are, integer labels y)"},
		{Name: "source", Type: stage.String, Default: "url", Enum: []string{"url", "dir", "npz"},
			Doc: "url: the official addresses (checksums verified); dir: a folder of the published files (path); npz: arrays x, y [, x_test, y_test] (path)"},
		{Name: "path", Type: stage.Path,
			Doc: "the folder (source: dir) or .npz file (source: npz); e.g. /usr/share/datasets/fashion-mnist from Debian's dataset-fashion-mnist"},
		{Name: "train_limit", Type: stage.Int, Default: 0, Min: stage.Bound(0),
			Doc: "keep only the first N training images (0: all), for CPU-scale runs"},
		{Name: "test_limit", Type: stage.Int, Default: 0, Min: stage.Bound(0),
			Doc: "keep only the first N test images (0: all)"},
		{Name: "legacy", Type: stage.Bool, Default: false,
			Doc: "the seed's eigenspectrum class count: 11 outputs for SVHN (output 10 never a target); no effect on other datasets' data"},
	},
	Run: run,
}

// Planned returns the dataset a fetch instance will produce, as its params
// tell at plan time, with the class count the models get (the seed's legacy
// count with legacy set); ok is false when p is not a fetch instance.
func Planned(p *stage.Planned) (info datasets.Info, classes int, ok bool) {
	if p == nil || p.Kind.Name != "fetch" || !p.Params.Has("dataset") {
		return datasets.Info{}, 0, false
	}
	info, err := datasets.Lookup(p.Params.String("dataset"))
	if err != nil {
		return datasets.Info{}, 0, false
	}
	return info, info.ClassesFor(p.Params.Bool("legacy")), true
}

// lookupDataset is datasets.Lookup; tests point the official addresses at
// local servers through it, so that no test touches the internet.
var lookupDataset = datasets.Lookup

func run(ctx context.Context, e *stage.Env) error {
	p := e.Params
	info, err := lookupDataset(p.String("dataset"))
	if err != nil {
		return err
	}
	source, legacy := p.String("source"), p.Bool("legacy")
	path := ""
	if p.Has("path") {
		path = p.String("path")
	}
	switch {
	case source == "url" && path != "":
		return fmt.Errorf("path %s is only used with source: dir or npz (source is url)", path)
	case source != "url" && path == "":
		return fmt.Errorf("source %s needs a path (the %s to read)", source, map[string]string{"dir": "folder", "npz": ".npz file"}[source])
	case info.IsCustom() && source != "npz":
		return fmt.Errorf("dataset %s is read from an .npz only: give source npz and its path", info.Name)
	}
	var set *datasets.Set
	switch source {
	case "url":
		dir := e.Downloads
		if dir == "" {
			tmp, err := os.MkdirTemp("", "runner-fetch-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			dir = tmp
		}
		e.Logf("downloading %s into %s", info.Name, dir)
		set, err = datasets.Download(ctx, info, &download.Client{Dir: dir, Log: e.Log}, legacy, e.Progress)
	case "dir":
		e.Logf("reading %s from folder %s", info.Name, path)
		set, err = datasets.ReadDir(info, path, legacy, e.Progress)
	case "npz":
		e.Logf("reading %s from %s", info.Name, path)
		set, err = datasets.ReadNPZ(info, path, legacy)
	}
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, f := range set.Source.Files {
		e.Logf("  %s  %d bytes  sha256 %s", f.Name, f.Bytes, f.SHA256)
	}
	set.Limit(p.Int("train_limit"), p.Int("test_limit"))
	m := set.Meta()
	e.Logf("%s: %d training and %d test images of %d×%d×%d, %d classes, stored as %s",
		info.Name, m.Train.N, m.Test.N, m.Channels, m.Height, m.Width, m.Classes, m.Pixels)
	if err := set.Write(e.OutDir); err != nil {
		return err
	}
	return nil
}
