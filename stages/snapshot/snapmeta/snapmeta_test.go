package snapmeta

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteMatchesTheRecordedForm(t *testing.T) {
	epoch := 1
	for _, c := range []struct {
		name string
		m    Meta
		// want is the form the runner wrote before this package existed
		// (the quickstart's snap[epoch=1]; an ONNX import as
		// docs/ARTIFACTS.md lists its fields).
		want string
	}{
		{"checkpoint", Meta{Model: "LeNet", InChannels: 1, Classes: 10, Epoch: &epoch, Source: "train"},
			"{\n  \"model\": \"LeNet\",\n  \"in_channels\": 1,\n  \"classes\": 10,\n  \"epoch\": 1,\n  \"source\": \"train\"\n}\n"},
		{"onnx", Meta{Model: "ONNX", InChannels: 1, Classes: 10, Source: "lenet.onnx", InputShape: []int{1, 32, 32}, Graph: GraphFile},
			"{\n  \"model\": \"ONNX\",\n  \"in_channels\": 1,\n  \"classes\": 10,\n  \"epoch\": null,\n  \"source\": \"lenet.onnx\",\n" +
				"  \"input_shape\": [\n    1,\n    32,\n    32\n  ],\n  \"graph\": \"model.onnx\"\n}\n"},
	} {
		dir := t.TempDir()
		if err := Write(dir, c.m); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(filepath.Join(dir, File))
		if string(got) != c.want {
			t.Errorf("%s: wrote\n%s\nwant\n%s", c.name, got, c.want)
		}
		back, err := Read(dir)
		if err != nil || back.Model != c.m.Model || back.Graph != c.m.Graph || (back.Epoch == nil) != (c.m.Epoch == nil) {
			t.Errorf("%s: read back %+v, %v", c.name, back, err)
		}
	}
}
