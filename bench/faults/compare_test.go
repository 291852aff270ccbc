package main

import (
	"bytes"
	"testing"
	"time"
)

// The counts the suite prints are what an operator reads to judge a fault: a record the
// clean run has and the faulted run lacks is lost, one it has more often is duplicated, one
// whose content changed is differing, one the clean run never had is extra.
func TestCompareSetsCounts(t *testing.T) {
	set := func(recs ...[2]string) *recordSet {
		s := newRecordSet("t")
		for _, r := range recs {
			s.add(r[0], []byte(r[1]), true)
		}
		return s
	}
	clean := set([2]string{"a", "1"}, [2]string{"b", "2"}, [2]string{"c", "3"})
	tests := []struct {
		name                            string
		run                             *recordSet
		lost, duplicated, differ, extra int
	}{
		{"equal", set([2]string{"c", "3"}, [2]string{"a", "1"}, [2]string{"b", "2"}), 0, 0, 0, 0},
		{"one lost", set([2]string{"a", "1"}, [2]string{"b", "2"}), 1, 0, 0, 0},
		{"one twice", set([2]string{"a", "1"}, [2]string{"a", "1"}, [2]string{"b", "2"}, [2]string{"c", "3"}), 0, 1, 0, 0},
		{"a changed content", set([2]string{"a", "1"}, [2]string{"b", "20"}, [2]string{"c", "3"}), 0, 0, 1, 0},
		{"twice, once changed", set([2]string{"a", "1"}, [2]string{"a", "9"}, [2]string{"b", "2"}, [2]string{"c", "3"}), 0, 1, 1, 0},
		{"an extra identity", set([2]string{"a", "1"}, [2]string{"b", "2"}, [2]string{"c", "3"}, [2]string{"d", "4"}), 0, 0, 0, 1},
		{"nothing at all", nil, 3, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := compareSets("t", clean, tt.run)
			if c.Lost != tt.lost || c.Duplicated != tt.duplicated || c.Differing != tt.differ || c.Extra != tt.extra {
				t.Errorf("lost/duplicated/differing/extra = %d/%d/%d/%d, want %d/%d/%d/%d (examples %v)",
					c.Lost, c.Duplicated, c.Differing, c.Extra, tt.lost, tt.duplicated, tt.differ, tt.extra, c.Examples)
			}
		})
	}
}

// Two runs are comparable only if they read the same input: the same seed gives the same
// bytes, and the oversized input is the clean input with two records inserted, whose
// offsets map back to the clean input's positions.
func TestInputIsReproducible(t *testing.T) {
	a, b := makeInput(5000, 20, 3), makeInput(5000, 20, 3)
	if len(a.records) != 5000 {
		t.Fatalf("%d records, want 5000", len(a.records))
	}
	for i := range a.records {
		if !bytes.Equal(a.records[i], b.records[i]) {
			t.Fatalf("record %d differs between two inputs of the same seed:\n%s\n%s", i, a.records[i], b.records[i])
		}
	}
	if c := makeInput(5000, 20, 4); bytes.Equal(bytes.Join(a.records, nil), bytes.Join(c.records, nil)) {
		t.Error("another seed gave the same input")
	}
	big := a.withOversized()
	for _, off := range big.extra {
		if big.seqOf(off) != -1 {
			t.Errorf("extra record at offset %d maps to input record %d, want none", off, big.seqOf(off))
		}
		if len(big.records[off]) < 1<<20-100 {
			t.Errorf("extra record at offset %d has %d bytes, want an oversized one", off, len(big.records[off]))
		}
	}
	for off := int64(0); off < int64(len(big.records)); off++ {
		if seq := big.seqOf(off); seq >= 0 && !bytes.Equal(big.records[off], a.records[seq]) {
			t.Fatalf("offset %d maps to input record %d, which holds other bytes", off, seq)
		}
	}
}

// The input exercises every path the comparison looks at: bad records for the dead-letter
// topic, readings late beyond the rollup's lateness, and cpu readings hot enough to alert.
func TestInputHasBadLateAndHotRecords(t *testing.T) {
	in := makeInput(30_000, 50, 17)
	bad, hot, late := 0, 0, 0
	var newest time.Time
	for _, r := range in.records {
		v, ok := decodeObject(r)
		if ts, err := time.Parse(time.RFC3339Nano, str(v["ts_event"])); ok && err == nil {
			if newest.Sub(ts) > 2*time.Minute { // beyond the rollup's 30 s lateness and its minute
				late++
			}
			if ts.After(newest) {
				newest = ts
			}
		}
		switch {
		case !ok:
			bad++
		case v["metric"] == "cpu_load" && v["unit"] == "percent":
			if f, err := v["value"].(interface{ Float64() (float64, error) }).Float64(); err == nil && f >= 90 {
				hot++
			}
		}
	}
	if bad == 0 || hot == 0 || late == 0 {
		t.Errorf("%d malformed records, %d cpu readings ≥ 90, %d readings late by over 2 minutes in 30,000 records; want some of each", bad, hot, late)
	}
}

// The rollup accounting catches a rollup that missed readings of its minute, whatever the
// clean run says, and counts late and dead-lettered readings as set aside.
func TestWindowAccountFindsARollupThatMissedReadings(t *testing.T) {
	reading := func(ts string) map[string]any {
		return map[string]any{"tenant_id": "t", "source": map[string]any{"source_id": "h"}, "metric": "cpu", "ts_event": ts}
	}
	rollup := func(n int) map[string]any {
		return map[string]any{"tenant_id": "t", "source": map[string]any{"source_id": "h"}, "metric": "cpu", "window_start": "2025-10-16T00:24:00Z", "n": n}
	}
	a := newWindowAccount()
	for _, ts := range []string{"2025-10-16T00:24:01Z", "2025-10-16T00:24:31.5Z", "2025-10-16T00:24:59.999Z"} {
		a.reading(reading(ts))
	}
	a.reading(reading("2025-10-16T00:25:00Z")) // the next minute's
	a.setAsideReading(reading("2025-10-16T00:24:31.5Z"))
	a.rollup(rollup(2))
	if c := a.check(); !c.OK {
		t.Errorf("n=2 for 3 readings of which 1 was late: %s", c.Detail)
	}
	a.rollup(rollup(3))
	if c := a.check(); c.OK {
		t.Errorf("n=3 for 3 readings of which 1 was late passed: %s", c.Detail)
	}
}
