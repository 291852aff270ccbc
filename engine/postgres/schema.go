package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/eventops/eventops-engine/engine/tables"
)

// querier is what catalog reads need: a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// builtinColumn is a column of a built-in table and the default expression that fills it.
type builtinColumn struct {
	name string
	ddl  string
	expr string
}

// builtinTable is one of the tables the engine knows how to create: the seed's metrics and
// alerts tables, extended with event_id (the dedupe key) and, for alerts, the fields of the
// engine's alert records.
type builtinTable struct {
	columns []builtinColumn
	// indexes serve the API's queries; each is "name (columns)".
	indexes []string
}

// idText is the type of identifier columns (ids, tenants, hosts, metric and rule names):
// byte-order collation, because they are compared for equality and sorted only to be
// grouped, and locale-aware comparison made every index insert on them ≈10-15% dearer
// (measured with 300k rows on a C.UTF-8 database, which PostgreSQL does not treat as "C").
const idText = `TEXT COLLATE "C"`

// builtinTables are the built-in tables (engine/tables, shared with the Parquet sink) with
// PostgreSQL types and the indexes that serve the API's queries.
var builtinTables = map[string]builtinTable{
	"metrics": pgTable("metrics", "tenant_source_metric_ts_idx (tenant, source_id, metric, ts DESC)"),
	// The alerts columns added with the threshold processor's alert lifecycle
	// (previous_severity, reason, fired_at, annotations) reach an older alerts table through
	// createBuiltin's ALTER TABLE ... ADD COLUMN.
	"alerts":    pgTable("alerts", "ts_idx (ts DESC)", "fingerprint_ts_idx (fingerprint, ts DESC)"),
	"incidents": pgTable("incidents", "ts_idx (ts DESC)", "incident_ts_idx (incident_id, ts DESC)"),
}

// pgDDL is the PostgreSQL type of each neutral column type.
var pgDDL = map[tables.Type]string{
	tables.ID:     idText,
	tables.Text:   "TEXT",
	tables.Time:   "TIMESTAMPTZ",
	tables.Double: "DOUBLE PRECISION",
	tables.JSON:   "JSONB",
}

func pgTable(name string, indexes ...string) builtinTable {
	var t builtinTable
	for _, c := range tables.Builtin[name].Columns {
		ddl := pgDDL[c.Type]
		if c.NotNull {
			ddl += " NOT NULL"
		}
		t.columns = append(t.columns, builtinColumn{c.Name, ddl, c.Expr})
	}
	t.indexes = indexes
	return t
}

// tableRef is a table name as configured ("metrics" or "ops.metrics"), split and quoted.
type tableRef struct {
	name  string // as written, for messages and metric labels
	ident pgx.Identifier
}

func parseTable(name string) (tableRef, error) {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return tableRef{}, fmt.Errorf("table %q: want a table name or schema.table", name)
	}
	for _, p := range parts {
		if p == "" {
			return tableRef{}, fmt.Errorf("table %q: empty name", name)
		}
	}
	return tableRef{name: name, ident: pgx.Identifier(parts)}, nil
}

// base is the table name without its schema.
func (t tableRef) base() string { return t.ident[len(t.ident)-1] }

// quoted is the table name safe to splice into SQL.
func (t tableRef) quoted() string { return t.ident.Sanitize() }

// quotedIndex names an index of the table; an index lives in its table's schema, so the
// name is not schema-qualified.
func (t tableRef) quotedIndex(suffix string) string {
	return pgx.Identifier{t.base() + "_" + suffix}.Sanitize()
}

// column is a table column as the catalog describes it.
type column struct {
	name string
	// typ is the column's base type, schema-qualified and quoted (e.g. "pg_catalog"."int4"),
	// used to declare staging columns; typmods (varchar lengths, numeric scales) are left
	// to the assignment cast into the target table.
	typ  string
	kind kind
	udt  string
}

// readColumns lists the columns of table in order, resolving the name through the
// connection's search_path exactly as a query would. It returns no columns and no error
// when the table does not exist.
func readColumns(ctx context.Context, q querier, t tableRef) ([]column, error) {
	rows, err := q.Query(ctx, `
SELECT c.column_name, c.udt_schema, c.udt_name
FROM information_schema.columns c
JOIN pg_catalog.pg_class cl ON cl.oid = pg_catalog.to_regclass($1)
JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace
WHERE c.table_schema = n.nspname AND c.table_name = cl.relname
ORDER BY c.ordinal_position`, t.quoted())
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", t.name, err)
	}
	var cols []column
	for rows.Next() {
		var name, udtSchema, udt string
		if err := rows.Scan(&name, &udtSchema, &udt); err != nil {
			return nil, fmt.Errorf("read columns of %s: %w", t.name, err)
		}
		cols = append(cols, column{
			name: name,
			typ:  pgx.Identifier{udtSchema, udt}.Sanitize(),
			kind: kindOf(udt),
			udt:  udt,
		})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", t.name, err)
	}
	return cols, nil
}

// hasUniqueIndex reports whether col alone carries a unique, non-partial index, which is
// what INSERT ... ON CONFLICT (col) needs.
func hasUniqueIndex(ctx context.Context, q querier, t tableRef, col string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `
SELECT EXISTS (
  SELECT 1 FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
  WHERE i.indrelid = pg_catalog.to_regclass($1) AND i.indisunique AND i.indnkeyatts = 1
    AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = $2)`, t.quoted(), col).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("read indexes of %s: %w", t.name, err)
	}
	return ok, nil
}

// createBuiltin creates a built-in table and its indexes if they are missing, and adds
// columns missing from an older layout (the seed's tables have no event_id). It serializes
// with other engines through a transaction-scoped advisory lock, because concurrent
// CREATE ... IF NOT EXISTS statements can still collide in the catalog.
func createBuiltin(ctx context.Context, db interface {
	Begin(context.Context) (pgx.Tx, error)
}, t tableRef, def builtinTable, dedupeKey string) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("create table %s: %w", t.name, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit

	if _, err := tx.Exec(ctx, `SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('eventops.create.' || $1, 0))`, t.quoted()); err != nil {
		return fmt.Errorf("create table %s: lock: %w", t.name, err)
	}
	var defs []string
	for _, c := range def.columns {
		defs = append(defs, pgx.Identifier{c.name}.Sanitize()+" "+c.ddl)
	}
	stmts := []string{fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (id BIGSERIAL PRIMARY KEY, %s)", t.quoted(), strings.Join(defs, ", "))}
	if err := execAll(ctx, tx, t, stmts); err != nil {
		return err
	}

	// ALTER TABLE and CREATE INDEX lock the table even when they turn out to have nothing to
	// do, which would stall the writers of an engine already running; so only what the
	// catalog says is missing is issued.
	existing, err := readColumns(ctx, tx, t)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, c := range existing {
		have[c.name] = true
	}
	stmts = stmts[:0]
	for _, c := range def.columns {
		if !have[c.name] {
			// NOT NULL is left out: rows written before the column existed have no value.
			typ := strings.TrimSuffix(c.ddl, " NOT NULL")
			stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", t.quoted(), pgx.Identifier{c.name}.Sanitize(), typ))
		}
	}
	var schema string
	if err := tx.QueryRow(ctx, `SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = pg_catalog.to_regclass($1)`, t.quoted()).Scan(&schema); err != nil {
		return fmt.Errorf("create table %s: find its schema: %w", t.name, err)
	}
	indexes := append([]string{dedupeKey + "_key (" + pgx.Identifier{dedupeKey}.Sanitize() + ")"}, def.indexes...)
	for i, idx := range indexes {
		name, cols, _ := strings.Cut(idx, " ")
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT pg_catalog.to_regclass($1) IS NOT NULL`, pgx.Identifier{schema, t.base() + "_" + name}.Sanitize()).Scan(&exists); err != nil {
			return fmt.Errorf("create table %s: look up index: %w", t.name, err)
		}
		if exists {
			continue
		}
		unique := ""
		if i == 0 {
			unique = "UNIQUE "
		}
		stmts = append(stmts, fmt.Sprintf("CREATE %sINDEX IF NOT EXISTS %s ON %s %s", unique, t.quotedIndex(name), t.quoted(), cols))
	}
	if err := execAll(ctx, tx, t, stmts); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("create table %s: %w", t.name, err)
	}
	return nil
}

func execAll(ctx context.Context, tx pgx.Tx, t tableRef, stmts []string) error {
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("create table %s: %s: %w", t.name, s, err)
		}
	}
	return nil
}
