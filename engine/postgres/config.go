package postgres

import (
	"slices"
	"strings"

	"github.com/eventops/eventops-engine/config"
)

// Config is the postgres output's settings: the table a stream's records (or a sink's
// topic) are written into.
type Config struct {
	DSN       string        `yaml:"dsn" required:"true" doc:"PostgreSQL connection string."`
	Table     string        `yaml:"table" required:"true" doc:"Table name; metrics and alerts have built-in columns."`
	Columns   config.Fields `yaml:"columns" doc:"Column name to expression; default for the built-in tables."`
	DedupeKey string        `yaml:"dedupe_key" default:"event_id" doc:"Column with a unique index; a redelivered record with the same value is not inserted twice."`
	Create    *bool         `yaml:"create" default:"true" doc:"Create the table and its indexes if missing."`
}

var (
	_ config.Validator   = (*Config)(nil)
	_ config.TableWriter = (*Config)(nil)
)

// Validate checks what can be known without a database: the table name, that a table other
// than the built-in ones says how each column is filled, and that the dedupe key is one of
// the columns written.
func (c *Config) Validate() error {
	_, fields, err := c.mapping()
	if err != nil {
		return err
	}
	names := fieldNames(fields)
	if !slices.Contains(names, c.dedupeKey()) {
		return config.FieldErrorf("dedupe_key", "dedupe key %q is not one of the columns the output writes (%s)", c.dedupeKey(), strings.Join(names, ", "))
	}
	return nil
}

// TableName is the table written.
func (c *Config) TableName() string { return c.Table }

// StoreKind names PostgreSQL in lint's messages about tables written to two kinds of store.
func (c *Config) StoreKind() string { return "PostgreSQL" }

func (c *Config) dedupeKey() string {
	if c.DedupeKey == "" {
		return "event_id"
	}
	return c.DedupeKey
}

// mapping is the table and what fills each of its columns: a built-in table's columns with
// Columns replacing or adding to them, or exactly Columns.
func (c *Config) mapping() (tableRef, config.Fields, error) {
	t, err := parseTable(c.Table)
	if err != nil {
		return tableRef{}, nil, config.FieldErrorf("table", "%v", err)
	}
	if builtin, ok := builtinTables[t.base()]; ok {
		return t, mergeColumns(builtin, c.Columns), nil
	}
	if len(c.Columns) == 0 {
		return tableRef{}, nil, config.FieldErrorf("columns", "table %s is not a built-in table (metrics, alerts): say which expression fills each column", t.name)
	}
	return t, c.Columns, nil
}

func fieldNames(fields config.Fields) []string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	return names
}
