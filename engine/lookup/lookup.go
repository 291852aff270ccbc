// Package lookup holds the lookup tables that enrich processors join records against: a
// CMDB export as CSV or JSON, or rows written inline in the pipeline file.
//
// A Table's contents sit behind an atomic pointer, so a reload (when the file changes) swaps
// the whole table at once: a stream sees either the old rows or the new ones, never a mix,
// and never waits for a lock.
package lookup

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/broker"
)

// Rows maps a key to its row: column name to value. CSV and inline values are strings;
// JSON values keep their JSON types.
type Rows map[string]map[string]any

// Table is one named lookup table. It is safe for concurrent use: Get may run while
// Replace or Reload swap the contents.
type Table struct {
	name string
	cfg  config.Lookup
	rows atomic.Pointer[Rows]
	cols atomic.Pointer[[]string]
}

var _ engine.LookupTable = (*Table)(nil)

// New returns a table holding rows. It is for tables built in code (tests, the rule test
// runner); pipelines use Load.
func New(name string, rows Rows) *Table {
	t := &Table{name: name}
	t.Replace(rows)
	return t
}

// Load reads the table declared as name from its file or inline rows.
func Load(name string, cfg config.Lookup) (*Table, error) {
	rows, err := read(cfg)
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", name, err)
	}
	t := &Table{name: name, cfg: cfg}
	t.Replace(rows)
	return t, nil
}

// Name is the table's name in the pipeline file.
func (t *Table) Name() string { return t.name }

// File is the file the table was loaded from, or "" for inline and in-code tables.
func (t *Table) File() string { return t.cfg.File }

// Config is the table's definition.
func (t *Table) Config() config.Lookup { return t.cfg }

// Get returns the row for key. The row is shared: callers copy values out and must not
// change it.
func (t *Table) Get(key string) (map[string]any, bool) {
	row, ok := (*t.rows.Load())[key]
	return row, ok
}

// Columns lists every column some row has, sorted (lint checks enrich fields against it).
func (t *Table) Columns() []string {
	if c := t.cols.Load(); c != nil {
		return *c
	}
	return nil
}

// Len is the number of rows.
func (t *Table) Len() int { return len(*t.rows.Load()) }

// Each calls fn with every row (engine.IterableLookup); rows are shared, as Get's.
func (t *Table) Each(fn func(key string, row map[string]any)) {
	for k, row := range *t.rows.Load() {
		fn(k, row)
	}
}

// Replace swaps the table's contents for rows. rows must not be changed afterwards.
func (t *Table) Replace(rows Rows) {
	if rows == nil {
		rows = Rows{}
	}
	seen := map[string]bool{}
	for _, row := range rows {
		for c := range row {
			seen[c] = true
		}
	}
	cols := slices.Sorted(maps.Keys(seen))
	t.rows.Store(&rows)
	t.cols.Store(&cols)
}

// Topic is the topic the table's rows come from, or "" for a file or inline rows.
func (t *Table) Topic() string { return t.cfg.Topic }

// Apply applies records of the table's topic, in order: each value (a JSON object) becomes
// the row of its key (the record's key, or the value's field named by key:), a record
// without a value deletes its key. A value that is not a JSON object, or lacks its key, is
// left out and reported through skip. The whole fetch is swapped in at once, as Reload does.
func (t *Table) Apply(records []broker.KeyValue, skip func(key []byte, err error)) {
	rows := maps.Clone(*t.rows.Load())
	for _, r := range records {
		if r.Value == nil {
			delete(rows, string(r.Key))
			continue
		}
		key, row, err := t.topicRow(r)
		if err != nil {
			skip(r.Key, err)
			continue
		}
		rows[key] = row
	}
	t.Replace(rows)
}

func (t *Table) topicRow(r broker.KeyValue) (string, map[string]any, error) {
	var row map[string]any
	if err := json.Unmarshal(r.Value, &row); err != nil || row == nil {
		return "", nil, fmt.Errorf("the value is not a JSON object")
	}
	if t.cfg.Key == "" {
		return string(r.Key), row, nil
	}
	switch k := row[t.cfg.Key].(type) {
	case string:
		return k, row, nil
	case float64, bool:
		return fmt.Sprint(k), row, nil
	}
	return "", nil, fmt.Errorf("the value has no key field %q", t.cfg.Key)
}

// Reload reads the table's source again and swaps the contents. On error the old contents
// stay in place, so a half-written or broken file never empties a table that streams use.
func (t *Table) Reload() error {
	if t.cfg.Topic != "" {
		return nil // its rows come from the topic, not from a file
	}
	rows, err := read(t.cfg)
	if err != nil {
		return fmt.Errorf("lookup %s: %w", t.name, err)
	}
	t.Replace(rows)
	return nil
}

// Set is the pipeline's lookup tables by name.
type Set map[string]*Table

var _ engine.LookupSource = Set(nil)

// Lookup returns the table called name.
func (s Set) Lookup(name string) (engine.LookupTable, bool) {
	t, ok := s[name]
	if !ok {
		return nil, false
	}
	return t, true
}

// Names returns the table names, sorted (for messages that list what exists).
func (s Set) Names() []string {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LoadAll loads every declared table, returning every failure at once.
func LoadAll(lookups map[string]config.Lookup) (Set, error) {
	set := make(Set, len(lookups))
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(lookups)) {
		t, err := Load(name, lookups[name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		set[name] = t
	}
	return set, errors.Join(errs...)
}

func read(cfg config.Lookup) (Rows, error) {
	switch {
	case cfg.Topic != "":
		return Rows{}, nil // filled by Apply as the topic is read
	case cfg.File != "" && cfg.Rows != nil:
		return nil, errors.New("set either file or rows, not both")
	case cfg.File == "":
		return inlineRows(cfg)
	}
	format := cfg.Format
	if format == "" {
		switch strings.ToLower(filepath.Ext(cfg.File)) {
		case ".csv":
			format = "csv"
		case ".json":
			format = "json"
		default:
			return nil, fmt.Errorf("%s: cannot tell the format from the file name; set format: csv or format: json", cfg.File)
		}
	}
	data, err := os.ReadFile(cfg.File)
	if err != nil {
		return nil, err
	}
	switch format {
	case "csv":
		return readCSV(cfg.File, data, cfg.Key)
	case "json":
		return readJSON(cfg.File, data, cfg.Key)
	default:
		return nil, fmt.Errorf("unknown format %q (want csv or json)", format)
	}
}

func inlineRows(cfg config.Lookup) (Rows, error) {
	if cfg.Key == "" {
		return nil, errors.New("key: name the column that holds the lookup key")
	}
	rows := make(Rows, len(cfg.Rows))
	for i, r := range cfg.Rows {
		k, ok := r[cfg.Key]
		if !ok || k == "" {
			return nil, fmt.Errorf("rows[%d]: no value for key column %q", i, cfg.Key)
		}
		if _, dup := rows[k]; dup {
			return nil, fmt.Errorf("rows[%d]: duplicate key %q", i, k)
		}
		row := make(map[string]any, len(r))
		for c, v := range r {
			if c != cfg.Key {
				row[c] = v
			}
		}
		rows[k] = row
	}
	return rows, nil
}

// readCSV reads a CSV file with a header row. Errors name the file and line.
func readCSV(file string, data []byte, key string) (Rows, error) {
	if key == "" {
		return nil, fmt.Errorf("%s: key: name the column that holds the lookup key", file)
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.TrimLeadingSpace = true
	r.ReuseRecord = false
	header, err := r.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file; want a header row naming the columns", file)
	}
	if err != nil {
		return nil, csvError(file, data, err, nil, 0)
	}
	keyCol := -1
	for i, h := range header {
		header[i] = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if header[i] == key {
			keyCol = i
		}
	}
	if keyCol < 0 {
		return nil, fmt.Errorf("%s:1: header has no column %q (columns: %s)", file, key, strings.Join(header, ", "))
	}
	rows := Rows{}
	firstLine := map[string]int{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(file, data, err, header, len(rec))
		}
		line, _ := r.FieldPos(0)
		k := rec[keyCol]
		if k == "" {
			return nil, fmt.Errorf("%s:%d: empty value in key column %q", file, line, key)
		}
		if first, dup := firstLine[k]; dup {
			return nil, fmt.Errorf("%s:%d: duplicate key %q (first on line %d)", file, line, k, first)
		}
		firstLine[k] = line
		row := make(map[string]any, len(rec)-1)
		for i, v := range rec {
			if i != keyCol {
				row[header[i]] = v
			}
		}
		rows[k] = row
	}
	return rows, nil
}

// csvError says where a CSV file is broken and what to change there. encoding/csv reports
// where it gave up, which for a quoted field that is never closed is the end of the file;
// the quote to fix is where that field starts. header and fields describe the record read,
// for a wrong number of fields.
func csvError(file string, data []byte, err error, header []string, fields int) error {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", file, err)
	}
	at := func(line, col int) string {
		return fmt.Sprintf("%s:%d:%d", file, line, charCol(data, line, col))
	}
	var msg string
	switch {
	case errors.Is(pe.Err, csv.ErrFieldCount):
		msg = fmt.Sprintf("%s:%d: wrong number of fields: the row has %d, the header has %d (%s)", file, pe.StartLine, fields, len(header), strings.Join(header, ", "))
	case errors.Is(pe.Err, csv.ErrBareQuote):
		msg = fmt.Sprintf(`%s: a " in a field that is not quoted; quote the whole field and write the " inside it as ""`, at(pe.Line, pe.Column))
	case errors.Is(pe.Err, csv.ErrQuote):
		if line, col, ok := unclosedQuote(data, pe.StartLine); ok {
			msg = fmt.Sprintf(`%s: the quoted field that starts here is never closed; end it with " (a " inside a quoted field is written "")`, at(line, col))
		} else {
			msg = fmt.Sprintf(`%s: this " ends a quoted field, but the field goes on after it; write a " inside a quoted field as ""`, at(pe.Line, pe.Column))
		}
	default:
		msg = fmt.Sprintf("%s: %v", at(pe.Line, pe.Column), pe.Err)
	}
	return &csvSyntaxError{msg: msg, err: pe}
}

// csvSyntaxError is a CSV parse error told as what to fix, where to fix it.
type csvSyntaxError struct {
	msg string
	err *csv.ParseError
}

func (e *csvSyntaxError) Error() string { return e.msg }
func (e *csvSyntaxError) Unwrap() error { return e.err }

// unclosedQuote finds, in the record that starts on line startLine, a quoted field that
// runs to the end of the file, and returns the line and byte column of its opening quote.
// It gives up (ok false) at the end of the record or at the first other mistake, which is
// then the one encoding/csv reported.
func unclosedQuote(data []byte, startLine int) (line, col int, ok bool) {
	off := 0
	for l := 1; l < startLine; l++ {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return 0, 0, false
		}
		off += i + 1
	}
	line, lineStart := startLine, off
	fieldStart := true
	for i := off; i < len(data); i++ {
		c := data[i]
		switch {
		case fieldStart && (c == ' ' || c == '\t'):
			continue // TrimLeadingSpace: a quote after blanks still opens the field
		case fieldStart && c == '"':
			openLine, openCol := line, i-lineStart+1
			closed := false
			for i++; i < len(data); i++ {
				if data[i] == '\n' {
					line, lineStart = line+1, i+1
				}
				if data[i] == '"' {
					if i+1 < len(data) && data[i+1] == '"' {
						i++
						continue
					}
					closed = true
					break
				}
			}
			if !closed {
				return openLine, openCol, true
			}
			if i+1 < len(data) && !bytes.ContainsRune([]byte(",\r\n"), rune(data[i+1])) {
				return 0, 0, false // text after the closing quote
			}
			fieldStart = false
		case c == ',':
			fieldStart = true
		case c == '\n':
			return 0, 0, false
		default:
			fieldStart = false
		}
	}
	return 0, 0, false
}

// charCol converts encoding/csv's byte column on line into a column in characters, as
// editors count them.
func charCol(data []byte, line, col int) int {
	lines := bytes.SplitN(data, []byte("\n"), line+1)
	if line < 1 || line > len(lines) || col < 1 || col-1 > len(lines[line-1]) {
		return col
	}
	return utf8.RuneCount(lines[line-1][:col-1]) + 1
}

// readJSON reads either an array of objects (each holding the key column) or an object
// mapping keys to row objects.
func readJSON(file string, data []byte, key string) (Rows, error) {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, jsonError(file, data, err)
	}
	rows := Rows{}
	switch d := doc.(type) {
	case []any:
		if key == "" {
			return nil, fmt.Errorf("%s: key: name the field that holds the lookup key", file)
		}
		for i, item := range d {
			obj, ok := item.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: [%d]: want an object, got %s", file, i, jsonType(item))
			}
			kv, ok := obj[key]
			if !ok || kv == nil {
				return nil, fmt.Errorf("%s: [%d]: no %q field", file, i, key)
			}
			k := keyString(kv)
			if _, dup := rows[k]; dup {
				return nil, fmt.Errorf("%s: [%d]: duplicate key %q", file, i, k)
			}
			row := make(map[string]any, len(obj))
			for c, v := range obj {
				if c != key {
					row[c] = plain(v)
				}
			}
			rows[k] = row
		}
	case map[string]any:
		for k, item := range d {
			obj, ok := item.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: %q: want an object, got %s", file, k, jsonType(item))
			}
			row := make(map[string]any, len(obj))
			for c, v := range obj {
				if c != key {
					row[c] = plain(v)
				}
			}
			rows[k] = row
		}
	default:
		return nil, fmt.Errorf("%s: want an array of objects or an object of key to object, got %s", file, jsonType(doc))
	}
	return rows, nil
}

// plain turns json.Number back into float64, the way records carry numbers.
func plain(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return x.String()
		}
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = plain(e)
		}
	case []any:
		for i, e := range x {
			x[i] = plain(e)
		}
	}
	return v
}

func keyString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func jsonError(file string, data []byte, err error) error {
	end := len(bytes.TrimRight(data, " \t\r\n"))
	off := -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		// Offset counts the bytes read, the offending one included.
		off = int(se.Offset) - 1
	case errors.As(err, &te):
		off = int(te.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		off = end
	}
	if off < 0 {
		return fmt.Errorf("%s: %w", file, err)
	}
	// At the end of the input there is no offending byte: point just after the last one.
	off = min(off, end)
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := utf8.RuneCount(data[bytes.LastIndexByte(data[:off], '\n')+1:off]) + 1
	return fmt.Errorf("%s:%d:%d: invalid JSON: %w", file, line, col, err)
}
