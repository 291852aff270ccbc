// Package all is the one list of the processor types the engine knows. Adding a processor
// means adding it here; nothing registers itself.
package all

import (
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/processors/anomaly"
	"github.com/eventops/eventops-engine/processors/correlate"
	"github.com/eventops/eventops-engine/processors/enrich"
	"github.com/eventops/eventops-engine/processors/filter"
	mapproc "github.com/eventops/eventops-engine/processors/map"
	"github.com/eventops/eventops-engine/processors/notify"
	"github.com/eventops/eventops-engine/processors/servicegraph"
	"github.com/eventops/eventops-engine/processors/threshold"
	"github.com/eventops/eventops-engine/processors/window"
)

// Factories returns every processor type, in documentation order.
func Factories() []engine.ProcessorFactory {
	return []engine.ProcessorFactory{
		mapproc.Factory,
		filter.Factory,
		enrich.Factory,
		window.Factory,
		threshold.Factory,
		anomaly.Factory,
		servicegraph.Factory,
		correlate.Factory,
		notify.Factory,
	}
}

// Factory returns the factory of processor type typ.
func Factory(typ string) (engine.ProcessorFactory, bool) {
	return engine.Components{Processors: Factories()}.Processor(typ)
}
