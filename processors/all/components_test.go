package all

import (
	"github.com/eventops/eventops-engine/engine"
	outputs "github.com/eventops/eventops-engine/outputs/all"
)

// components are every component type of the engine: the generated docs and schema, and the
// pipelines these tests load, use outputs as well as processors.
func components() engine.Components {
	return engine.Components{Processors: Factories(), Outputs: outputs.Factories()}
}
