package filter

import "github.com/eventops/eventops-engine/config"

// Config is the filter processor's configuration.
type Config struct {
	When config.Expr `yaml:"when" required:"true" doc:"Boolean expression over the record; records for which it is true are kept, the others dropped. A missing field makes comparisons false."`
}

// Validate checks that a predicate was written.
func (c *Config) Validate() error {
	if c.When.IsZero() {
		return config.FieldErrorf("when", "a boolean expression is required, e.g. 'metric == \"cpu_load\"'")
	}
	return nil
}
