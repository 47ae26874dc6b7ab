package warm

import (
	_ "github.com/gomlx/gomlx/backends/simplego"
	_ "github.com/gomlx/gomlx/backends/xla"
	_ "github.com/gomlx/gomlx/pkg/core/graph"
	_ "github.com/gomlx/gomlx/pkg/ml/context"
	_ "github.com/gomlx/gomlx/pkg/ml/train/losses"
	_ "github.com/hashicorp/go-multierror"
	_ "gonum.org/v1/gonum/mat"
	_ "gonum.org/v1/plot/plotter"
	_ "gonum.org/v1/plot/vg/vgimg"
	_ "gopkg.in/yaml.v3"
	_ "golang.org/x/term"
	_ "golang.org/x/sys/unix"
)
