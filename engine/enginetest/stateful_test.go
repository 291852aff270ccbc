package enginetest

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine"
)

// counter is a toy stateful processor: it counts the records of each key per partition and
// emits the count when it reaches three, or when a tick finds the key idle for a minute,
// and then forgets the key. Its faults switch on the mistakes the suite must catch.
type counter struct {
	clock  engine.Clock
	parts  map[int32]*counterPart
	faults faults
}

type faults struct {
	forgetsIncrement bool // reports a key when it is created, not when its count changes
	dropsAll         bool // Drop forgets every partition
	deletesOnDrop    bool // Drop reports the partition's entries deleted
	keepsDeleted     bool // forgets a key without reporting its deletion
	repeatsChanges   bool // never clears what it reported
	dirtyOnRestore   bool // reports what it restored
	panicsOnShort    bool // decodes without checking the length
	acceptsShort     bool // takes a short entry as an empty count
	hideExport       bool // has no Export method (the test hides it)
}

type counterPart struct {
	counts map[string]*count
	dirty  map[string]bool
}

type count struct {
	n    uint8
	seen time.Time
}

func newCounter(clock engine.Clock, f faults) *counter {
	return &counter{clock: clock, parts: map[int32]*counterPart{}, faults: f}
}

func (c *counter) part(id int32) *counterPart {
	if c.parts[id] == nil {
		c.parts[id] = &counterPart{counts: map[string]*count{}, dirty: map[string]bool{}}
	}
	return c.parts[id]
}

func (c *counter) Process(_ context.Context, batch []*engine.Record, rejects *engine.Rejects) ([]*engine.Record, error) {
	var out []*engine.Record
	for _, r := range batch {
		key, ok := r.Value["key"].(string)
		if !ok {
			rejects.Add(r, "counter", fmt.Errorf("no key"))
			continue
		}
		part := c.part(r.Source.Partition)
		cnt := part.counts[key]
		if cnt == nil || !c.faults.forgetsIncrement {
			part.dirty[key] = true
		}
		if cnt == nil {
			cnt = &count{}
			part.counts[key] = cnt
		}
		cnt.n++
		cnt.seen = c.clock.Now()
		if cnt.n == 3 {
			out = append(out, c.emit(part, key, r.Source, false))
		}
	}
	return out, nil
}

func (c *counter) Tick(_ context.Context, now time.Time, _ *engine.Rejects) ([]*engine.Record, error) {
	var out []*engine.Record
	for _, id := range slices.Sorted(maps.Keys(c.parts)) {
		part := c.parts[id]
		for _, key := range slices.Sorted(maps.Keys(part.counts)) {
			if now.Sub(part.counts[key].seen) >= time.Minute {
				out = append(out, c.emit(part, key, engine.Source{Topic: "toy", Partition: id}, true))
			}
		}
	}
	return out, nil
}

func (c *counter) emit(part *counterPart, key string, src engine.Source, idle bool) *engine.Record {
	n := part.counts[key].n
	delete(part.counts, key)
	if c.faults.keepsDeleted {
		delete(part.dirty, key)
	} else {
		part.dirty[key] = true
	}
	return &engine.Record{Value: map[string]any{"key": key, "n": float64(n), "idle": idle}, Source: src}
}

func (c *counter) Changes(put func(partition int32, key string, value []byte)) {
	for _, id := range slices.Sorted(maps.Keys(c.parts)) {
		part := c.parts[id]
		for _, key := range slices.Sorted(maps.Keys(part.dirty)) {
			put(id, key, encodeCount(part.counts[key]))
		}
		if !c.faults.repeatsChanges {
			clear(part.dirty)
		}
	}
}

func (c *counter) Export(put func(partition int32, key string, value []byte)) {
	for id, part := range c.parts {
		for key, cnt := range part.counts {
			put(id, key, encodeCount(cnt))
		}
	}
}

func encodeCount(cnt *count) []byte {
	if cnt == nil {
		return nil
	}
	return binary.BigEndian.AppendUint64([]byte{cnt.n}, uint64(cnt.seen.UnixNano()))
}

func (c *counter) Restore(id int32, entries map[string][]byte) error {
	part := &counterPart{counts: map[string]*count{}, dirty: map[string]bool{}}
	for key, v := range entries {
		cnt, err := c.decode(v)
		if err != nil {
			return fmt.Errorf("counter: restore partition %d: entry %q: %w", id, key, err)
		}
		part.counts[key] = cnt
		if c.faults.dirtyOnRestore {
			part.dirty[key] = true
		}
	}
	c.parts[id] = part
	return nil
}

func (c *counter) decode(v []byte) (*count, error) {
	if len(v) != 9 && !c.faults.panicsOnShort {
		if c.faults.acceptsShort {
			return &count{}, nil
		}
		return nil, fmt.Errorf("%d bytes, want 9", len(v))
	}
	if v[0] == 0 || v[0] > 2 {
		return nil, fmt.Errorf("count %d out of range", v[0])
	}
	return &count{n: v[0], seen: time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9]))).UTC()}, nil
}

func (c *counter) Drop(id int32) {
	switch {
	case c.faults.dropsAll:
		clear(c.parts)
	case c.faults.deletesOnDrop && c.parts[id] != nil:
		// The deletions would remove the state of the instance that owns the partition now.
		part := c.parts[id]
		for key := range part.counts {
			part.dirty[key] = true
		}
		clear(part.counts)
	default:
		delete(c.parts, id)
	}
}

// withoutExport is a processor's Process, Tick and Stateful methods without its Export.
type withoutExport struct {
	ticking
}

type ticking interface {
	StatefulProcessor
	engine.Ticker
}

var toyStart = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// toyScript sends keys over partitions, 20 s of clock a step, with a tick every fifth step
// and a record without a key now and then: counts reach three, idle keys are flushed by
// ticks. Every eight steps three new keys take over, so that forgotten keys left in the
// changelog would pile up.
func toyScript(partitions int) Script {
	var steps []Step
	for i := range 64 {
		at := toyStart.Add(time.Duration(i+1) * 20 * time.Second)
		if i%5 == 4 {
			steps = append(steps, Step{At: at, Tick: true})
			continue
		}
		var batch []*engine.Record
		for j := range 1 + i%3 {
			n := i*3 + j
			r := &engine.Record{Value: map[string]any{"key": fmt.Sprintf("k%d", i/8*3+(n*n)%3)},
				Source: engine.Source{Topic: "in", Partition: int32(n % partitions), Offset: int64(n)}}
			if n%11 == 0 {
				delete(r.Value, "key")
			}
			batch = append(batch, r)
		}
		steps = append(steps, Step{At: at, Batch: batch})
	}
	return Script{Start: toyStart, Steps: steps, MaxEntries: 6 * partitions}
}

// recorder is a testing.TB that keeps what the checks report. Only the methods the suite
// calls are implemented; any other call panics on the nil embedded TB.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	panic(r)
}

// failures runs every check of the suite against setup and returns, by check name, what
// each reported.
func failures(setup StatefulSetup, script Script) map[string][]string {
	out := map[string][]string{}
	for _, c := range statefulChecks(setup, script) {
		r := &recorder{}
		func() {
			defer func() {
				if p := recover(); p != nil && p != r {
					r.errors = append(r.errors, fmt.Sprint("panic: ", p))
				}
			}()
			c.run(r)
		}()
		if len(r.errors) > 0 {
			out[c.name] = r.errors
		}
	}
	return out
}

func TestStatefulOnACorrectProcessor(t *testing.T) {
	TestStateful(t, func(_ testing.TB, clock engine.Clock) StatefulProcessor {
		return newCounter(clock, faults{})
	}, toyScript(3))
}

// TestStatefulCatchesBrokenProcessors: each mistake makes the check meant for it fail.
func TestStatefulCatchesBrokenProcessors(t *testing.T) {
	tests := []struct {
		name   string
		faults faults
		script Script
		check  string // the check that must fail
		says   string // part of what it must say
	}{
		{"a count change is not reported", faults{forgetsIncrement: true}, toyScript(3),
			"restored at every boundary it goes on as if never stopped", "where the processor that never stopped gave"},
		{"Drop forgets every partition", faults{dropsAll: true}, toyScript(3),
			"Drop forgets exactly its partition and Restore brings it back", "Drop(0) after step 21"},
		{"Drop reports the partition's entries deleted", faults{deletesOnDrop: true}, toyScript(3),
			"Drop forgets exactly its partition and Restore brings it back", "Changes then reported"},
		{"a forgotten key is not reported deleted", faults{keepsDeleted: true}, toyScript(3),
			"the changelog holds the live state only", "is not the processor's state (Export): 0/k0 is there but should not be"},
		{"without Export: a forgotten key is not reported deleted", faults{keepsDeleted: true, hideExport: true}, toyScript(3),
			"the changelog holds the live state only", "more than the 18 the live state needs"},
		{"Changes reports the same change again", faults{repeatsChanges: true}, toyScript(3),
			"Changes reports each change once", "a second Changes with nothing processed reported"},
		{"Restore marks what it restored as changed", faults{dirtyOnRestore: true}, toyScript(3),
			"restored at every boundary it goes on as if never stopped", "Changes right after Restore reported"},
		{"Restore panics on a short entry", faults{panicsOnShort: true}, toyScript(3),
			"Restore rejects truncated and garbled entries", "panicked"},
		{"Restore takes a short entry for an empty one", faults{acceptsShort: true}, toyScript(3),
			"Restore rejects truncated and garbled entries", "accepted entry"},
		{"a script on one partition cannot test Drop", faults{}, toyScript(1),
			"the script exercises the state", "Drop needs at least two"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := failures(func(_ testing.TB, clock engine.Clock) StatefulProcessor {
				c := newCounter(clock, tt.faults)
				if tt.faults.hideExport {
					return withoutExport{c}
				}
				return c
			}, tt.script)
			errs, failed := got[tt.check]
			if !failed {
				t.Fatalf("check %q passed; the failures were %q", tt.check, got)
			}
			if !strings.Contains(strings.Join(errs, "\n"), tt.says) {
				t.Errorf("check %q failed with %q, want it to say %q", tt.check, errs, tt.says)
			}
		})
	}
}
