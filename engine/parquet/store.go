package parquet

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	pq "github.com/parquet-go/parquet-go"

	"github.com/eventops/eventops-engine/engine/store"
	"github.com/eventops/eventops-engine/engine/tables"
)

// Store answers the API's queries on the tables written by this process's Parquet outputs:
// the rows in the files, plus the rows acknowledged but not yet flushed, so a just-written
// row is visible at once. See scan.go for how a query reads as little of the files as it
// can.
type Store struct {
	tables map[string]*Output
	files  fileCache
}

// NewStore returns a store over the outputs' tables. Two outputs writing one table would
// make a route's answer depend on which one it read, so that is an error.
func NewStore(outputs ...*Output) (*Store, error) {
	s := &Store{tables: map[string]*Output{}, files: fileCache{byPath: map[string]*openFile{}}}
	for _, o := range outputs {
		if prev, dup := s.tables[o.table]; dup {
			return nil, fmt.Errorf("parquet store: table %s is written by two parquet outputs (%s and %s); give one of them another table name", o.table, prev.dir, o.dir)
		}
		s.tables[o.table] = o
	}
	return s, nil
}

// Close closes the files the store keeps open between queries.
func (s *Store) Close() error {
	s.files.closeAll()
	return nil
}

// table is the output writing table, or the error a query on an unknown table gets.
func (s *Store) table(name string) (*Output, error) {
	o, ok := s.tables[name]
	if !ok {
		return nil, fmt.Errorf("%w: table %s does not exist (the local store has %s)", store.ErrBadQuery, name, strings.Join(slices.Sorted(maps.Keys(s.tables)), ", "))
	}
	return o, nil
}

// Columns lists the table's columns.
func (s *Store) Columns(_ context.Context, table string) ([]string, error) {
	o, err := s.table(table)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(o.cols))
	for i, c := range o.cols {
		names[i] = c.Name
	}
	return names, nil
}

// cond is one where condition on column col; val is nil for IS NULL, else a value of the
// column's type (string, float64 or time.Time).
type cond struct {
	col int
	val any
}

// queryPlan is a query with its names resolved to column indexes and its values converted.
type queryPlan struct {
	out        *Output
	conds      []cond
	order      int // -1: no order
	desc       bool
	limit      int
	latestBy   int // -1: every row
	latestTime int
	selected   []int // columns returned, in order
	// timeRange keeps rows whose column rangeCol lies in it; nil for every row.
	timeRange *store.Range
	rangeCol  int
}

func (s *Store) plan(q store.Query) (*queryPlan, error) {
	o, err := s.table(q.Table)
	if err != nil {
		return nil, err
	}
	index := func(what, name string) (int, error) {
		i := slices.IndexFunc(o.cols, func(c column) bool { return c.Name == name })
		if i < 0 {
			return -1, fmt.Errorf("%w: %s: table %s has no column %q", store.ErrBadQuery, what, q.Table, name)
		}
		return i, nil
	}
	p := &queryPlan{out: o, order: -1, desc: q.Desc, limit: q.Limit, latestBy: -1, latestTime: -1}
	if len(q.Columns) == 0 {
		for i := range o.cols {
			p.selected = append(p.selected, i)
		}
	}
	for _, name := range q.Columns {
		i, err := index("columns", name)
		if err != nil {
			return nil, err
		}
		p.selected = append(p.selected, i)
	}
	for _, c := range q.Where {
		i, err := index("where", c.Column)
		if err != nil {
			return nil, err
		}
		v, err := whereValue(o.cols[i].Type, c.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: where %s: %v", store.ErrBadQuery, c.Column, err)
		}
		p.conds = append(p.conds, cond{col: i, val: v})
	}
	if q.OrderBy != "" {
		if p.order, err = index("order", q.OrderBy); err != nil {
			return nil, err
		}
	}
	if q.Range != nil {
		if p.rangeCol, err = index("time range", q.Range.Column); err != nil {
			return nil, err
		}
		p.timeRange = q.Range
	}
	if q.LatestBy != "" {
		if p.latestBy, err = index("latest_by", q.LatestBy); err != nil {
			return nil, err
		}
		if p.latestTime, err = index("latest_by time", q.LatestTime); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// whereValue converts a condition's value as the output converts record values, so that
// the query string "92" matches a number column and "2025-10-16T11:03:00+02:00" a time.
func whereValue(t tables.Type, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if t == tables.JSON {
		if s, ok := v.(string); ok {
			// The API passes text: compare with the stored JSON as the same JSON value.
			var decoded any
			if err := json.Unmarshal([]byte(s), &decoded); err == nil {
				v = decoded
			}
		}
	}
	return convert(t, v)
}

// Query answers q from the files and the rows not yet flushed.
func (s *Store) Query(ctx context.Context, q store.Query) ([]map[string]any, error) {
	p, err := s.plan(q)
	if err != nil {
		return nil, err
	}
	snap, err := s.snapshot(p)
	if err != nil {
		return nil, fmt.Errorf("parquet store: query %s: %w", q.Table, err)
	}
	defer snap.release(&s.files)
	hits, err := p.scan(ctx, snap)
	if err != nil {
		return nil, fmt.Errorf("parquet store: query %s: %w", q.Table, err)
	}
	hits = p.finish(hits)
	if err := p.materialize(ctx, hits); err != nil {
		return nil, fmt.Errorf("parquet store: query %s: %w", q.Table, err)
	}
	out := make([]map[string]any, len(hits))
	for i, h := range hits {
		row := make(map[string]any, len(p.selected))
		for _, c := range p.selected {
			col := p.out.cols[c]
			row[col.Name] = jsonValue(col.Type, h.vals[c])
		}
		out[i] = row
	}
	return out, nil
}

// finish applies what needs every candidate row at once: latest_by (then the conditions it
// postpones), the order (NULL above every value, as in PostgreSQL) and the limit.
func (p *queryPlan) finish(hits []*hit) []*hit {
	if p.latestBy >= 0 {
		newest := map[any]*hit{}
		var keys []any
		for _, h := range hits {
			k := h.vals[p.latestBy]
			if kt, ok := k.(time.Time); ok {
				k = kt.UnixMicro() // time.Time is not a reliable map key
			}
			cur, ok := newest[k]
			if !ok {
				keys = append(keys, k)
			}
			if !ok {
				newest[k] = h
				continue
			}
			switch c := compareValues(h.vals[p.latestTime], cur.vals[p.latestTime]); {
			case c > 0, c == 0 && writtenAfter(h, cur):
				newest[k] = h
			}
		}
		hits = hits[:0]
		for _, k := range keys {
			if h := newest[k]; p.matches(h.vals) {
				hits = append(hits, h)
			}
		}
	}
	if p.order >= 0 {
		slices.SortStableFunc(hits, func(a, b *hit) int {
			c := compareValues(a.vals[p.order], b.vals[p.order])
			if p.desc {
				return -c
			}
			return c
		})
	}
	if p.limit > 0 && len(hits) > p.limit {
		hits = hits[:p.limit]
	}
	return hits
}

// writtenAfter tells whether row a was stored after row b, for rows of one key at the same
// time (latest_by): unflushed rows are the newest, in the order they came (hits keep it);
// then files by generation, and rows by position (a flush and a compaction keep the arrival
// order of rows with equal sort keys).
func writtenAfter(a, b *hit) bool {
	switch {
	case a.src == nil:
		return true // a comes after b in hits
	case b.src == nil:
		return false
	case a.src.gen != b.src.gen:
		return a.src.gen > b.src.gen
	case a.rg != b.rg:
		return a.rg > b.rg
	}
	return a.row > b.row
}

// matches tells whether a row's values meet every condition and the time range.
func (p *queryPlan) matches(vals []any) bool {
	for _, c := range p.conds {
		if !equalValues(vals[c.col], c.val) {
			return false
		}
	}
	return p.inRange(vals)
}

// inRange tells whether a row's time column lies in the query's range (NULL never does).
func (p *queryPlan) inRange(vals []any) bool {
	if p.timeRange == nil {
		return true
	}
	t, ok := vals[p.rangeCol].(time.Time)
	return ok && p.timeRange.Holds(t)
}

func equalValues(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	switch x := a.(type) {
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	}
	return false
}

// compareValues orders two values of one column: NULL sorts above every value, as in
// PostgreSQL (last ascending, first descending).
func compareValues(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	switch x := a.(type) {
	case time.Time:
		if y, ok := b.(time.Time); ok {
			return x.Compare(y)
		}
	case float64:
		if y, ok := b.(float64); ok {
			return cmp.Compare(x, y)
		}
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y)
		}
	}
	// Files written under another column type: order by type, never panic.
	return cmp.Compare(fmt.Sprintf("%T", a), fmt.Sprintf("%T", b))
}

// jsonValue is a column value as the API returns it, the same as from PostgreSQL: times as
// RFC 3339 strings in UTC, JSON columns decoded (numbers as float64).
func jsonValue(t tables.Type, v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case string:
		if t == tables.JSON {
			var decoded any
			if err := json.Unmarshal([]byte(x), &decoded); err == nil {
				return decoded
			}
		}
	}
	return v
}

// snapshot is what one query reads: the unflushed rows and the live files of the
// partitions it may need, taken together under the output's lock so that no row is seen
// twice (in the buffer and in a file) or not at all (between them).
type snapshot struct {
	pending []Row
	files   []*openFile
}

func (sn *snapshot) release(c *fileCache) {
	for _, f := range sn.files {
		c.release(f)
	}
	sn.files = nil
}

// fixedPartitions gives, for each partition level, the one directory value the query's
// conditions allow, or "" when any may hold matching rows. latest_by picks the newest row
// of each key before the conditions apply, so only conditions on the key itself prune.
func (p *queryPlan) fixedPartitions() []string {
	o := p.out
	fixed := make([]string, len(o.parts))
	for i, part := range o.parts {
		if part.col < 0 {
			continue
		}
		for _, c := range p.conds {
			if c.col == part.col && (p.latestBy < 0 || c.col == p.latestBy) {
				fixed[i] = partitionValue(c.val)
			}
		}
	}
	return fixed
}

func (s *Store) snapshot(p *queryPlan) (*snapshot, error) {
	o := p.out
	fixed := p.fixedPartitions()
	keep := func(partition string) bool {
		for i, seg := range strings.Split(partition, "/") {
			if i < len(fixed) && fixed[i] != "" && seg != o.parts[i].name+"="+fixed[i] {
				return false
			}
		}
		return true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	sn := &snapshot{pending: o.pendingLocked(keep)}
	dirs, err := partitionDirs(o.dir, o.PartitionNames(), fixed)
	if err != nil {
		return nil, err
	}
	for _, dir := range dirs {
		files, err := s.files.live(dir)
		if err != nil {
			sn.release(&s.files)
			return nil, err
		}
		sn.files = append(sn.files, files...)
	}
	return sn, nil
}

// partitionDirs lists the partition directories under dir that may hold matching rows:
// level by level, the one directory a fixed value names, or every name=… directory.
func partitionDirs(dir string, names, fixed []string) ([]string, error) {
	dirs := []string{dir}
	for i, name := range names {
		var next []string
		for _, d := range dirs {
			if fixed[i] != "" {
				sub := filepath.Join(d, name+"="+fixed[i])
				if info, err := os.Stat(sub); err == nil && info.IsDir() {
					next = append(next, sub)
				} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
					return nil, err
				}
				continue
			}
			ents, err := os.ReadDir(d)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return nil, err
			}
			for _, e := range ents {
				if e.IsDir() && strings.HasPrefix(e.Name(), name+"=") {
					next = append(next, filepath.Join(d, e.Name()))
				}
			}
		}
		dirs = next
	}
	return dirs, nil
}

// fileCache keeps the table's files open between queries: a file never changes once renamed
// into place, so its footer and page index are read once. A file a compaction or retention
// deleted stays readable to the queries that hold it and is closed after the last.
type fileCache struct {
	mu     sync.Mutex
	byPath map[string]*openFile
}

type openFile struct {
	path    string
	size    int64
	modTime time.Time
	f       *os.File
	pf      *pq.File
	leaves  map[string]int // column name → leaf index in this file
	from    []string       // MetaCompactedFrom
	gen     int64          // the generation in its name (a compacted file: its newest input's)
	refs    int
	dropped bool // no longer in the cache: close at the last release
}

// live acquires the files of one partition directory a reader should read (see Live).
func (c *fileCache) live(dir string) ([]*openFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var files []*openFile
	release := func() {
		for _, f := range files {
			c.release(f)
		}
	}
	listed := map[string]bool{}
	superseded := map[string]bool{}
	for _, e := range ents {
		if _, ok := fileGen(e.Name()); !ok || e.IsDir() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			release()
			return nil, err
		}
		path := filepath.Join(dir, e.Name())
		listed[path] = true
		f, err := c.acquire(path, info)
		if err != nil {
			release()
			return nil, err
		}
		files = append(files, f)
		for _, n := range f.from {
			superseded[n] = true
		}
	}
	c.forget(dir, listed)
	return slices.DeleteFunc(files, func(f *openFile) bool {
		if superseded[filepath.Base(f.path)] {
			c.release(f)
			return true
		}
		return false
	}), nil
}

func (c *fileCache) acquire(path string, info fs.FileInfo) (*openFile, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.byPath[path]; ok {
		if f.size == info.Size() && f.modTime.Equal(info.ModTime()) {
			f.refs++
			return f, nil
		}
		c.dropLocked(f)
	}
	fh, pf, err := openParquet(path)
	if err != nil {
		return nil, err
	}
	f := &openFile{path: path, size: info.Size(), modTime: info.ModTime(), f: fh, pf: pf, leaves: map[string]int{}, refs: 1}
	f.gen, _ = fileGen(filepath.Base(path))
	for _, leaf := range pf.Schema().Columns() {
		if l, ok := pf.Schema().Lookup(leaf...); ok && len(leaf) == 1 {
			f.leaves[leaf[0]] = l.ColumnIndex
		}
	}
	if v, ok := pf.Lookup(MetaCompactedFrom); ok {
		if err := json.Unmarshal([]byte(v), &f.from); err != nil {
			fh.Close()
			return nil, fmt.Errorf("%s: %s: %w", path, MetaCompactedFrom, err)
		}
	}
	c.byPath[path] = f
	f.refs++ // the cache's own reference
	return f, nil
}

func (c *fileCache) release(f *openFile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.refs--
	if f.refs == 0 {
		f.f.Close()
	}
}

// forget drops the cached files of dir that are no longer listed (compacted or removed).
func (c *fileCache) forget(dir string, listed map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for path, f := range c.byPath {
		if filepath.Dir(path) == dir && !listed[path] {
			c.dropLocked(f)
		}
	}
}

func (c *fileCache) dropLocked(f *openFile) {
	if f.dropped {
		return
	}
	f.dropped = true
	delete(c.byPath, f.path)
	f.refs--
	if f.refs == 0 {
		f.f.Close()
	}
}

func (c *fileCache) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.byPath {
		c.dropLocked(f)
	}
}
