// Package store is the read side of the engine's tables: the API answers its declared
// routes through a Store, whichever backend (PostgreSQL now, the Parquet store later)
// holds the table.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrBadQuery wraps every error caused by the request rather than by the backend: an unknown
// table or column, or a value that does not fit its column (?value=high on a number column).
// The API answers those with 400 and the reason; anything else is a 500.
var ErrBadQuery = errors.New("bad query")

// Query asks for rows of one table. Column names come from the pipeline file and are checked
// against Columns before a query runs; values are always bound as parameters.
type Query struct {
	Table   string
	Where   []Cond
	Columns []string // empty: all columns
	OrderBy string   // column name; empty: backend order
	Desc    bool
	Limit   int
	// LatestBy, if set, keeps only the newest row (by LatestTime) of each value of this
	// column; Where applies to those rows.
	LatestBy   string
	LatestTime string
	// Range, if set, keeps only rows whose time column lies in it (after LatestBy, as
	// Where).
	Range *Range
}

// Range is a span of a time column: From inclusive, To exclusive; a zero end is unbounded.
// A row whose column is NULL is outside every range.
type Range struct {
	Column   string
	From, To time.Time
}

// Holds says whether t lies in the range.
func (r *Range) Holds(t time.Time) bool {
	return (r.From.IsZero() || !t.Before(r.From)) && (r.To.IsZero() || t.Before(r.To))
}

// Cond is one equality condition.
type Cond struct {
	Column string
	Value  any
}

// Store answers queries on tables.
type Store interface {
	// Columns lists the table's columns, or an error if the table does not exist.
	Columns(ctx context.Context, table string) ([]string, error)
	// Query returns the matching rows as column name to value, in the asked order.
	Query(ctx context.Context, q Query) ([]map[string]any, error)
}
