package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"hash/maphash"
	"log/slog"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// OutputOptions is what an Output needs besides its config.
type OutputOptions struct {
	// Stream names the stream (or sink) in metrics and logs.
	Stream  string
	Metrics *telemetry.Metrics // nil: not counted
	Logger  *slog.Logger       // nil: slog.Default()
	// Clock is what now() in a column expression reads; nil: the wall clock.
	Clock engine.Clock
	// Parallel is how many connections one large batch is written over at once; 0 means
	// GOMAXPROCS. One COPY keeps one server process busy, so a single connection caps a
	// sink at what one core of the database can index.
	Parallel int
}

// Output writes batches of records into one PostgreSQL table, effectively once: a record
// whose dedupe key is already in the table is skipped, so redelivered batches and retried
// writes leave one row per event.
type Output struct {
	pool  *pgxpool.Pool
	dsn   string
	table tableRef
	// cols are the written columns, in mapping order, and values what fills each of them;
	// dedupe is the index of the dedupe key.
	cols   []column
	values []valueFunc
	names  []string
	dedupe int

	stage       string // staging table name (a temporary table, one per connection)
	createStage string
	insert      string
	// parallel is how many connections a large batch is split over (OutputOptions.Parallel).
	parallel int
	// binary is set when every column can go through the hand-written binary COPY encoder
	// (binarycopy.go); copyTable and copyStage are its statements.
	binary               bool
	copyTable, copyStage string
	// mode chooses how rows reach the table; only benchmarks change it (see doc.go).
	mode writeMode
	// duplicates says the last staged write skipped rows already present: a redelivery is
	// under way, so the next batch goes straight to staging instead of a doomed COPY.
	duplicates atomic.Bool

	opts    OutputOptions
	seconds interface{ Observe(float64) }
	skipped interface{ Add(float64) }
	rows    interface{ Observe(float64) }
}

// NewOutput connects to cfg.DSN (through the shared pool), creates the table if it is a
// built-in one and creation is on, checks that every mapped column exists with a type the
// output can convert to, and that the dedupe key has a unique index.
func NewOutput(ctx context.Context, cfg *Config, opts OutputOptions) (*Output, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = engine.WallClock{}
	}
	t, fields, err := cfg.mapping()
	if err != nil {
		return nil, err
	}
	dedupeKey := cfg.dedupeKey()
	builtin, isBuiltin := builtinTables[t.base()]
	mapping, err := eval.CompileFields(fields)
	if err != nil {
		return nil, err
	}

	pool, err := Pool(ctx, cfg.DSN)
	if err != nil {
		return nil, err
	}
	if isBuiltin && (cfg.Create == nil || *cfg.Create) {
		if err := createBuiltin(ctx, pool, t, builtin, dedupeKey); err != nil {
			return nil, fmt.Errorf("postgres output: %w", err)
		}
	}
	tableCols, err := readColumns(ctx, pool, t)
	if err != nil {
		return nil, fmt.Errorf("postgres output: %w", err)
	}
	if len(tableCols) == 0 {
		hint := "create it first (the output creates only the built-in tables metrics and alerts)"
		if isBuiltin {
			hint = "create it, or leave create on"
		}
		return nil, config.FieldErrorf("table", "table %s does not exist in the database (through its search_path): %s", t.name, hint)
	}
	byName := map[string]column{}
	for _, c := range tableCols {
		byName[c.name] = c
	}

	var errs config.Errors
	o := &Output{pool: pool, dsn: cfg.DSN, table: t, dedupe: -1, opts: opts, parallel: opts.Parallel}
	if o.parallel <= 0 {
		o.parallel = goruntime.GOMAXPROCS(0)
	}
	for i, name := range mapping.Names() {
		pos := fields[i].Pos
		c, ok := byName[name]
		switch {
		case !ok:
			errs.Add(pos, "columns."+name, "table %s has no column %q", t.name, name)
			continue
		case c.kind == kindUnsupported:
			errs.Add(pos, "columns."+name, "column %q has type %s, which the postgres output cannot write (supported: text, numbers, boolean, timestamps, date, json, jsonb, uuid)", name, c.udt)
			continue
		}
		if name == dedupeKey {
			o.dedupe = len(o.cols)
		}
		vf, err := compileValue(fields[i])
		if err != nil {
			errs.Append(pos, "columns."+name, err)
			continue
		}
		o.cols = append(o.cols, c)
		o.values = append(o.values, vf)
		o.names = append(o.names, name)
	}
	if o.dedupe < 0 {
		errs.Add(config.Pos{}, "dedupe_key", "dedupe key %q is not one of the written columns", dedupeKey)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	ok, err := hasUniqueIndex(ctx, pool, t, dedupeKey)
	if err != nil {
		return nil, fmt.Errorf("postgres output: %w", err)
	}
	if !ok {
		return nil, config.FieldErrorf("dedupe_key", "column %q of table %s has no unique index of its own; create one (CREATE UNIQUE INDEX ON %s (%s)) so that redelivered records are not inserted twice",
			dedupeKey, t.name, t.quoted(), pgx.Identifier{dedupeKey}.Sanitize())
	}
	o.prepareSQL()
	if opts.Metrics != nil {
		o.seconds = opts.Metrics.SinkBatchSeconds.WithLabelValues(opts.Stream, t.name)
		o.rows = opts.Metrics.SinkBatchRows.WithLabelValues(opts.Stream, t.name)
		o.skipped = opts.Metrics.SinkDuplicates.WithLabelValues(opts.Stream, t.name)
	}
	return o, nil
}

// mergeColumns returns the built-in mapping with the configured columns replacing the
// expressions of the columns they name (and adding any others, which must then exist).
func mergeColumns(def builtinTable, override config.Fields) config.Fields {
	byName := map[string]config.Field{}
	for _, f := range override {
		byName[f.Name] = f
	}
	var out config.Fields
	for _, c := range def.columns {
		if f, ok := byName[c.name]; ok {
			out = append(out, f)
			delete(byName, c.name)
			continue
		}
		out = append(out, config.Field{Name: c.name, Expr: &config.Expr{Src: c.expr, Path: "columns." + c.name}})
	}
	for _, f := range override {
		if _, ok := byName[f.Name]; ok {
			out = append(out, f)
		}
	}
	return out
}

func (o *Output) prepareSQL() {
	quoted := make([]string, len(o.cols))
	defs := make([]string, len(o.cols))
	h := fnv.New64a()
	h.Write([]byte(o.table.quoted()))
	for i, c := range o.cols {
		quoted[i] = pgx.Identifier{c.name}.Sanitize()
		defs[i] = quoted[i] + " " + c.typ
		h.Write([]byte{0})
		h.Write([]byte(defs[i]))
	}
	// The name depends on the table and the column layout, so outputs that share a
	// connection never share a staging table unless they stage the same rows.
	o.stage = fmt.Sprintf("eventops_stage_%x", h.Sum64())
	o.createStage = fmt.Sprintf("CREATE TEMPORARY TABLE IF NOT EXISTS %s (%s) ON COMMIT DELETE ROWS",
		pgx.Identifier{o.stage}.Sanitize(), strings.Join(defs, ", "))
	cols := strings.Join(quoted, ", ")
	o.insert = fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM pg_temp.%s ON CONFLICT (%s) DO NOTHING",
		o.table.quoted(), cols, cols, pgx.Identifier{o.stage}.Sanitize(), quoted[o.dedupe])
	o.binary = binaryEncodable(o.cols)
	o.copyTable = copySQL(o.table.quoted(), o.cols)
	o.copyStage = copySQL("pg_temp."+pgx.Identifier{o.stage}.Sanitize(), o.cols)

}

// Write converts every record to a row, sends the ones that cannot be stored to rejects,
// and writes the rest in one transaction. Rows whose dedupe key is already in the table
// (from an earlier delivery, or earlier in the same batch) are skipped.
func (o *Output) Write(ctx context.Context, batch []*engine.Record, rejects *engine.Rejects) error {
	if len(batch) == 0 {
		return nil
	}
	start := time.Now()
	src := &rowSource{o: o, batch: batch, now: o.opts.Clock.Now(), rejects: rejects,
		recs: make([]*engine.Record, 0, len(batch)), rows: make([][]any, 0, len(batch))}
	var err error
	if o.parallel > 1 && len(batch) >= o.parallel*minParallelRows {
		err = o.writeParallel(ctx, src, rejects)
	} else {
		err = o.writeSerial(ctx, src, rejects)
	}
	if err != nil {
		return fmt.Errorf("postgres output %s: %w", o.table.name, err)
	}
	if o.seconds != nil {
		o.seconds.Observe(time.Since(start).Seconds())
		o.rows.Observe(float64(len(src.rows)))
	}
	return nil
}

// minParallelRows is the smallest share of a batch worth its own connection.
const minParallelRows = 1000

// writeSerial writes the batch over one connection, converting records while COPY sends.
func (o *Output) writeSerial(ctx context.Context, src *rowSource, rejects *engine.Rejects) error {
	if o.mode == writeCopyFirst && !o.duplicates.Load() {
		err := o.copyDirect(ctx, src)
		switch {
		case err == nil:
			return nil
		case !isRowError(err):
			return fmt.Errorf("copy: %w", err)
		default:
			o.opts.Logger.Debug("postgres output: COPY refused the batch; writing it through the staging table",
				"stream", o.opts.Stream, "table", o.table.name, "reason", err)
		}
	}
	src.drain()
	if len(src.rows) == 0 {
		return nil
	}
	return o.writeIsolating(ctx, src.recs, src.rows, rejects)
}

// writeParallel converts the whole batch, splits it by a hash of the dedupe key and writes
// the parts at once, each over its own connection and in its own transaction. Equal keys
// always fall in the same part, so the parts never wait on each other's rows (no lock
// waits, no deadlocks). If any part fails the batch fails and is retried whole; the parts
// that had committed are then skipped as duplicates, as in any redelivery.
func (o *Output) writeParallel(ctx context.Context, src *rowSource, rejects *engine.Rejects) error {
	src.drain()
	if len(src.rows) == 0 {
		return nil
	}
	parts := make([]part, o.parallel)
	for i, row := range src.rows {
		p := &parts[keyHash(row[o.dedupe])%uint64(len(parts))]
		p.recs = append(p.recs, src.recs[i])
		p.rows = append(p.rows, row)
	}
	var wg sync.WaitGroup
	for i := range parts {
		wg.Add(1)
		go func(p *part) {
			defer wg.Done()
			p.err = o.writePart(ctx, p)
		}(&parts[i])
	}
	wg.Wait()
	var errs []error
	for i := range parts {
		rejects.Items = append(rejects.Items, parts[i].rejects.Items...)
		if parts[i].err != nil {
			errs = append(errs, parts[i].err)
		}
	}
	return errors.Join(errs...)
}

// part is one connection's share of a batch.
type part struct {
	recs    []*engine.Record
	rows    [][]any
	rejects engine.Rejects
	err     error
}

func (o *Output) writePart(ctx context.Context, p *part) error {
	if len(p.rows) == 0 {
		return nil
	}
	if o.mode == writeCopyFirst && !o.duplicates.Load() {
		err := o.copyDirect(ctx, pgx.CopyFromRows(p.rows))
		if err == nil || !isRowError(err) {
			return err
		}
	}
	return o.writeIsolating(ctx, p.recs, p.rows, &p.rejects)
}

// keyHash spreads dedupe keys over the parts of a parallel write.
func keyHash(k any) uint64 {
	switch x := k.(type) {
	case string:
		return maphash.String(partSeed, x)
	case [16]byte:
		return maphash.Bytes(partSeed, x[:])
	case int64:
		return uint64(x)
	default:
		return maphash.String(partSeed, fmt.Sprint(x))
	}
}

var partSeed = maphash.MakeSeed()

// copyDirect copies src straight into the table.
func (o *Output) copyDirect(ctx context.Context, src pgx.CopyFromSource) error {
	conn, err := o.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	return o.copyInto(ctx, conn.Conn(), o.table.ident, o.copyTable, src)
}

// copyInto copies src into table on conn: with the hand-written binary encoder when every
// column allows it (sql is its COPY statement), through pgx otherwise.
func (o *Output) copyInto(ctx context.Context, conn *pgx.Conn, table pgx.Identifier, sql string, src pgx.CopyFromSource) error {
	var err error
	if o.binary {
		_, err = copyBinary(ctx, conn.PgConn(), sql, o.cols, src)
	} else {
		_, err = conn.CopyFrom(ctx, table, o.names, src)
	}
	return err
}

// rowSource converts records to rows on demand for pgx's CopyFrom, sending the ones that
// cannot be converted to rejects and keeping the converted rows in case the batch has to
// be written again another way.
type rowSource struct {
	o       *Output
	batch   []*engine.Record
	next    int
	now     time.Time
	rejects *engine.Rejects

	recs []*engine.Record
	rows [][]any
	cur  []any
}

func (s *rowSource) Next() bool {
	for s.next < len(s.batch) {
		rec := s.batch[s.next]
		s.next++
		row, err := s.o.row(rec, s.now)
		if err != nil {
			s.rejects.Add(rec, "output", err)
			continue
		}
		s.recs = append(s.recs, rec)
		s.rows = append(s.rows, row)
		s.cur = row
		return true
	}
	return false
}

func (s *rowSource) Values() ([]any, error) { return s.cur, nil }
func (s *rowSource) Err() error             { return nil }

// drain converts the records a failed COPY did not get to.
func (s *rowSource) drain() {
	for s.Next() {
	}
}

// row evaluates the column expressions for rec and converts each value to its column type.
func (o *Output) row(rec *engine.Record, now time.Time) ([]any, error) {
	env := eval.Env{Vars: rec.Value, Source: rec.Source, Now: now}
	row := make([]any, len(o.cols))
	for i, c := range o.cols {
		v, err := o.values[i](env)
		if err != nil {
			return nil, fmt.Errorf("table %s column %s: %w", o.table.name, c.name, err)
		}
		if v, err = convert(c.kind, v); err != nil {
			return nil, fmt.Errorf("table %s column %s (%s): %w", o.table.name, c.name, c.udt, err)
		}
		row[i] = v
	}
	if k := row[o.dedupe]; k == nil || k == "" {
		return nil, fmt.Errorf("table %s: dedupe key column %s is missing (the record would be inserted again on every redelivery)", o.table.name, o.cols[o.dedupe].name)
	}
	return row, nil
}

// writeIsolating writes rows; if the server refuses the batch because of the data in some
// row (a CHECK or NOT NULL constraint, a too-long varchar, ...), it splits the batch in
// halves until the refused rows are alone, rejects those and writes the rest. Halves commit
// separately, which is safe because every write skips rows already present.
func (o *Output) writeIsolating(ctx context.Context, recs []*engine.Record, rows [][]any, rejects *engine.Rejects) error {
	err := o.writeRows(ctx, rows)
	if err == nil || !isRowError(err) || ctx.Err() != nil {
		return err
	}
	if len(rows) == 1 {
		rejects.Add(recs[0], "output", fmt.Errorf("table %s refused the row: %w", o.table.name, err))
		return nil
	}
	mid := len(rows) / 2
	if err := o.writeIsolating(ctx, recs[:mid], rows[:mid], rejects); err != nil {
		return err
	}
	return o.writeIsolating(ctx, recs[mid:], rows[mid:], rejects)
}

// isRowError reports whether err is the server refusing data (SQLSTATE classes 22, data
// exception, and 23, integrity constraint violation) rather than a failure of the database
// or the connection, which a retry of the whole batch may cure.
func isRowError(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23")
}

// writeMode is a way of moving a batch into the table. Both are correct; they differ in
// speed (see the package documentation).
type writeMode int

const (
	// writeCopyFirst copies straight into the table, which the unique index makes fail as a
	// whole when any row is already there; then (and for following batches, until a batch
	// has no duplicates again) it writes through the session staging table.
	writeCopyFirst writeMode = iota
	// writeSessionStaging copies into a temporary table that lives as long as the
	// connection and is emptied at every commit.
	writeSessionStaging
)

func (o *Output) writeRows(ctx context.Context, rows [][]any) error {
	inserted, err := o.writeStaged(ctx, rows)
	if err != nil {
		return err
	}
	if o.mode == writeCopyFirst {
		o.duplicates.Store(inserted < int64(len(rows)))
	}
	// Skipping is the point of the dedupe key, but it must never be silent: a skip that is
	// not a redelivery would be a lost event.
	if skipped := int64(len(rows)) - inserted; skipped > 0 {
		if o.skipped != nil {
			o.skipped.Add(float64(skipped))
		}
		o.opts.Logger.Info("postgres output: rows already stored were skipped (a redelivery or an upstream replay)",
			"stream", o.opts.Stream, "table", o.table.name, "skipped", skipped, "of", len(rows))
	}
	return nil
}

// writeStaged copies rows into a staging table and moves the new ones into
// the target table, in one transaction.
func (o *Output) writeStaged(ctx context.Context, rows [][]any) (inserted int64, err error) {
	tx, err := o.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, o.createStage); err != nil {
		return 0, fmt.Errorf("create staging table: %w", err)
	}
	if err := o.copyInto(ctx, tx.Conn(), pgx.Identifier{o.stage}, o.copyStage, pgx.CopyFromRows(rows)); err != nil {
		return 0, fmt.Errorf("copy into staging table: %w", err)
	}
	tag, err := tx.Exec(ctx, o.insert)
	if err != nil {
		return 0, fmt.Errorf("insert: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Close releases nothing: the connection pool is shared by every output and store of the
// process and closed by CloseAll.
func (o *Output) Close() error { return nil }
