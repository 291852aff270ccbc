package parquet

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine"
)

// A crash (the Output abandoned without Close) followed by the redelivery of everything
// since the last commit leaves each row once: acknowledged rows come back from the
// write-ahead log, redelivered ones at or below the stored mark are skipped, and a record
// above the mark is written.
func TestCrashAndRedeliveryWriteEachRowOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		// crash is what happened before the crash, after the first batch was acknowledged.
		crash func(t *testing.T, o *Output)
	}{
		{"rows only in the log", func(t *testing.T, o *Output) {}},
		{"rows flushed to files", func(t *testing.T, o *Output) {
			if err := o.Flush(); err != nil {
				t.Fatal(err)
			}
		}},
		{"crash between a file's rename and the log's truncation", func(t *testing.T, o *Output) {
			// What a flush leaves when it dies after renaming the file: the file and the
			// old log both hold the rows.
			o.mu.Lock()
			defer o.mu.Unlock()
			for p, rows := range o.buf {
				if err := o.writeFile(p, "part-000000000001.parquet", rows); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			clock := &fakeClock{now: time.Date(2025, 10, 16, 9, 5, 0, 0, time.UTC)}
			first := []*engine.Record{
				reading(0, "host-a", "cpu_load", 92, "2025-10-16T09:00:00Z"),
				reading(1, "host-b", "cpu_load", 50, "2025-10-16T09:00:01Z"),
			}
			o := open(t, metricsConfig(dir), clock)
			write(t, o, first...)
			tc.crash(t, o)
			o.wal.close() // the process died: no Close, no flush

			o2 := open(t, metricsConfig(dir), clock)
			// The consumer group never committed: everything is redelivered, plus a new record.
			write(t, o2, append(first, reading(2, "host-a", "cpu_load", 95, "2025-10-16T09:01:00Z"))...)
			if err := o2.Close(); err != nil {
				t.Fatal(err)
			}
			rows, _ := arrowRows(t, dir)
			want := []string{
				`acme|host-a|cpu_load|92|2025-10-16T09:00:00Z|{"env":"prod"}|ev-host-a-2025-10-16T09:00:00Z-cpu_load`,
				`acme|host-a|cpu_load|95|2025-10-16T09:01:00Z|{"env":"prod"}|ev-host-a-2025-10-16T09:01:00Z-cpu_load`,
				`acme|host-b|cpu_load|50|2025-10-16T09:00:01Z|{"env":"prod"}|ev-host-b-2025-10-16T09:00:01Z-cpu_load`,
			}
			if !slices.Equal(rows, want) {
				t.Fatalf("rows:\n%v\nwant:\n%v", rows, want)
			}
		})
	}
}

// Compaction merges a partition's small files into one that names its inputs, and
// retention removes date partitions older than the limit; both run on the injected clock.
func TestCompactionAndRetention(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{now: time.Date(2025, 10, 16, 9, 5, 0, 0, time.UTC)}
	cfg := metricsConfig(dir)
	cfg.Compact = &Compact{MinFiles: 3, TargetSize: 1 << 30, Interval: 60e9}
	cfg.Retention = 2 * 24 * 3600e9
	o := open(t, cfg, clock)
	for i := range 3 {
		write(t, o, reading(int64(i), "host-a", "cpu_load", float64(i), "2025-10-16T09:00:0"+string(rune('0'+i))+"Z"))
		if err := o.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	write(t, o, reading(3, "host-a", "cpu_load", 1, "2025-10-13T09:00:00Z"))
	if err := o.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := o.Maintain(); err != nil {
		t.Fatal(err)
	}
	got := files(t, dir)
	if len(got) != 1 || filepath.Dir(got[0]) != "tenant=acme/metric=cpu_load/date=2025-10-16" {
		t.Fatalf("files after maintenance: %v, want one compacted file of 2025-10-16 (2025-10-13 is past retention)", got)
	}
	from, err := compactedFrom(filepath.Join(dir, got[0]))
	if err != nil || len(from) != 3 {
		t.Fatalf("compacted file lists inputs %v (%v), want the 3 merged files", from, err)
	}
	rows, _ := arrowRows(t, dir)
	if len(rows) != 3 {
		t.Fatalf("rows after compaction: %d, want 3", len(rows))
	}
	if _, err := os.Stat(filepath.Join(dir, "tenant=acme/metric=cpu_load/date=2025-10-13")); !os.IsNotExist(err) {
		t.Fatalf("old partition still there: %v", err)
	}
	o.Close()
}
