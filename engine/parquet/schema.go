package parquet

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	pq "github.com/parquet-go/parquet-go"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/eval"
	"github.com/eventops/eventops-engine/engine/tables"
	"github.com/eventops/eventops-engine/engine/types"
)

// Column is one column of the table as written to the files.
type Column struct {
	Name string
	// Type is the column's value type: tables.ID and tables.Text are Parquet STRING,
	// tables.Time is TIMESTAMP(MICROS, UTC), tables.Double is DOUBLE and tables.JSON is a
	// STRING holding JSON text.
	Type tables.Type
}

// Row is one buffered row: its partition directory (relative to the output's dir, e.g.
// "tenant=acme/metric=cpu_load/date=2025-10-16") and its values in Columns order, each a
// string, a float64, a time.Time (UTC, whole microseconds) or nil.
type Row struct {
	Partition string
	Values    []any
}

// defaultPartitions are the built-in tables' partition expressions, over the row's columns.
var defaultPartitions = map[string][][2]string{
	"metrics":   {{"tenant", "tenant"}, {"metric", "metric"}, {"date", "ts"}},
	"alerts":    {{"tenant", "tenant"}, {"date", "ts"}},
	"incidents": {{"tenant", "tenant"}, {"date", "ts"}},
}

// defaultSortBy are the built-in tables' sort keys: the columns routes filter on, then the
// time, so that one host's readings (or one alert's records) are contiguous in a file.
var defaultSortBy = map[string][]string{
	"metrics":   {"tenant", "metric", "source_id", "ts"},
	"alerts":    {"tenant", "fingerprint", "ts"},
	"incidents": {"tenant", "incident_id", "ts"},
}

// columnsFor works out the written columns and the expressions that fill them: the built-in
// table's, with the configured columns replacing or adding to them, or the configured ones
// for any other table (typed from their expressions' static types when in is known).
func columnsFor(cfg *Config, in *types.Type, warnings *config.Errors) ([]Column, config.Fields, error) {
	def, builtin := tables.Builtin[cfg.Table]
	if !builtin && len(cfg.Columns) == 0 {
		return nil, nil, config.FieldErrorf("columns", "table %s is not a built-in table (metrics, alerts): say which expression fills each column", cfg.Table)
	}
	byName := map[string]config.Field{}
	for _, f := range cfg.Columns {
		byName[f.Name] = f
	}
	var cols []Column
	var fields config.Fields
	for _, c := range def.Columns {
		f, ok := byName[c.Name]
		if ok {
			delete(byName, c.Name)
		} else {
			f = config.Field{Name: c.Name, Expr: &config.Expr{Src: c.Expr, Path: "columns." + c.Name}}
		}
		cols = append(cols, Column{Name: c.Name, Type: c.Type})
		fields = append(fields, f)
	}
	var added config.Fields
	for _, f := range cfg.Columns {
		if _, ok := byName[f.Name]; ok {
			added = append(added, f)
		}
	}
	var typ *types.Type
	if len(added) > 0 && in != nil {
		t, err := eval.CheckFields(added, in, "", warnings)
		if err != nil {
			return nil, nil, err
		}
		typ = t
	}
	for _, f := range added {
		cols = append(cols, Column{Name: f.Name, Type: customType(f.Name, typ)})
		fields = append(fields, f)
	}
	return cols, fields, nil
}

// customType picks the Parquet type of a column of a custom table from its expression's
// static type: numbers are DOUBLE, times and a column named ts are timestamps, objects and
// arrays JSON, everything else (strings, unknown types) STRING.
func customType(name string, obj *types.Type) tables.Type {
	if name == "ts" || strings.HasSuffix(name, "_at") {
		return tables.Time
	}
	if obj == nil || obj.Fields == nil || obj.Fields[name] == nil {
		return tables.Text
	}
	switch obj.Fields[name].Kind {
	case types.Int, types.Float:
		return tables.Double
	case types.Time:
		return tables.Time
	case types.Object, types.Array:
		return tables.JSON
	}
	return tables.Text
}

// rowType is the type partition expressions see: the row's columns.
func rowType(cols []Column) *types.Type {
	t := types.ObjectOf("the row's columns", map[string]*types.Type{})
	for _, c := range cols {
		switch c.Type {
		case tables.Double:
			t.Fields[c.Name] = types.TFloat
		case tables.Time:
			t.Fields[c.Name] = types.TTime
		default:
			t.Fields[c.Name] = types.TStr
		}
	}
	return t
}

// convert turns a record value into the column's value; the error says why it does not fit.
// A value that needs no change is returned as the same interface value: boxing it again
// would allocate once per column and row.
func convert(t tables.Type, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch t {
	case tables.ID, tables.Text:
		switch x := v.(type) {
		case string:
			return v, nil
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		case int, int64, bool:
			return fmt.Sprint(x), nil
		case time.Time:
			return x.UTC().Format(time.RFC3339Nano), nil
		}
		return nil, fmt.Errorf("want a string, got %T", v)
	case tables.Double:
		switch x := v.(type) {
		case float64:
			return v, nil
		case int:
			return float64(x), nil
		case int64:
			return float64(x), nil
		case json.Number:
			return x.Float64()
		case string:
			f, err := strconv.ParseFloat(x, 64)
			if err != nil {
				return nil, fmt.Errorf("want a number, got %q", x)
			}
			return f, nil
		}
		return nil, fmt.Errorf("want a number, got %T", v)
	case tables.Time:
		ts, err := eval.ParseTime(v, "")
		if err != nil {
			return nil, fmt.Errorf("want a time: %w", err)
		}
		// Microseconds are what the files hold (see doc.go); truncating here keeps the
		// buffered rows a query sees equal to the rows later read from the files.
		return ts.UTC().Truncate(time.Microsecond), nil
	case tables.JSON:
		if m, ok := v.(map[string]any); ok {
			if s, ok := flatJSON(m); ok {
				return s, nil
			}
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("cannot encode as JSON: %w", err)
		}
		return string(b), nil
	}
	return nil, fmt.Errorf("unknown column type %d", t)
}

// flatJSON encodes the common case of tags, a map of strings, numbers and booleans, the
// way encoding/json does (sorted keys) at a fraction of its cost; ok is false for anything
// else.
func flatJSON(m map[string]any) (string, bool) {
	var small [8]string // tags are a handful of keys: no allocation for their order
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b := make([]byte, 0, 16*len(m)+2)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		switch x := m[k].(type) {
		case string:
			b = appendJSONString(b, x)
		case float64:
			if math.IsInf(x, 0) || math.IsNaN(x) {
				return "", false
			}
			if x == math.Trunc(x) && math.Abs(x) < 1e21 {
				b = strconv.AppendFloat(b, x, 'f', -1, 64)
			} else {
				enc, _ := json.Marshal(x)
				b = append(b, enc...)
			}
		case bool:
			b = strconv.AppendBool(b, x)
		case nil:
			b = append(b, "null"...)
		default:
			return "", false
		}
	}
	return string(append(b, '}')), true
}

// appendJSONString quotes s; strings needing escapes go through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= 0x80 {
			enc, _ := json.Marshal(s)
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// partitionValue is a partition directory's value: a time is its UTC date, other values
// their text, escaped for a path.
func partitionValue(v any) string {
	switch x := v.(type) {
	case nil:
		return hiveDefault
	case time.Time:
		return x.UTC().Format(time.DateOnly)
	case string:
		if x == "" {
			return hiveDefault
		}
		return escape(x)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10)
		}
		return escape(strconv.FormatFloat(x, 'g', -1, 64))
	}
	return escape(fmt.Sprint(v))
}

// hiveDefault is the directory Hive and Spark use for a null partition value.
const hiveDefault = "__HIVE_DEFAULT_PARTITION__"

// escape percent-encodes the characters Hive escapes in partition values (path separators,
// '=', '%', quotes, glob characters, control characters) and a leading dot, which would make
// the directory hidden; everything else is kept so that ordinary values read as written.
func escape(s string) string {
	clean := true
	for i := 0; i < len(s) && clean; i++ {
		c := s[i]
		clean = c >= 0x20 && c != 0x7f && strings.IndexByte("\"#%'*/:=?\\[]^{}", c) < 0 && (i > 0 || c != '.')
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || strings.IndexByte("\"#%'*/:=?\\[]^{}", c) >= 0 || (i == 0 && c == '.') {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Unescape reverses the escaping of a partition directory's value (for the read side).
func Unescape(s string) string {
	if s == hiveDefault {
		return ""
	}
	u, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// fileSchema is the Parquet schema of the table. Parquet groups order their fields by name,
// so order maps each column (in Columns order) to its leaf index in the file.
func fileSchema(table string, cols []Column) (schema *pq.Schema, order []int) {
	g := pq.Group{}
	for _, c := range cols {
		var n pq.Node
		switch c.Type {
		case tables.Double:
			n = pq.Leaf(pq.DoubleType)
		case tables.Time:
			n = pq.Timestamp(pq.Microsecond)
		default:
			n = pq.String()
		}
		g[c.Name] = pq.Optional(n)
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	sorted := slices.Sorted(slices.Values(names))
	order = make([]int, len(cols))
	for i, n := range names {
		order[i], _ = slices.BinarySearch(sorted, n)
	}
	return pq.NewSchema(table, g), order
}

// parquetRow converts a buffered row to the file's row layout, reusing buf.
func parquetRow(r Row, order []int, buf pq.Row) pq.Row {
	buf = slices.Grow(buf[:0], len(order))[:len(order)]
	for i, v := range r.Values {
		idx := order[i]
		var pv pq.Value
		switch x := v.(type) {
		case nil:
			buf[idx] = pq.Value{}.Level(0, 0, idx)
			continue
		case string:
			// The writer copies values into its pages; strings are never changed, so the
			// bytes need no copy of their own.
			pv = pq.ByteArrayValue(unsafe.Slice(unsafe.StringData(x), len(x)))
		case float64:
			pv = pq.DoubleValue(x)
		case time.Time:
			pv = pq.Int64Value(x.UnixMicro())
		}
		buf[idx] = pv.Level(0, 1, idx)
	}
	return buf
}
