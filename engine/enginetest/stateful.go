package enginetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine"
)

// StatefulProcessor is what TestStateful drives: a processor that keeps state
// (engine.Stateful). If it is also an engine.Ticker, a script may tick it; if it has an
// Export method (hot reload's full dump, engine/runtime), the suite checks the changelog
// against it.
type StatefulProcessor interface {
	engine.Processor
	engine.Stateful
}

// StatefulSetup returns a fresh instance of the processor under test, built with clock as
// its engine clock. Every instance of one TestStateful call must have the same config.
type StatefulSetup func(t testing.TB, clock engine.Clock) StatefulProcessor

// Step is one call of a script: Process(Batch), or Tick(At) when Tick is set. The clock
// reads At during the step; a zero At leaves it where the step before left it.
type Step struct {
	At    time.Time
	Batch []*engine.Record
	Tick  bool
}

// Script is the input TestStateful runs: batches of records (each with its input
// partition in Source.Partition) and ticks. It must use at least two partitions, make
// output and delete at least one state entry (unless KeepsAll), or the suite says it tests
// too little.
// Records are copied before every run, so a processor may change what it is given.
type Script struct {
	// Start is where the clock stands before the first step.
	Start time.Time
	Steps []Step
	// MaxEntries bounds the compacted changelog at every batch boundary: the most entries
	// the state the script keeps live can need (series, open windows, buffered records,
	// per-partition entries). A processor that leaves deleted state in its changelog grows
	// past it over a long script. Zero means no bound is checked.
	MaxEntries int
	// KeepsAll says the script deletes no state on purpose (a heartbeat rule, say, watches
	// every series it has seen): the suite then does not require a deletion.
	KeepsAll bool
}

// TestStateful runs the checkpoint conformance checks of a stateful processor as subtests:
//
//   - restored into a fresh instance at every batch boundary, the processor goes on with
//     exactly the output, rejects and changelog of one that never stopped;
//   - Changes reports every change once: a second call reports nothing, nor does the call
//     right after Restore (the runtime discards that one);
//   - Drop forgets exactly its partition, and restoring that partition brings it back;
//   - deleted entries are reported as nil values, and the changelog holds the live state
//     only: it equals Export and stays within Script.MaxEntries;
//   - truncated or garbled entries make Restore fail with an error naming the entry,
//     never panic.
func TestStateful(t *testing.T, setup StatefulSetup, script Script) {
	for _, c := range statefulChecks(setup, script) {
		t.Run(c.name, func(t *testing.T) { c.run(t) })
	}
}

// check is one subtest of TestStateful; statefulChecks returns them separately so that
// the suite's own test can run each against a broken processor and see it fail.
type check struct {
	name string
	run  func(t testing.TB)
}

func statefulChecks(setup StatefulSetup, script Script) []check {
	s := &suite{setup: setup, script: script}
	return []check{
		{"the script exercises the state", s.checkScript},
		{"Changes reports each change once", s.checkChangesOnce},
		{"restored at every boundary it goes on as if never stopped", s.checkRestoreEverywhere},
		{"Drop forgets exactly its partition and Restore brings it back", s.checkDrop},
		{"the changelog holds the live state only", s.checkLiveState},
		{"Restore rejects truncated and garbled entries", s.checkGarbled},
	}
}

type suite struct {
	setup  StatefulSetup
	script Script
}

// stepClock is the engine clock the suite moves from step to step.
type stepClock struct{ now time.Time }

func (c *stepClock) Now() time.Time { return c.now }

// instance is one processor under test with its clock and what the runtime would keep of
// its changes.
type instance struct {
	p     StatefulProcessor
	clock *stepClock
	log   Changelog
}

func (s *suite) fresh(t testing.TB, now time.Time, log Changelog) *instance {
	clock := &stepClock{now: now}
	return &instance{p: s.setup(t, clock), clock: clock, log: log}
}

// step makes st (without the records of partition skip, if skip >= 0) with the clock at
// st.At.
func (in *instance) step(st Step, skip int32) ([]*engine.Record, *engine.Rejects, error) {
	if !st.At.IsZero() {
		in.clock.now = st.At
	}
	rejects := &engine.Rejects{}
	if !st.Tick {
		out, err := in.p.Process(context.Background(), copyBatch(st.Batch, skip), rejects)
		return out, rejects, err
	}
	tk, ok := in.p.(engine.Ticker)
	if !ok {
		return nil, nil, fmt.Errorf("the script ticks a processor that is not an engine.Ticker")
	}
	out, err := tk.Tick(context.Background(), in.clock.now, rejects)
	return out, rejects, err
}

// run makes st, collects its changes into the instance's changelog and returns its
// transcript.
func (in *instance) run(st Step) (string, error) {
	out, rejects, err := in.step(st, -1)
	if err != nil {
		return "", err
	}
	in.log.collectCopies(in.p)
	return transcript(out, rejects), nil
}

// straight is the script run once through, without stopping: the transcript of every
// step and a copy of the compacted changelog at every boundary (logs[k] is the state after
// k steps).
type straight struct {
	transcripts []string
	logs        []Changelog
	out         int
	partitions  []int32
}

func (s *suite) runStraight(t testing.TB) (*straight, bool) {
	t.Helper()
	in := s.fresh(t, s.script.Start, Changelog{})
	res := &straight{logs: []Changelog{{}}}
	seen := map[int32]bool{}
	for i, st := range s.script.Steps {
		for _, r := range st.Batch {
			seen[r.Source.Partition] = true
		}
		tr, err := in.run(st)
		if err != nil {
			t.Errorf("step %d: %v", i, err)
			return nil, false
		}
		res.transcripts = append(res.transcripts, tr)
		res.out += strings.Count(tr, "\n")
		res.logs = append(res.logs, in.log.clone())
	}
	res.partitions = slices.Sorted(maps.Keys(seen))
	return res, true
}

func (s *suite) checkScript(t testing.TB) {
	ref, ok := s.runStraight(t)
	if !ok {
		return
	}
	if len(ref.partitions) < 2 {
		t.Errorf("the script uses partitions %v; Drop needs at least two to tell one from the others", ref.partitions)
	}
	if ref.out == 0 {
		t.Errorf("the script made no output and no rejects: comparing outputs tests nothing")
	}
	puts, dels := countChanges(s, t)
	if puts == 0 || dels == 0 && !s.script.KeepsAll {
		t.Errorf("over the script Changes reported %d entries and %d deletions; the script must make and delete state", puts, dels)
	}
	again, ok := s.runStraight(t)
	if !ok {
		return
	}
	if i := firstDiff(ref.transcripts, again.transcripts); i >= 0 {
		t.Errorf("two fresh instances given the same script differ at step %d:\n%s\nand\n%s", i, ref.transcripts[i], again.transcripts[i])
	}
}

// countChanges runs the script and counts what Changes reports.
func countChanges(s *suite, t testing.TB) (puts, dels int) {
	in := s.fresh(t, s.script.Start, nil)
	for _, st := range s.script.Steps {
		runOnly(in, st)
		in.p.Changes(func(_ int32, _ string, v []byte) {
			if v == nil {
				dels++
			} else {
				puts++
			}
		})
	}
	return puts, dels
}

// runOnly makes st without collecting its changes; runStraight reports errors.
func runOnly(in *instance, st Step) {
	_, _, _ = in.step(st, -1)
}

// checkChangesOnce: every key at most once per call, no empty non-nil values, and a second
// call with nothing processed in between reports nothing.
func (s *suite) checkChangesOnce(t testing.TB) {
	in := s.fresh(t, s.script.Start, nil)
	for i, st := range s.script.Steps {
		runOnly(in, st)
		seen := map[string]bool{}
		bad := ""
		in.p.Changes(func(part int32, key string, v []byte) {
			k := fmt.Sprint(part, "/", key)
			switch {
			case seen[k]:
				bad = fmt.Sprintf("reported %s twice in one call", k)
			case v != nil && len(v) == 0:
				bad = fmt.Sprintf("reported %s with an empty value, which is no deletion (a deletion is nil) and no state", k)
			}
			seen[k] = true
		})
		if bad != "" {
			t.Errorf("after step %d, Changes %s", i, bad)
			return
		}
		if again := report(in.p); len(again) > 0 {
			t.Errorf("after step %d, a second Changes with nothing processed reported %s: every change must be reported once", i, sample(again))
			return
		}
	}
}

// checkRestoreEverywhere stops after every step k, restores the changelog into a fresh
// instance (every partition of the script, as the runtime does on assignment) and runs the
// rest: every later step's transcript and changelog equal those of the straight run.
func (s *suite) checkRestoreEverywhere(t testing.TB) {
	ref, ok := s.runStraight(t)
	if !ok {
		return
	}
	for k := 0; k <= len(s.script.Steps); k++ {
		in, ok := s.restored(t, ref, k)
		if !ok {
			return
		}
		for i := k; i < len(s.script.Steps); i++ {
			tr, err := in.run(s.script.Steps[i])
			if err != nil {
				t.Errorf("restored after step %d: step %d: %v", k, i, err)
				return
			}
			if tr != ref.transcripts[i] {
				t.Errorf("restored after step %d, step %d gives\n%s\nwhere the processor that never stopped gave\n%s", k, i, tr, ref.transcripts[i])
				return
			}
			if d := diffLogs(in.log, ref.logs[i+1]); d != "" {
				t.Errorf("restored after step %d, the changelog after step %d differs from the one of the processor that never stopped: %s", k, i, d)
				return
			}
		}
	}
}

// restored is a fresh instance restored from the straight run's changelog after k steps,
// its post-restore Changes discarded as the runtime does, after checking it is empty.
func (s *suite) restored(t testing.TB, ref *straight, k int) (*instance, bool) {
	in := s.fresh(t, s.clockAfter(k), ref.logs[k].clone())
	for _, part := range ref.partitions {
		if err := in.p.Restore(part, cloneEntries(ref.logs[k][part])); err != nil {
			t.Errorf("after step %d: Restore(%d) of the processor's own changelog: %v", k, part, err)
			return nil, false
		}
	}
	if got := report(in.p); len(got) > 0 {
		t.Errorf("after step %d: Changes right after Restore reported %s; the runtime discards that report as what was just restored, so an entry in it is either written again for nothing or, if it differs, lost", k, sample(got))
		return nil, false
	}
	return in, true
}

// clockAfter is the clock reading after k steps: a restored instance starts where the
// stopped one was.
func (s *suite) clockAfter(k int) time.Time {
	now := s.script.Start
	for _, st := range s.script.Steps[:k] {
		if !st.At.IsZero() {
			now = st.At
		}
	}
	return now
}

// checkDrop drops each partition at a third and at two thirds of the script. The others
// go on as if it had never existed (their output and changelog are the straight run's),
// nothing of it is reported again, and restoring it from the changelog as it was at the
// drop (the partition moved away and back) makes the rest of the script the straight run's.
func (s *suite) checkDrop(t testing.TB) {
	ref, ok := s.runStraight(t)
	if !ok {
		return
	}
	n := len(s.script.Steps)
	for _, k := range slices.Compact([]int{n / 3, 2 * n / 3}) {
		for _, part := range ref.partitions {
			if !s.dropOne(t, ref, k, part) || !s.dropAndRestore(t, ref, k, part) {
				return
			}
		}
	}
}

// upTo is a fresh instance that ran the first k steps.
func (s *suite) upTo(t testing.TB, k int) (*instance, bool) {
	in := s.fresh(t, s.script.Start, Changelog{})
	for i, st := range s.script.Steps[:k] {
		if _, err := in.run(st); err != nil {
			t.Errorf("step %d: %v", i, err)
			return nil, false
		}
	}
	return in, true
}

func (s *suite) dropOne(t testing.TB, ref *straight, k int, part int32) bool {
	in, ok := s.upTo(t, k)
	if !ok {
		return false
	}
	in.p.Drop(part)
	if got := report(in.p); len(got) > 0 {
		t.Errorf("Drop(%d) after step %d: Changes then reported %s; the partition belongs to another instance now", part, k, sample(got))
		return false
	}
	if ex, ok := in.p.(engine.StateExporter); ok {
		if got := collectAll(ex); len(got[part]) > 0 {
			t.Errorf("Drop(%d) after step %d: Export still has %d of its entries", part, k, len(got[part]))
			return false
		}
	}
	delete(in.log, part)
	for i := k; i < len(s.script.Steps); i++ {
		out, rejects, err := in.step(s.script.Steps[i], part)
		if err != nil {
			t.Errorf("Drop(%d) after step %d: step %d: %v", part, k, i, err)
			return false
		}
		if got, want := transcript(out, rejects), filterTranscript(ref, i, part); got != want {
			t.Errorf("Drop(%d) after step %d: step %d of the other partitions gives\n%s\nwhere, with partition %d kept, they gave\n%s", part, k, i, got, part, want)
			return false
		}
		var leaked []string
		in.p.Changes(func(p int32, key string, v []byte) {
			if p == part {
				leaked = append(leaked, key)
			}
			in.log.put(p, key, v)
		})
		if len(leaked) > 0 {
			t.Errorf("Drop(%d) after step %d: step %d reported entries %q of the dropped partition", part, k, i, leaked)
			return false
		}
		want := ref.logs[i+1].clone()
		delete(want, part)
		if d := diffLogs(in.log, want); d != "" {
			t.Errorf("Drop(%d) after step %d: after step %d the other partitions' changelog differs from the straight run's: %s", part, k, i, d)
			return false
		}
	}
	return true
}

// filterTranscript is the straight run's transcript of step i without the lines of
// partition part.
func filterTranscript(ref *straight, i int, part int32) string {
	var b strings.Builder
	tag := " p" + strconv.Itoa(int(part)) + " "
	for _, line := range strings.SplitAfter(ref.transcripts[i], "\n") {
		kind, _, _ := strings.Cut(line, " ")
		if line != "" && !strings.HasPrefix(line, kind+tag) {
			b.WriteString(line)
		}
	}
	return b.String()
}

func (s *suite) dropAndRestore(t testing.TB, ref *straight, k int, part int32) bool {
	in, ok := s.upTo(t, k)
	if !ok {
		return false
	}
	in.p.Drop(part)
	if err := in.p.Restore(part, cloneEntries(ref.logs[k][part])); err != nil {
		t.Errorf("Drop(%d) after step %d, then Restore of its changelog: %v", part, k, err)
		return false
	}
	report(in.p) // what the runtime does after Restore; checked elsewhere
	for i := k; i < len(s.script.Steps); i++ {
		tr, err := in.run(s.script.Steps[i])
		if err != nil {
			t.Errorf("Drop(%d) and Restore after step %d: step %d: %v", part, k, i, err)
			return false
		}
		if tr != ref.transcripts[i] {
			t.Errorf("Drop(%d) and Restore after step %d: step %d gives\n%s\nwhere the processor that kept it gave\n%s", part, k, i, tr, ref.transcripts[i])
			return false
		}
	}
	return true
}

// checkLiveState: at every boundary of the straight run the changelog holds no more than
// Script.MaxEntries entries and, if the processor can Export, exactly what it exports.
func (s *suite) checkLiveState(t testing.TB) {
	in := s.fresh(t, s.script.Start, Changelog{})
	ex, canExport := in.p.(engine.StateExporter)
	most := 0
	for i, st := range s.script.Steps {
		if _, err := in.run(st); err != nil {
			t.Errorf("step %d: %v", i, err)
			return
		}
		n := in.log.entries()
		most = max(most, n)
		if s.script.MaxEntries > 0 && n > s.script.MaxEntries {
			t.Errorf("after step %d the compacted changelog holds %d entries, more than the %d the live state needs: deleted state is not reported as deleted", i, n, s.script.MaxEntries)
			return
		}
		if canExport {
			if d := diffLogs(in.log, collectAll(ex)); d != "" {
				t.Errorf("after step %d the changelog is not the processor's state (Export): %s", i, d)
				return
			}
		}
	}
	if s.script.MaxEntries > 0 && most*4 < s.script.MaxEntries {
		t.Errorf("the changelog held at most %d entries; a MaxEntries of %d is too loose to catch growth", most, s.script.MaxEntries)
	}
}

// checkGarbled restores the straight run's final changelog (the boundary with the most
// entries, if that is earlier) with one entry spoilt at a time. A truncated entry must
// make Restore fail with an error that names it; random bytes must not make it panic.
func (s *suite) checkGarbled(t testing.TB) {
	ref, ok := s.runStraight(t)
	if !ok {
		return
	}
	log := ref.logs[0]
	for _, l := range ref.logs {
		if l.entries() > log.entries() {
			log = l
		}
	}
	for _, part := range slices.Sorted(maps.Keys(log)) {
		for _, key := range slices.Sorted(maps.Keys(log[part])) {
			v := log[part][key]
			if !s.restoreSpoilt(t, log, part, key, bytes.Clone(v[:len(v)/2]), true) ||
				!s.restoreSpoilt(t, log, part, key, garbage(len(v)), false) {
				return
			}
		}
	}
}

// garbage is n bytes that are neither JSON nor a plausible binary encoding.
func garbage(n int) []byte {
	b := make([]byte, max(n, 3))
	for i := range b {
		b[i] = byte(0xff - i%7)
	}
	return b
}

func (s *suite) restoreSpoilt(t testing.TB, log Changelog, part int32, key string, spoilt []byte, mustFail bool) (ok bool) {
	entries := cloneEntries(log[part])
	entries[key] = spoilt
	in := s.fresh(t, s.script.Start, nil)
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("Restore(%d) with entry %q spoilt (%x) panicked: %v", part, key, spoilt, r)
			ok = false
		}
	}()
	err := in.p.Restore(part, entries)
	switch {
	case err == nil && mustFail:
		t.Errorf("Restore(%d) accepted entry %q truncated to %d bytes: state would be lost without a word", part, key, len(spoilt))
		return false
	case err != nil && !namesEntry(err.Error(), key):
		t.Errorf("Restore(%d) with entry %q spoilt fails with %q, which does not say which entry", part, key, err)
		return false
	}
	return true
}

// namesEntry reports whether msg names the changelog entry key: the key itself (quoted or
// not), or, for a processor that keeps another's entries under a prefix ("t/meta"), the
// prefix and the rest.
func namesEntry(msg, key string) bool {
	if strings.Contains(msg, key) || strings.Contains(msg, strconv.Quote(key)) {
		return true
	}
	prefix, rest, ok := strings.Cut(key, "/")
	return ok && prefix != "" && rest != "" && strings.Contains(msg, prefix+"/") && strings.Contains(msg, rest)
}

// transcript writes what a step handed to the next stage, every field of it: records
// (value as JSON with sorted keys, key, headers, source, timestamp) and rejects (source,
// stage, late, topic, reason). Each line names the record's partition as " p<n> ".
func transcript(out []*engine.Record, rejects *engine.Rejects) string {
	var b strings.Builder
	for _, r := range out {
		fmt.Fprintf(&b, "out p%d %s key=%q headers=%s %s@%d ts=%s\n", r.Source.Partition, encodeValue(r.Value), r.Key,
			encodeHeaders(r.Headers), r.Source.Topic, r.Source.Offset, r.Timestamp.Format(time.RFC3339Nano))
	}
	for _, it := range rejects.Items {
		src := it.Record.Source
		fmt.Fprintf(&b, "reject p%d %s@%d stage=%s late=%v topic=%q: %v\n", src.Partition, src.Topic, src.Offset, it.Stage, it.Late, it.Topic, it.Err)
	}
	return b.String()
}

func encodeValue(v map[string]any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(b)
}

func encodeHeaders(hs []engine.Header) string {
	var parts []string
	for _, h := range hs {
		parts = append(parts, fmt.Sprintf("%s=%q", h.Key, h.Value))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// report is what Changes reports now, as "partition/key" (deletions marked).
func report(p engine.Stateful) []string {
	var got []string
	p.Changes(func(part int32, key string, v []byte) {
		if v == nil {
			got = append(got, fmt.Sprintf("%d/%s (deleted)", part, key))
		} else {
			got = append(got, fmt.Sprintf("%d/%s", part, key))
		}
	})
	return got
}

func sample(keys []string) string {
	if len(keys) > 3 {
		return fmt.Sprintf("%d entries, among them %q", len(keys), keys[:3])
	}
	return fmt.Sprintf("%q", keys)
}

func collectAll(ex engine.StateExporter) Changelog {
	log := Changelog{}
	ex.Export(func(part int32, key string, v []byte) { log.put(part, key, bytes.Clone(v)) })
	return log
}

// collectCopies is Collect with the values copied: the runtime writes a value before the
// next batch, so a processor may reuse its buffer afterwards.
func (c Changelog) collectCopies(s engine.Stateful) {
	s.Changes(func(part int32, key string, v []byte) { c.put(part, key, bytes.Clone(v)) })
}

func (c Changelog) put(part int32, key string, v []byte) {
	if c[part] == nil {
		c[part] = map[string][]byte{}
	}
	if v == nil {
		delete(c[part], key)
	} else {
		c[part][key] = v
	}
}

func (c Changelog) clone() Changelog {
	out := make(Changelog, len(c))
	for part, entries := range c {
		out[part] = maps.Clone(entries)
	}
	return out
}

func (c Changelog) entries() int {
	n := 0
	for _, e := range c {
		n += len(e)
	}
	return n
}

func cloneEntries(entries map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(entries))
	for k, v := range entries {
		out[k] = bytes.Clone(v)
	}
	return out
}

// diffLogs says how got differs from want ("" if not), naming a few keys.
func diffLogs(got, want Changelog) string {
	var diffs []string
	for _, part := range slices.Sorted(maps.Keys(joinKeys(got, want))) {
		for _, key := range slices.Sorted(maps.Keys(joinKeys(got[part], want[part]))) {
			g, inGot := got[part][key]
			w, inWant := want[part][key]
			switch {
			case !inWant:
				diffs = append(diffs, fmt.Sprintf("%d/%s is there but should not be", part, key))
			case !inGot:
				diffs = append(diffs, fmt.Sprintf("%d/%s is missing", part, key))
			case !bytes.Equal(g, w):
				diffs = append(diffs, fmt.Sprintf("%d/%s holds %q, want %q", part, key, g, w))
			}
		}
	}
	if len(diffs) > 3 {
		diffs = append(diffs[:3], fmt.Sprintf("and %d more", len(diffs)-3))
	}
	return strings.Join(diffs, "; ")
}

func joinKeys[K comparable, V any](a, b map[K]V) map[K]bool {
	out := map[K]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// copyBatch deep-copies batch without the records of partition skip (skip < 0 keeps all).
func copyBatch(batch []*engine.Record, skip int32) []*engine.Record {
	out := make([]*engine.Record, 0, len(batch))
	for _, r := range batch {
		if r.Source.Partition == skip {
			continue
		}
		c := *r
		c.Value = copyValue(r.Value).(map[string]any)
		c.Raw, c.Key = bytes.Clone(r.Raw), bytes.Clone(r.Key)
		c.Headers = slices.Clone(r.Headers)
		out = append(out, &c)
	}
	return out
}

func copyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = copyValue(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = copyValue(e)
		}
		return s
	}
	return v
}
