package enrich

import (
	"strings"

	"github.com/eventops/eventops-engine/config"
)

// What to do with a record whose key is not in the table.
const (
	OnMissKeep    = "keep"
	OnMissDrop    = "drop"
	OnMissDefault = "default"
)

// Config is the enrich processor's configuration.
type Config struct {
	Lookup    string            `yaml:"lookup" required:"true" ref:"lookups" doc:"Name of a lookup table declared under lookups:."`
	Key       config.Expr       `yaml:"key" required:"true" doc:"Expression giving the key to look up, e.g. source.source_id."`
	Into      string            `yaml:"into" default:"tags" doc:"Object field that receives the row's columns (created if missing; a dotted path names a nested object)."`
	OnMiss    string            `yaml:"on_miss" default:"keep" enum:"keep,drop,default" doc:"When the key is not in the table: keep the record unchanged, drop it (counted), or merge the default values."`
	Default   map[string]string `yaml:"default" doc:"Values merged into the object when on_miss is default."`
	Fields    []string          `yaml:"fields" doc:"Columns to copy; default all."`
	Overwrite *bool             `yaml:"overwrite" default:"true" doc:"Whether the row's values replace keys the object already has."`
}

// Validate checks the fields that do not need the lookup tables.
func (c *Config) Validate() error {
	if c.Lookup == "" {
		return config.FieldErrorf("lookup", "name the lookup table to join against")
	}
	if c.Key.IsZero() {
		return config.FieldErrorf("key", "an expression giving the lookup key is required, e.g. source.source_id")
	}
	switch c.OnMiss {
	case "", OnMissKeep, OnMissDrop:
		if len(c.Default) > 0 {
			return config.FieldErrorf("default", "default values are used only with on_miss: default")
		}
	case OnMissDefault:
		if len(c.Default) == 0 {
			return config.FieldErrorf("default", "on_miss: default needs default values, e.g. {site: unknown}")
		}
	default:
		return config.FieldErrorf("on_miss", "must be one of keep, drop, default (got %q)", c.OnMiss)
	}
	if c.Into != "" {
		for _, part := range strings.Split(c.Into, ".") {
			if part == "" {
				return config.FieldErrorf("into", "%q is not a field name", c.Into)
			}
		}
	}
	for i, f := range c.Fields {
		if f == "" {
			return config.FieldErrorf("fields["+itoa(i)+"]", "empty column name")
		}
	}
	return nil
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
