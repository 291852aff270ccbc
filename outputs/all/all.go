// Package all is the one list of the output types the engine knows besides the built-in
// topic output. Adding an output means adding its factory here; nothing registers itself.
package all

import (
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/parquet"
	"github.com/eventops/eventops-engine/engine/postgres"
	"github.com/eventops/eventops-engine/engine/stdout"
	"github.com/eventops/eventops-engine/engine/webhook"
)

// Factories returns every registered output type.
func Factories() []engine.OutputFactory {
	return []engine.OutputFactory{
		postgres.Factory,
		parquet.Factory,
		webhook.Factory,
		webhook.AlertmanagerFactory,
		stdout.Factory,
		stdout.DropFactory,
	}
}
