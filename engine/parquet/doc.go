// Package parquet is the local store: an engine.Output that writes a table's rows as
// Parquet files under one directory, in Hive-style partitions
// (dir/tenant=acme/metric=cpu_load/date=2025-10-16/part-<generation>.parquet) that DuckDB,
// Arrow and Spark read, and a store.Store (Store, scan.go) that answers the API's routes
// from those files plus the rows not yet flushed.
//
// Durability. Write returns once the batch's rows are in an append-only write-ahead log
// (dir/_wal/wal-<generation>.log), fsynced: that is what makes the engine's contract ("Write
// returns only when every record is durable") hold without writing a small file per batch.
// The rows are also buffered in memory per partition; Pending exposes them, so a query sees
// a row as soon as Write returned. A flush (by flush_rows, flush_bytes, or flush_age on the
// injected clock) writes one file per partition named after the log's generation, each
// written to a hidden .part-*.tmp file, fsynced and renamed into place (a reader never sees
// half a file, and the temporary name matches no *.parquet glob); then it saves the marks
// (below), starts the next generation's log and deletes the old one. After a crash the logs
// are replayed, except the rows of partitions that already have a file of the log's
// generation (the flush got that far), so rows are neither lost nor written twice.
//
// Effectively once. Each row remembers its source (topic, partition, topic id) and offset;
// per source the output keeps the highest offset stored and the event ids stored at exactly
// that offset (several records can derive from one source record, and a window closed by a
// tick carries the offset of the last record it saw). A redelivered record below the mark,
// or at it with an event id already stored, is skipped. The marks move only after the log
// append is durable, are rebuilt from the logs on recovery, persist in dir/_wal/marks.json
// at each flush, and each file's key-value metadata (eventops.marks) records them too.
//
// Compaction merges a partition's small files into part-<generation>-c<n>.parquet whose
// metadata (eventops.compacted_from) lists its inputs: written aside, renamed, then the
// inputs deleted. A crash between the rename and the deletes leaves both; Live lists what a
// reader should read, and the next compaction deletes the leftovers. Retention removes
// date= partitions whose whole day is older than the limit.
package parquet
