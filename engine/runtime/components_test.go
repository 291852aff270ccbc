package runtime_test

import (
	"github.com/eventops/eventops-engine/engine"
	outputall "github.com/eventops/eventops-engine/outputs/all"
	"github.com/eventops/eventops-engine/processors/all"
)

// components are the component types the tests' pipelines use: every one the binary has.
var components = engine.Components{Processors: all.Factories(), Outputs: outputall.Factories()}
