package main

import (
	"github.com/eventops/eventops-engine/engine"
	outputs "github.com/eventops/eventops-engine/outputs/all"
	processors "github.com/eventops/eventops-engine/processors/all"
)

// components are the component types this binary is built with: where the explicit lists
// of processors and outputs meet, as an OpenTelemetry Collector distribution lists its
// factories. Loading, lint, the JSON Schema and the runtime all read them.
func components() engine.Components {
	return engine.Components{Processors: processors.Factories(), Outputs: outputs.Factories()}
}
