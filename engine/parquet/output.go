package parquet

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
	"github.com/eventops/eventops-engine/engine/tables"
	"github.com/eventops/eventops-engine/engine/types"
)

// Options is what an Output needs besides its config.
type Options struct {
	// Stream names the stream (or sink) in logs.
	Stream string
	Logger *slog.Logger // nil: slog.Default()
	// Clock decides when rows are old enough to flush, which partitions retention deletes,
	// and what now() in a column expression reads; nil: the wall clock.
	Clock engine.Clock
	// Input is the type of the records written, for checking the column expressions; nil
	// when unknown.
	Input    *types.Type
	Warnings *config.Errors
	// NoBackground turns off the goroutine that flushes by age and runs compaction and
	// retention on their interval; tests call MaybeFlush and Maintain instead.
	NoBackground bool
}

// Metadata keys of the files the output writes.
const (
	// MetaGeneration is the write-ahead log generation whose rows the file holds.
	MetaGeneration = "eventops.generation"
	// MetaMarks is, per source (topic/partition[/topic id]), the highest offset stored once
	// this file exists: JSON object of offsets.
	MetaMarks = "eventops.marks"
	// MetaCompactedFrom lists (JSON array of names in the same directory) the files a
	// compacted file replaces: a reader that sees the compacted file and any of them reads
	// only the compacted file.
	MetaCompactedFrom = "eventops.compacted_from"
)

// mark is how far one source has been stored: the highest offset, and the event ids
// written at exactly that offset (several records may derive from one source record, and a
// window closed by a tick carries the offset of the last record it saw).
type mark struct {
	Offset int64    `json:"offset"`
	IDs    []string `json:"ids,omitempty"`
}

func (m *mark) has(id string) bool { return slices.Contains(m.IDs, id) }

type column struct {
	Column
	prog *eval.Program
}

type partitioner struct {
	name string
	col  int // index of the column it reads, or -1
	prog *eval.Program
}

// Output writes records into Parquet files under one directory. See the package doc for
// the durability and dedupe design.
type Output struct {
	dir   string
	table string
	cfg   *Config
	opts  Options
	cols  []column
	parts []partitioner
	idCol int // index of event_id, or -1
	// sortBy are the columns (indexes) each file's rows are sorted by; sortKeys the ones
	// that vary within a partition (not tenant or metric, which name it), which sorting
	// compares.
	sortBy, sortKeys []int
	// pageBufferSize, if set, replaces parquet-go's page size (tests use small pages).
	pageBufferSize int

	schema *pq.Schema
	order  []int
	codec  compress.Codec

	mu       sync.Mutex
	wal      *wal
	marks    map[string]*mark
	buf      map[string][]Row // partition → rows not yet in files
	rows     int
	bytes    int64
	firstAt  time.Time // clock time the oldest buffered row was written
	lastMain time.Time
	closed   bool
	scratch  []byte

	stop chan struct{}
	done chan struct{}
}

// NewOutput checks the config, opens (creating) the directory and recovers: rows in the
// write-ahead log that did not reach a file before a crash are buffered again.
func NewOutput(cfg *Config, opts Options) (*Output, error) {
	o, err := compile(cfg, opts)
	if err != nil {
		return nil, err
	}
	if err := o.recover(); err != nil {
		return nil, fmt.Errorf("parquet output %s: %w", cfg.Dir, err)
	}
	o.lastMain = o.opts.Clock.Now()
	if !o.opts.NoBackground {
		o.stop, o.done = make(chan struct{}), make(chan struct{})
		go o.background()
	}
	return o, nil
}

// Check compiles the output's columns and partitions against the records it receives,
// without touching its directory (for lint), and returns the table's column names.
func Check(cfg *Config, in *types.Type, warnings *config.Errors) ([]string, error) {
	o, err := compile(cfg, Options{Input: in, Warnings: warnings})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, c := range o.cols {
		names = append(names, c.Name)
	}
	return names, nil
}

func compile(cfg *Config, opts Options) (*Output, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = engine.WallClock{}
	}
	cols, fields, err := columnsFor(cfg, opts.Input, opts.Warnings)
	if err != nil {
		return nil, err
	}
	o := &Output{dir: cfg.Dir, table: cfg.Table, cfg: cfg, opts: opts, idCol: -1,
		marks: map[string]*mark{}, buf: map[string][]Row{}}
	var errs config.Errors
	for i, f := range fields {
		if f.Expr == nil {
			errs.Add(f.Pos, "columns."+f.Name, "a column needs one expression; nested mappings are not supported (build the object in a map processor)")
			continue
		}
		prog, _, err := eval.CompileChecked(*f.Expr, eval.Any, opts.Input, opts.Warnings)
		if err != nil {
			errs.Append(f.Pos, "columns."+f.Name, err)
			continue
		}
		o.cols = append(o.cols, column{Column: cols[i], prog: prog})
		if cols[i].Name == "event_id" {
			o.idCol = i
		}
	}
	partFields := cfg.PartitionBy
	if len(partFields) == 0 {
		for _, p := range defaultPartitions[cfg.Table] {
			partFields = append(partFields, config.Field{Name: p[0], Expr: &config.Expr{Src: p[1], Path: "partition_by." + p[0]}})
		}
	}
	rt := rowType(cols)
	for _, f := range partFields {
		if f.Expr == nil {
			continue // Validate said so
		}
		if escape(f.Name) != f.Name || f.Name == "" {
			errs.Add(f.Pos, "partition_by."+f.Name, "partition name %q must not contain / = %% or other characters that need escaping in a path", f.Name)
			continue
		}
		p := partitioner{name: f.Name, col: -1}
		if i := slices.IndexFunc(cols, func(c Column) bool { return c.Name == f.Expr.Src }); i >= 0 {
			p.col = i
		} else {
			prog, _, err := eval.CompileChecked(*f.Expr, eval.Any, rt, nil)
			if err != nil {
				errs.Append(f.Pos, "partition_by."+f.Name, err)
				continue
			}
			p.prog = prog
		}
		o.parts = append(o.parts, p)
	}
	sortBy := cfg.SortBy
	if sortBy == nil {
		sortBy = defaultSortBy[cfg.Table]
	}
	var sortErrs []error
	for k, name := range sortBy {
		i := slices.IndexFunc(cols, func(c Column) bool { return c.Name == name })
		if i < 0 {
			names := make([]string, len(cols))
			for j, c := range cols {
				names[j] = c.Name
			}
			sortErrs = append(sortErrs, config.FieldErrorf(fmt.Sprintf("sort_by[%d]", k), "%q is not a column of table %s (columns: %s)", name, cfg.Table, strings.Join(names, ", ")))
			continue
		}
		o.sortBy = append(o.sortBy, i)
	}
	if err := errors.Join(errs.Err(), errors.Join(sortErrs...)); err != nil {
		return nil, err
	}
	o.sortKeys = slices.DeleteFunc(slices.Clone(o.sortBy), func(k int) bool {
		return slices.ContainsFunc(o.parts, func(p partitioner) bool { return p.col == k && o.cols[k].Type != tables.Time })
	})
	switch cfg.Compression {
	case "snappy":
		o.codec = &snappy.Codec{}
	case "none":
		o.codec = &uncompressed.Codec{}
	default:
		o.codec = &zstd.Codec{Level: zstd.SpeedDefault}
	}
	o.schema, o.order = fileSchema(cfg.Table, cols)
	return o, nil
}

// Columns lists the table's columns, in row order.
func (o *Output) Columns() []Column {
	out := make([]Column, len(o.cols))
	for i, c := range o.cols {
		out[i] = c.Column
	}
	return out
}

// Table is the name of the table the output writes.
func (o *Output) Table() string { return o.table }

// Dir is the directory the files are written under.
func (o *Output) Dir() string { return o.dir }

// PartitionNames are the partition directory names, outermost first.
func (o *Output) PartitionNames() []string {
	out := make([]string, len(o.parts))
	for i, p := range o.parts {
		out[i] = p.name
	}
	return out
}

// Pending returns the rows acknowledged but not yet in a file, of the partitions keep
// accepts (nil: all), so that a query sees a row as soon as its Write returned. The rows
// must not be modified.
func (o *Output) Pending(keep func(partition string) bool) []Row {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pendingLocked(keep)
}

func (o *Output) pendingLocked(keep func(partition string) bool) []Row {
	var out []Row
	for p, rows := range o.buf {
		if keep == nil || keep(p) {
			out = append(out, rows...)
		}
	}
	return out
}

func markKey(s engine.Source) string {
	k := s.Topic + "/" + strconv.Itoa(int(s.Partition))
	if s.TopicID != ([16]byte{}) {
		k += "/" + hex.EncodeToString(s.TopicID[:])
	}
	return k
}

// Write converts the batch to rows, skips records already stored (at or below their
// source's mark), and returns once the rest are in the fsynced write-ahead log.
func (o *Output) Write(ctx context.Context, batch []*engine.Record, rejects *engine.Rejects) error {
	if len(batch) == 0 {
		return nil
	}
	now := o.opts.Clock.Now()
	converted := o.convertBatch(batch, now)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errors.New("parquet output: write after close")
	}
	// Marks move only once the rows are durable: this batch's view of them.
	staged := map[string]*mark{}
	current := func(k string) *mark {
		if m, ok := staged[k]; ok {
			return m
		}
		m := &mark{Offset: -1}
		if prev, ok := o.marks[k]; ok {
			m.Offset, m.IDs = prev.Offset, slices.Clone(prev.IDs)
		}
		staged[k] = m
		return m
	}
	// A batch comes from a few source partitions: their keys and marks are looked up once.
	type sourceKey struct {
		topic     string
		partition int32
		id        [16]byte
	}
	type source struct {
		key  string
		mark *mark
	}
	sources := map[sourceKey]source{}
	var lastKey sourceKey // consecutive records mostly share a source: skip the map then
	var last source
	rows := make([]walRow, 0, len(batch))
	for i, rec := range batch {
		r, err := converted[i].row, converted[i].err
		if err != nil {
			rejects.Add(rec, "output", err)
			continue
		}
		sk := sourceKey{rec.Source.Topic, rec.Source.Partition, rec.Source.TopicID}
		src := last
		if sk != lastKey || src.mark == nil {
			var ok bool
			if src, ok = sources[sk]; !ok {
				key := markKey(rec.Source)
				src = source{key: key, mark: current(key)}
				sources[sk] = src
			}
			lastKey, last = sk, src
		}
		wr := walRow{Row: r, Mark: src.key, Offset: rec.Source.Offset}
		if o.idCol >= 0 {
			wr.EventID, _ = r.Values[o.idCol].(string)
		}
		m := src.mark
		switch {
		case wr.Offset < m.Offset, wr.Offset == m.Offset && m.has(wr.EventID):
			continue // stored by an earlier delivery
		case wr.Offset == m.Offset:
			m.IDs = append(m.IDs, wr.EventID)
		default:
			// The staged mark's IDs are its own (cloned from the stored mark): reused.
			m.Offset, m.IDs = wr.Offset, append(m.IDs[:0], wr.EventID)
		}
		rows = append(rows, wr)
	}
	if len(rows) == 0 {
		return nil
	}
	o.scratch = encodeRows(o.scratch[:0], rows)
	if err := o.wal.append(o.scratch); err != nil {
		return fmt.Errorf("parquet output %s: %w", o.dir, err)
	}
	maps.Copy(o.marks, staged)
	o.buffer(rows, now)
	if o.rows >= o.cfg.FlushRows || (o.cfg.FlushBytes > 0 && o.bytes >= int64(o.cfg.FlushBytes)) {
		if err := o.flushLocked(); err != nil {
			// The rows are durable in the log; the next flush retries.
			o.opts.Logger.Error("parquet output: flush failed; rows stay in the write-ahead log", "stream", o.opts.Stream, "dir", o.dir, "err", err)
		}
	}
	return nil
}

type converted struct {
	row Row
	err error
}

// convertBatch evaluates the columns and partitions of a batch's records, in parallel
// chunks on a large batch: the programs are safe for concurrent use, and each record is
// evaluated by one goroutine only.
func (o *Output) convertBatch(batch []*engine.Record, now time.Time) []converted {
	const minChunk = 2048
	out := make([]converted, len(batch))
	convert := func(from, to int) {
		// One allocation for the values of all rows, and each partition name once: fewer,
		// larger objects for the collector, which otherwise dominates a flush of boxed rows.
		sc := rowScratch{vars: map[string]any{}, parts: map[string]string{}}
		slab := make([]any, (to-from)*len(o.cols))
		for i := from; i < to; i++ {
			rec := batch[i]
			k := (i - from) * len(o.cols)
			out[i].row, out[i].err = o.row(eval.Env{Vars: rec.Value, Source: rec.Source, Now: now}, slab[k:k+len(o.cols):k+len(o.cols)], &sc)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(batch)/minChunk)
	if workers <= 1 {
		convert(0, len(batch))
		return out
	}
	var wg sync.WaitGroup
	per := (len(batch) + workers - 1) / workers
	for from := 0; from < len(batch); from += per {
		wg.Add(1)
		go func(from, to int) {
			defer wg.Done()
			convert(from, to)
		}(from, min(from+per, len(batch)))
	}
	wg.Wait()
	return out
}

func (o *Output) buffer(rows []walRow, now time.Time) {
	if o.rows == 0 {
		o.firstAt = now
	}
	for _, r := range rows {
		o.buf[r.Partition] = append(o.buf[r.Partition], r.Row)
		o.rows++
		o.bytes += rowBytes(r.Row)
	}
}

func rowBytes(r Row) int64 {
	n := int64(len(r.Partition)) + 24*int64(len(r.Values))
	for _, v := range r.Values {
		if s, ok := v.(string); ok {
			n += int64(len(s))
		}
	}
	return n
}

// rowScratch is what converting records reuses: the variables partition expressions see,
// the partition path being built, and the partition names seen (interned).
type rowScratch struct {
	vars     map[string]any
	path     []byte
	parts    map[string]string
	lastPart string
	day      int64 // days since the epoch of dateText
	dateText string
}

// row evaluates the columns (into vals) and the partition of one record.
func (o *Output) row(env eval.Env, vals []any, sc *rowScratch) (Row, error) {
	for i, c := range o.cols {
		v, ok := c.prog.Lookup(env.Vars)
		var err error
		if !ok {
			if v, err = c.prog.Eval(env); err != nil {
				return Row{}, fmt.Errorf("column %s: %w", c.Name, err)
			}
		}
		if vals[i], err = convert(c.Type, v); err != nil {
			return Row{}, fmt.Errorf("column %s: %w", c.Name, err)
		}
	}
	b := sc.path[:0]
	for i, p := range o.parts {
		var v any
		if p.col >= 0 {
			v = vals[p.col]
		} else {
			clear(sc.vars)
			for j, c := range o.cols {
				sc.vars[c.Name] = vals[j]
			}
			var err error
			if v, err = p.prog.Eval(eval.Env{Vars: sc.vars, Now: env.Now}); err != nil {
				return Row{}, fmt.Errorf("partition %s: %w", p.name, err)
			}
		}
		if i > 0 {
			b = append(b, '/')
		}
		b = append(b, p.name...)
		b = append(b, '=')
		if t, ok := v.(time.Time); ok {
			b = sc.appendDate(b, t)
		} else {
			b = append(b, partitionValue(v)...)
		}
	}
	sc.path = b
	// Consecutive records mostly share a partition: compare with the last one before
	// hashing the path.
	if sc.lastPart != "" && string(b) == sc.lastPart {
		return Row{Partition: sc.lastPart, Values: vals}, nil
	}
	part, ok := sc.parts[string(b)] // no allocation for the lookup
	if !ok {
		part = string(b)
		sc.parts[part] = part
	}
	sc.lastPart = part
	return Row{Partition: part, Values: vals}, nil
}

// appendDate appends t's UTC date, formatting each day once per chunk.
func (sc *rowScratch) appendDate(b []byte, t time.Time) []byte {
	day := t.Unix() / 86400
	if t.Unix() < 0 && t.Unix()%86400 != 0 {
		day-- // floor for instants before 1970
	}
	if sc.dateText == "" || day != sc.day {
		sc.day, sc.dateText = day, t.UTC().Format(time.DateOnly)
	}
	return append(b, sc.dateText...)
}

// MaybeFlush writes the buffered rows to files if the oldest has waited flush_age.
func (o *Output) MaybeFlush() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.rows == 0 || o.closed || o.opts.Clock.Now().Sub(o.firstAt) < o.cfg.FlushAge.D() {
		return nil
	}
	return o.flushLocked()
}

// Flush writes every buffered row to files now.
func (o *Output) Flush() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	return o.flushLocked()
}

// flushLocked writes one file per partition for the current log generation, records the
// marks, and starts the next generation's log (see the package doc for the crash cases).
func (o *Output) flushLocked() error {
	if o.rows == 0 {
		return nil
	}
	gen := o.wal.gen
	marks := o.marksJSON()
	// Partitions are written in parallel, one per core: each is its own file, sorted and
	// encoded independently.
	parts := slices.Sorted(maps.Keys(o.buf))
	errs := make([]error, len(parts))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, p := range parts {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			name := fmt.Sprintf("part-%012d.parquet", gen)
			errs[i] = o.writeFile(p, name, o.buf[p], pq.KeyValueMetadata(MetaGeneration, strconv.FormatInt(gen, 10)), pq.KeyValueMetadata(MetaMarks, marks))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := o.saveMarks(); err != nil {
		return err
	}
	next, err := createWAL(o.dir, gen+1, o.Columns())
	if err != nil {
		return err
	}
	old := o.wal
	o.wal = next
	old.close()
	if err := o.removeWALsBefore(gen + 1); err != nil {
		return err
	}
	clear(o.buf)
	o.rows, o.bytes = 0, 0
	return nil
}

func (o *Output) marksJSON() string {
	offs := make(map[string]int64, len(o.marks))
	for k, m := range o.marks {
		offs[k] = m.Offset
	}
	b, _ := json.Marshal(offs)
	return string(b)
}

// writeFile writes rows as dir/partition/name, atomically: into a hidden temporary file
// (whose name does not end in .parquet, so no glob of the table picks it up), fsynced, then
// renamed into place, and the directory fsynced.
func (o *Output) writeFile(partition, name string, rows []Row, meta ...pq.WriterOption) error {
	pdir := filepath.Join(o.dir, filepath.FromSlash(partition))
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return fmt.Errorf("create partition directory: %w", err)
	}
	tmp, err := os.CreateTemp(pdir, ".part-*.tmp")
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	perm := o.sortedOrder(rows)
	options := append([]pq.WriterOption{o.schema, pq.Compression(o.codec),
		pq.MaxRowsPerRowGroup(int64(o.cfg.RowGroupRows)), pq.DataPageStatistics(true),
		pq.CreatedBy("eventops-engine", "", "")}, meta...)
	if len(o.sortBy) > 0 {
		var sorting []pq.SortingColumn
		for _, i := range o.sortBy {
			sorting = append(sorting, pq.Ascending(o.cols[i].Name))
		}
		options = append(options, pq.SortingWriterConfig(pq.SortingColumns(sorting...)))
	}
	if o.pageBufferSize > 0 {
		options = append(options, pq.PageBufferSize(o.pageBufferSize))
	}
	w := pq.NewWriter(tmp, options...)
	// The rows are converted to the file's layout in the order they came (the order their
	// values were allocated in, so memory is read mostly in sequence), then written in the
	// sorted order.
	n := len(o.order)
	slab := make([]pq.Value, len(rows)*n)
	for i, r := range rows {
		parquetRow(r, o.order, slab[i*n:i*n:i*n+n])
	}
	buf := make([]pq.Row, 0, 1024)
	for i := 0; i < len(rows); i += cap(buf) {
		buf = buf[:0]
		for j := i; j < min(i+cap(buf), len(rows)); j++ {
			k := j
			if perm != nil {
				k = int(perm[j])
			}
			buf = append(buf, slab[k*n:k*n+n:k*n+n])
		}
		if _, err := w.WriteRows(buf); err != nil {
			tmp.Close()
			return fmt.Errorf("write %s: %w", partition, err)
		}
	}
	if err := w.Close(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", partition, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", partition, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", partition, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(pdir, name)); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	return syncDir(pdir)
}

// sortedOrder returns the order of one partition's rows by the sort key, NULLs last (what
// the files declare: ascending, nulls last), or nil to keep them as they are. Columns a
// partition holds one value of (tenant, metric) are skipped. When the first remaining
// column is text (a host), rows are grouped by it in one pass, the few distinct values
// sorted, and each group sorted by the rest only when it is not already in order: readings
// mostly arrive in time order per host, so a flush costs about one pass over its rows
// instead of a comparison sort. Rows with equal keys keep their arrival order. The rows
// themselves do not move (see writeFile).
func (o *Output) sortedOrder(rows []Row) []int32 {
	keys := o.sortKeys
	if len(keys) == 0 || len(rows) < 2 {
		return nil
	}
	cmpBy := func(keys []int) func(a, b int32) int {
		return func(a, b int32) int {
			for _, k := range keys {
				if c := compareValues(rows[a].Values[k], rows[b].Values[k]); c != 0 {
					return c
				}
			}
			return 0
		}
	}
	first, rest := keys[0], keys[1:]
	if t := o.cols[first].Type; t != tables.ID && t != tables.Text {
		perm := make([]int32, len(rows))
		for i := range perm {
			perm[i] = int32(i)
		}
		if cmpAll := cmpBy(keys); !slices.IsSortedFunc(perm, cmpAll) {
			slices.SortStableFunc(perm, cmpAll)
		}
		return perm
	}
	groupOf := map[string]int{}
	var groups [][]int32
	var nulls []int32
	for i, r := range rows {
		v, ok := r.Values[first].(string)
		if !ok {
			nulls = append(nulls, int32(i))
			continue
		}
		g, seen := groupOf[v]
		if !seen {
			g = len(groups)
			groupOf[v] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], int32(i))
	}
	names := make([]string, 0, len(groupOf))
	for v := range groupOf {
		names = append(names, v)
	}
	slices.Sort(names)
	cmpRest := cmpBy(rest)
	perm := make([]int32, 0, len(rows))
	place := func(g []int32) {
		if len(rest) > 0 && !slices.IsSortedFunc(g, cmpRest) {
			slices.SortStableFunc(g, cmpRest) // rows with equal keys stay in arrival order (see writtenAfter)
		}
		perm = append(perm, g...)
	}
	for _, v := range names {
		place(groups[groupOf[v]])
	}
	place(nulls)
	return perm
}

const marksFile = "marks.json"

type savedMarks struct {
	Marks map[string]*mark `json:"marks"`
}

func (o *Output) saveMarks() error {
	b, err := json.Marshal(savedMarks{Marks: o.marks})
	if err != nil {
		return fmt.Errorf("encode marks: %w", err)
	}
	wd := filepath.Join(o.dir, walDirName)
	tmp := filepath.Join(wd, marksFile+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("save marks: %w", err)
	}
	if _, err := f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("save marks: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(wd, marksFile)); err != nil {
		return fmt.Errorf("save marks: %w", err)
	}
	return syncDir(wd)
}

func (o *Output) removeWALsBefore(gen int64) error {
	gens, err := walGens(o.dir)
	if err != nil {
		return err
	}
	for _, g := range gens {
		if g < gen {
			if err := os.Remove(walPath(o.dir, g)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove old write-ahead log: %w", err)
			}
		}
	}
	return nil
}

// recover loads the marks, replays the logs left by an earlier run (skipping partitions
// whose file for that generation exists), and moves the replayed rows into a fresh log.
func (o *Output) recover() error {
	if err := os.MkdirAll(filepath.Join(o.dir, walDirName), 0o755); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(o.dir, walDirName, marksFile)); err == nil {
		var s savedMarks
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("read marks: %w", err)
		}
		if s.Marks != nil {
			o.marks = s.Marks
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read marks: %w", err)
	}
	files, maxGen, err := scanFiles(o.dir)
	if err != nil {
		return err
	}
	gens, err := walGens(o.dir)
	if err != nil {
		return err
	}
	cols := o.Columns()
	var replay []walRow
	for _, g := range gens {
		rows, err := readWAL(walPath(o.dir, g), cols)
		if err != nil {
			return err
		}
		for _, r := range rows {
			m := o.marks[r.Mark]
			switch {
			case m == nil:
				o.marks[r.Mark] = &mark{Offset: r.Offset, IDs: []string{r.EventID}}
			case r.Offset > m.Offset:
				m.Offset, m.IDs = r.Offset, []string{r.EventID}
			case r.Offset == m.Offset && !m.has(r.EventID):
				m.IDs = append(m.IDs, r.EventID)
			}
			if !files[g][r.Partition] {
				replay = append(replay, r)
			}
		}
		maxGen = max(maxGen, g)
	}
	w, err := createWAL(o.dir, maxGen+1, cols)
	if err != nil {
		return err
	}
	o.wal = w
	if len(replay) > 0 {
		if err := w.append(encodeRows(nil, replay)); err != nil {
			return err
		}
		o.buffer(replay, o.opts.Clock.Now())
		o.opts.Logger.Info("parquet output: recovered rows from the write-ahead log", "stream", o.opts.Stream, "dir", o.dir, "rows", len(replay))
	}
	if err := o.saveMarks(); err != nil {
		return err
	}
	return o.removeWALsBefore(maxGen + 1)
}

// scanFiles finds the table's files: by generation, the partitions that have a file of it,
// and the highest generation seen. It removes temporary files a crash left behind.
func scanFiles(dir string) (map[int64]map[string]bool, int64, error) {
	out := map[int64]map[string]bool{}
	var maxGen int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == walDirName {
				return filepath.SkipDir
			}
			return nil
		}
		name := d.Name()
		if strings.HasPrefix(name, ".part-") && strings.HasSuffix(name, ".tmp") {
			return os.Remove(path)
		}
		g, ok := fileGen(name)
		if !ok {
			return nil
		}
		rel, _ := filepath.Rel(dir, filepath.Dir(path))
		if out[g] == nil {
			out[g] = map[string]bool{}
		}
		out[g][filepath.ToSlash(rel)] = true
		maxGen = max(maxGen, g)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("scan files: %w", err)
	}
	return out, maxGen, nil
}

// fileGen is the generation in a file name: part-<gen>.parquet or part-<gen>-c<n>.parquet.
func fileGen(name string) (int64, bool) {
	if !strings.HasPrefix(name, "part-") || !strings.HasSuffix(name, ".parquet") {
		return 0, false
	}
	s := strings.TrimSuffix(strings.TrimPrefix(name, "part-"), ".parquet")
	s, _, _ = strings.Cut(s, "-")
	g, err := strconv.ParseInt(s, 10, 64)
	return g, err == nil
}

func (o *Output) background() {
	defer close(o.done)
	every := min(max(o.cfg.FlushAge.D()/4, 10*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
			if err := o.MaybeFlush(); err != nil {
				o.opts.Logger.Error("parquet output: flush failed; will retry", "stream", o.opts.Stream, "dir", o.dir, "err", err)
			}
			if o.opts.Clock.Now().Sub(o.lastMaintenance()) >= o.compact().Interval.D() {
				if err := o.Maintain(); err != nil {
					o.opts.Logger.Error("parquet output: maintenance failed", "stream", o.opts.Stream, "dir", o.dir, "err", err)
				}
			}
		}
	}
}

func (o *Output) lastMaintenance() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lastMain
}

// Close flushes the buffered rows and closes the log.
func (o *Output) Close() error {
	if o.stop != nil {
		close(o.stop)
		<-o.done
		o.stop = nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	err := o.flushLocked()
	o.closed = true
	if cerr := o.wal.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("parquet output %s: close: %w", o.dir, err)
	}
	return nil
}
