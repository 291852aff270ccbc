package mapproc

import "github.com/eventops/eventops-engine/config"

// Config is the mapping itself: the processor's YAML value is a mapping from output field
// names to expressions (or nested mappings, which build nested objects), decoded straight
// into config.Fields.
type Config = config.Fields

func newConfig() any { return &config.Fields{} }
