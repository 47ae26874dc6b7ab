package records

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hessian-spectra/runner/stage"
)

// StageName returns the stage name of a stage instance id: the part before
// the matrix values, e.g. "sgd" for "sgd[seed=3]".
func StageName(id string) string {
	if i := strings.IndexByte(id, '['); i >= 0 {
		return id[:i]
	}
	return id
}

// Group is a set of artifacts that belong together, such as the reruns of one
// training method.
type Group struct {
	Name      string
	Artifacts []stage.Artifact
}

// GroupBy splits artifacts into groups, in order of first appearance. With
// key "" an artifact's group is the name of the stage that produced it (so
// `needs: {runs: ["sgd[*]", "htr[*]"]}` gives groups sgd and htr); otherwise
// it is the artifact's matrix value for key, and an artifact without one is
// an error.
func GroupBy(arts []stage.Artifact, key string) ([]Group, error) {
	var groups []Group
	index := map[string]int{}
	for _, a := range arts {
		name := StageName(a.Stage)
		if key != "" {
			v, ok := a.Matrix[key]
			if !ok {
				return nil, fmt.Errorf("artifact of %s has no matrix value %q to group by (has %s)", a.Stage, key, matrixKeys(a.Matrix))
			}
			name = fmt.Sprint(v)
		}
		i, ok := index[name]
		if !ok {
			i = len(groups)
			index[name] = i
			groups = append(groups, Group{Name: name})
		}
		groups[i].Artifacts = append(groups[i].Artifacts, a)
	}
	return groups, nil
}

func matrixKeys(m map[string]any) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}
