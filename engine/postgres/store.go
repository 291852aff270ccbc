package postgres

import (
	"context"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventops/eventops-engine/engine/store"
)

// ErrBadQuery wraps every error caused by the query itself (unknown table or column, a value
// that does not fit its column) rather than by the database, so the API can answer 400. It is
// store.ErrBadQuery, shared by every backend.
var ErrBadQuery = store.ErrBadQuery

// Store answers the API's table queries from PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// NewStore returns a Store on the shared pool for dsn.
func NewStore(ctx context.Context, dsn string) (*Store, error) {
	pool, err := Pool(ctx, dsn)
	if err != nil {
		return nil, err
	}
	return &Store{pool: pool}, nil
}

// Columns lists the columns of table, resolved through the connection's search_path.
func (s *Store) Columns(ctx context.Context, table string) ([]string, error) {
	cols, _, err := s.columns(ctx, table)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	return names, nil
}

func (s *Store) columns(ctx context.Context, table string) ([]column, tableRef, error) {
	t, err := parseTable(table)
	if err != nil {
		return nil, t, fmt.Errorf("%w: %v", ErrBadQuery, err)
	}
	cols, err := readColumns(ctx, s.pool, t)
	if err != nil {
		return nil, t, fmt.Errorf("postgres store: %w", err)
	}
	if len(cols) == 0 {
		return nil, t, fmt.Errorf("%w: table %s does not exist", ErrBadQuery, table)
	}
	return cols, t, nil
}

// Query runs q. Every column name is checked against the table's columns and quoted; every
// value is converted to its column's type and bound as a parameter.
func (s *Store) Query(ctx context.Context, q store.Query) ([]map[string]any, error) {
	cols, t, err := s.columns(ctx, q.Table)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]column, len(cols))
	for _, c := range cols {
		byName[c.name] = c
	}
	lookup := func(what, name string) (column, error) {
		c, ok := byName[name]
		if !ok {
			return c, fmt.Errorf("%w: %s: table %s has no column %q", ErrBadQuery, what, q.Table, name)
		}
		return c, nil
	}

	var sql strings.Builder
	sql.WriteString("SELECT ")
	if len(q.Columns) == 0 {
		for i, c := range cols {
			if i > 0 {
				sql.WriteString(", ")
			}
			sql.WriteString(pgx.Identifier{c.name}.Sanitize())
		}
	} else {
		for i, name := range q.Columns {
			if _, err := lookup("columns", name); err != nil {
				return nil, err
			}
			if i > 0 {
				sql.WriteString(", ")
			}
			sql.WriteString(pgx.Identifier{name}.Sanitize())
		}
	}
	sql.WriteString(" FROM ")
	if q.LatestBy != "" {
		by, err := lookup("latest_by", q.LatestBy)
		if err != nil {
			return nil, err
		}
		at, err := lookup("latest_by time", q.LatestTime)
		if err != nil {
			return nil, err
		}
		byID, atID := pgx.Identifier{by.name}.Sanitize(), pgx.Identifier{at.name}.Sanitize()
		// Rows of one key at the same time: the one stored last is the newest (a resolved
		// record dated at its alert's firing time, say). The engine's tables number their
		// rows in id.
		tie := ""
		if _, ok := byName["id"]; ok {
			tie = ", id DESC"
		}
		sql.WriteString("(SELECT DISTINCT ON (" + byID + ") * FROM " + t.quoted() +
			" ORDER BY " + byID + ", " + atID + " DESC" + tie + ") AS latest")
	} else {
		sql.WriteString(t.quoted())
	}

	var args []any
	for i, cond := range q.Where {
		c, err := lookup("where", cond.Column)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			sql.WriteString(" WHERE ")
		} else {
			sql.WriteString(" AND ")
		}
		sql.WriteString(pgx.Identifier{c.name}.Sanitize())
		if cond.Value == nil {
			sql.WriteString(" IS NULL")
			continue
		}
		v, err := whereValue(c, cond.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: where %s: %v", ErrBadQuery, c.name, err)
		}
		args = append(args, v)
		sql.WriteString(" = $" + strconv.Itoa(len(args)))
	}
	if q.Range != nil {
		var err error
		if args, err = rangeSQL(&sql, q.Range, len(q.Where) == 0, lookup, args); err != nil {
			return nil, err
		}
	}
	if q.OrderBy != "" {
		if _, err := lookup("order", q.OrderBy); err != nil {
			return nil, err
		}
		sql.WriteString(" ORDER BY ")
		sql.WriteString(pgx.Identifier{q.OrderBy}.Sanitize())
		if q.Desc {
			sql.WriteString(" DESC")
		}
	}
	if q.Limit > 0 {
		sql.WriteString(" LIMIT " + strconv.Itoa(q.Limit))
	}

	rows, err := s.pool.Query(ctx, sql.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("postgres store: query %s: %w", q.Table, err)
	}
	defer rows.Close()
	fields := rows.FieldDescriptions()
	var out []map[string]any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, fmt.Errorf("postgres store: query %s: %w", q.Table, err)
		}
		m := make(map[string]any, len(vals))
		for i, v := range vals {
			m[fields[i].Name] = jsonFriendly(v)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres store: query %s: %w", q.Table, err)
	}
	return out, nil
}

// whereValue converts a condition value like the output converts record values, so that
// a query parameter "92" matches a double precision column and a number matches a text one.
func whereValue(c column, v any) (any, error) {
	if c.kind == kindUnsupported {
		// Sent as text: the server parses it with the column type's input function.
		s, err := toText(v)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return convert(c.kind, v)
}

// jsonFriendly turns a value pgx decoded into one that encodes to plain JSON: timestamps as
// RFC 3339 UTC strings, integers as int64, floats as float64, UUIDs as strings.
func jsonFriendly(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int:
		return int64(x)
	case float32:
		return float64(x)
	case [16]byte:
		return fmt.Sprintf("%x-%x-%x-%x-%x", x[0:4], x[4:6], x[6:8], x[8:10], x[10:16])
	case pgtype.Numeric:
		f, err := x.Float64Value()
		if err != nil || !f.Valid {
			return nil
		}
		return f.Float64
	case *big.Int:
		return x.String()
	case fmt.Stringer:
		return x.String()
	}
	return v
}

// rangeSQL appends the range's conditions on its column (first says no WHERE was written
// yet), with its ends bound as arguments.
func rangeSQL(sql *strings.Builder, r *store.Range, first bool, lookup func(what, name string) (column, error), args []any) ([]any, error) {
	c, err := lookup("time range", r.Column)
	if err != nil {
		return nil, err
	}
	id := pgx.Identifier{c.name}.Sanitize()
	for _, end := range []struct {
		t  time.Time
		op string
	}{{r.From, " >= $"}, {r.To, " < $"}} {
		if end.t.IsZero() {
			continue
		}
		if first {
			sql.WriteString(" WHERE ")
			first = false
		} else {
			sql.WriteString(" AND ")
		}
		args = append(args, end.t)
		sql.WriteString(id + end.op + strconv.Itoa(len(args)))
	}
	return args, nil
}
