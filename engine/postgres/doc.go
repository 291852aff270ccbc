// Package postgres writes stream records into PostgreSQL tables and answers the API's table
// queries from them.
//
// # Writing
//
// An Output converts each record to its columns' types in Go, so that every value sent is
// one the server accepts; a record that does not fit (a time that is not a time, text with
// a NUL byte, a missing dedupe key) goes to rejects with the column and the reason, and the
// rest of the batch is written. Plain field paths ("metric", "source?.source_id") are read
// straight from the record; other expressions run through engine/eval.
//
// Writes are effectively once because the dedupe key (event_id) has a unique index and no
// write ever inserts a key twice. The fast path copies the batch straight into the table
// with binary COPY, converting rows while COPY streams them. COPY is all-or-nothing, so when
// any row is already present (a redelivery, a retry after an ambiguous commit, a duplicate
// inside the batch) it fails as a whole and the batch is written again through a staging
// table: COPY into a per-connection temporary table (ON COMMIT DELETE ROWS, created once per
// session) and INSERT ... SELECT ... ON CONFLICT (key) DO NOTHING, in one transaction.
// After a batch with duplicates the next batches go straight to staging until one has no
// duplicates, so a replay costs one wasted COPY, not one per batch. If the server refuses
// some row (a CHECK or NOT NULL constraint, a varchar too short), the batch is split in
// halves until the refused rows are alone; they go to rejects and the rest is committed.
//
// A batch is visible to queries all at once (one COPY or one transaction), with one
// exception: a batch of OutputOptions.Parallel × 1000 rows or more is split by event_id
// over several connections, each part its own transaction, so a query running meanwhile
// can see some parts and not yet the others (never part of a part, never a row twice).
// The store suite (engine/store/storetest) checks whole-batch visibility on batches below
// that size; one transaction across connections would take two-phase commit.
//
// Why this path: BenchmarkWrite, 10k-row batches of metrics records into the metrics table
// (with its query index), one connection, on a shared 2-core machine (figures vary ±20%
// between runs there; compare within a run):
//
//	plain COPY, no unique index                 110k-190k rows/s  (ceiling, rows pre-converted)
//	plain COPY, unique index on event_id        100k-120k rows/s  (ceiling with dedupe)
//	Output, copy-first (default)                 95k-130k rows/s  ≈ 0.9-1.0× COPY with the index
//	Output, always staging + ON CONFLICT          65k-87k rows/s  ≈ 0.65×
//	Output, staging table created per tx          68k-82k rows/s  (ON COMMIT DROP; removed)
//	Output, INSERT ... SELECT FROM unnest($n[])   54k-61k rows/s  (removed)
//	redelivery of written batches (copy-first)  115k-145k rows/s  (nothing inserted)
//
// Converting a record (default mapping, jsonb tags) costs about 1.2 µs (BenchmarkConvert);
// a hand-written JSON encoder for jsonb halved it from 2.6 µs, as encoding/json reflects on
// every map entry. The cost of the copy-first path is a server log line and up to one
// batch of dead tuples each time a replay starts.
//
// The built-in tables metrics and alerts (the seed's schema plus event_id and the alert
// lifecycle columns) are created with their indexes when missing, under an advisory lock so
// engines starting together do not collide; an older table (the seed's own) gets the
// missing columns added. Other tables must exist, with a unique index on the dedupe key.
//
// # Reading
//
// A Store answers the API's queries: table and column names are checked against the
// catalog (through the connection's search_path) and quoted, values are converted to the
// column's type and bound as parameters, and results come back JSON-ready.
//
// Connections come from one pool per DSN for the whole process (Pool), shared by every
// output and Store; CloseAll closes them at shutdown.
package postgres
