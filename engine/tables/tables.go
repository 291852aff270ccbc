// Package tables defines the engine's built-in tables (the seed's metrics and alerts) once,
// independently of the store that holds them: each column's name, its value type and the
// expression that fills it from a record. The PostgreSQL output maps the types to DDL and the
// Parquet sink to Parquet physical/logical types, so both stores expose the same columns and a
// route answers the same from either.
package tables

// Type is a column's value type, in store-neutral terms.
type Type int

const (
	// ID is an identifier: ids, tenants, hosts, metric and rule names (compared for equality).
	ID Type = iota
	// Text is free text (messages).
	Text
	// Time is an instant (RFC 3339 strings and epoch numbers are accepted).
	Time
	// Double is a 64-bit float.
	Double
	// JSON is an object or array (tags, labels), stored as JSON.
	JSON
)

// Column is a column of a built-in table and the default expression that fills it.
type Column struct {
	Name string
	Type Type
	Expr string
	// NotNull marks the dedupe key.
	NotNull bool
}

// Table is a built-in table: its columns, in order.
type Table struct {
	Columns []Column
}

// Builtin holds the built-in tables by name: the seed's metrics and alerts tables, extended
// with event_id (the dedupe key) and, for alerts, the fields of the engine's alert records;
// and the incidents of the correlate processor.
var Builtin = map[string]Table{
	"metrics": {Columns: []Column{
		{Name: "event_id", Type: ID, Expr: "event_id", NotNull: true},
		{Name: "ts", Type: Time, Expr: "ts_event"},
		{Name: "tenant", Type: ID, Expr: "tenant_id"},
		{Name: "source_id", Type: ID, Expr: "source?.source_id"},
		{Name: "metric", Type: ID, Expr: "metric"},
		{Name: "value", Type: Double, Expr: "value"},
		{Name: "unit", Type: ID, Expr: "unit"},
		{Name: "tags", Type: JSON, Expr: "tags"},
	}},
	"alerts": {Columns: []Column{
		{Name: "event_id", Type: ID, Expr: "event_id", NotNull: true},
		{Name: "ts", Type: Time, Expr: "ts"},
		{Name: "tenant", Type: ID, Expr: "tenant_id"},
		{Name: "source_id", Type: ID, Expr: "source_id"},
		{Name: "metric", Type: ID, Expr: "metric"},
		{Name: "severity", Type: ID, Expr: "severity"},
		{Name: "rule", Type: ID, Expr: "rule"},
		{Name: "value", Type: Double, Expr: "value"},
		{Name: "message", Type: Text, Expr: "message"},
		{Name: "tags", Type: JSON, Expr: "tags"},
		{Name: "fingerprint", Type: ID, Expr: "fingerprint"},
		{Name: "state", Type: ID, Expr: "state"},
		{Name: "started_at", Type: Time, Expr: "started_at"},
		{Name: "resolved_at", Type: Time, Expr: "resolved_at"},
		{Name: "labels", Type: JSON, Expr: "labels"},
		{Name: "previous_severity", Type: ID, Expr: "previous_severity"},
		{Name: "reason", Type: ID, Expr: "reason"},
		{Name: "fired_at", Type: Time, Expr: "fired_at"},
		{Name: "annotations", Type: JSON, Expr: "annotations"},
	}},
	// incidents are the correlate processor's incident records (processors/correlate).
	"incidents": {Columns: []Column{
		{Name: "event_id", Type: ID, Expr: "event_id", NotNull: true},
		{Name: "ts", Type: Time, Expr: "ts"},
		{Name: "tenant", Type: ID, Expr: "tenant_id"},
		{Name: "incident_id", Type: ID, Expr: "incident_id"},
		{Name: "state", Type: ID, Expr: "state"},
		{Name: "change", Type: ID, Expr: "change"},
		{Name: "title", Type: Text, Expr: "title"},
		{Name: "root_cause", Type: ID, Expr: "root_cause"},
		{Name: "confidence", Type: Double, Expr: "confidence"},
		{Name: "size", Type: Double, Expr: "size"},
		{Name: "firing", Type: Double, Expr: "firing"},
		{Name: "opened_at", Type: Time, Expr: "opened_at"},
		{Name: "resolved_at", Type: Time, Expr: "resolved_at"},
		{Name: "merged_into", Type: ID, Expr: "merged_into"},
		{Name: "candidates", Type: JSON, Expr: "candidates"},
		{Name: "evidence", Type: JSON, Expr: "evidence"},
		{Name: "members", Type: JSON, Expr: "members"},
	}},
}
