package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/postgres/pgtest"
	"github.com/eventops/eventops-engine/engine/reload"
	"github.com/eventops/eventops-engine/engine/runtime"
	"github.com/eventops/eventops-engine/engine/runtime/runtimetest"
)

// reloadRules are the versions of the rules stream the test goes through. Every rule labels
// its alerts with the version (v) and the reading that triggered them (n), so the alert
// history says which version evaluated which reading.
var reloadRules = map[int][]reloadRule{
	1: {{"hot", 90, 0}},
	2: {{"hot", 95, 0}},                   // a threshold edit
	3: {{"hot", 95, 0}, {"warm", 80, 95}}, // a new rule
	4: {{"hot", 95, 0}},                   // the new rule removed
	5: {{"hot", 97, 0}},                   // a threshold edit, saved editor-style
}

// reloadRule holds for readings in [min, below) (below 0: no upper bound).
type reloadRule struct {
	name       string
	min, below float64
}

func (r reloadRule) holds(v float64) bool { return v >= r.min && (r.below == 0 || v < r.below) }

// reloadPipelineText is the test's pipeline with the rules of version v; broken misspells a
// field in the warm rule, copier adds a stream.
func reloadPipelineText(dataDir, dsn string, v int, broken, copier bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `version: 1
broker:
  embedded: {listen: "127.0.0.1:0", data_dir: %q}
topics:
  in:     {partitions: 2, ingest: true}
  out:    {partitions: 2}
  alerts: {partitions: 2}
  copy:   {partitions: 1}
  dlq:    {}
dead_letter: dlq
lookups:
  cmdb: {file: cmdb.csv, key: host}
streams:
  - name: normalize
    input: {topic: in, batch_size: 50}
    processors:
      - map:
          event_id: record_id()
          ts_event: ts
          tenant_id: '"acme"'
          source: {type: '"host"', source_id: host}
          host: host
          metric: '"cpu_load"'
          value: float(value)
          n: n
      - enrich: {lookup: cmdb, key: host, into: tags}
    output: {topic: out, key: host}
  - name: rules
    input: {topic: out, batch_size: 50}
    processors:
      - threshold:
          series: [source.source_id]
          rules:
`, dataDir)
	for _, r := range reloadRules[v] {
		when := fmt.Sprintf("value >= %g", r.min)
		if r.below > 0 {
			when += fmt.Sprintf(" && value < %g", r.below)
			if broken {
				when = strings.Replace(when, "value >=", "valeu >=", 1)
			}
		}
		fmt.Fprintf(&b, "            - {name: %s, when: '%s', severity: critical, labels: {v: '\"%d\"', n: 'n'}}\n", r.name, when, v)
	}
	b.WriteString("    output: {topic: alerts}\n")
	if copier {
		b.WriteString("  - name: copier\n    input: {topic: in}\n    output: {topic: copy}\n")
	}
	fmt.Fprintf(&b, `sinks:
  - {from: out,    postgres: {dsn: %q, table: metrics}}
  - {from: alerts, postgres: {dsn: %q, table: alerts}}
`, dsn, dsn)
	return b.String()
}

// reloadValues are the readings of a host, in a cycle: they cross every version's thresholds,
// so each version shows in the alerts every few readings.
var reloadValues = []float64{99, 50, 92, 85, 96, 10, 98, 88, 60, 93, 70, 97}

// While a producer sends events at a steady pace, the pipeline file and its lookup file are
// edited, and the engine's watcher reloads them: a threshold edit, a new rule, a broken edit,
// a lookup file edit, a removed rule, a new stream, and a threshold edit saved the way editors
// do (written aside, renamed over the file). Each edit happens while events are in flight.
// Afterwards:
//   - every edit but the broken one was applied; the broken one was rejected at its line and
//     column, with the old pipeline running on;
//   - the PostgreSQL metrics table and the normalized topic hold every event exactly once;
//   - the alerts table is exactly what the rule versions imply: for each host, the readings
//     in order, each evaluated by one version, versions only moving forward, state carried
//     over by rule name, and the removed rule's firing alerts resolved with reason
//     "rule removed";
//   - events enriched after the lookup edit carry the new tags, those before the old ones.
func TestReloadsLoseAndDuplicateNothing(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "pipeline.yaml")
	cmdb := filepath.Join(dir, "cmdb.csv")
	dataDir := filepath.Join(dir, "broker")
	writeFile := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(cmdb, "host,site\nh0,fra1\n")
	running, stop, _ := runFile(t, file, reloadPipelineText(dataDir, dsn, 1, false, false), runtime.RunOptions{Watch: true, WatchDebounce: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	brokers := running.Broker.Addrs()
	producer, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	send := func(n int, host string, value float64) error {
		rec := &kgo.Record{Topic: "in", Key: []byte(host),
			Value: fmt.Appendf(nil, `{"host":%q,"value":%g,"n":%d,"ts":%q}`, host, value, n, base.Add(time.Duration(n)*time.Second).Format(time.RFC3339))}
		return producer.ProduceSync(ctx, rec).FirstErr()
	}

	// The producer: n events, two per millisecond, over four hosts. It may run at most 200
	// events past the edit under way, so that every edit happens while events flow.
	const n, editEvery = 4000, 400
	var sent, allowed atomic.Int64
	allowed.Store(editEvery + 200)
	var produced sync.WaitGroup
	produced.Add(1)
	go func() {
		defer produced.Done()
		for i := range n {
			for int64(i) >= allowed.Load() && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			host := i % 4
			if err := send(i, fmt.Sprintf("h%d", host), reloadValues[(i/4+3*host)%len(reloadValues)]); err != nil {
				t.Error(err)
				return
			}
			sent.Add(1)
			if i%2 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	waitUntil := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	edits := 0
	// edit waits until the producer is at the edit's turn, writes the change and waits
	// until the watcher's reload of it has the result wanted.
	edit := func(what, want string, write func()) reload.Status {
		t.Helper()
		edits++
		if want != reload.Unchanged {
			waitUntil("the producer", func() bool { return sent.Load() >= int64(edits*editEvery) })
		}
		before := running.ReloadStatus()
		write()
		var st reload.Status
		waitUntil(what+" to be reloaded", func() bool {
			st = running.ReloadStatus()
			return st.Attempts > before.Attempts && st.Result != ""
		})
		if st.Result != want {
			t.Fatalf("%s: reload %s (%v), want %s", what, st.Result, st.Errors, want)
		}
		allowed.Store(int64((edits+1)*editEvery + 200))
		return st
	}
	pipeline := func(v int, broken, copier bool) func() {
		return func() { writeFile(file, reloadPipelineText(dataDir, dsn, v, broken, copier)) }
	}
	pg, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(context.Background())
	count := func(query string, args ...any) int {
		var c int
		if err := pg.QueryRow(ctx, query, args...).Scan(&c); err != nil && !strings.Contains(err.Error(), "does not exist") {
			t.Fatal(err)
		}
		return c
	}

	edit("threshold edit", reload.Applied, pipeline(2, false, false))
	edit("new rule", reload.Applied, pipeline(3, false, false))
	// A host that stays in the new rule's band: its alert is firing when the rule is removed.
	const pinned = n + 1000
	if err := send(pinned, "pin", 85); err != nil {
		t.Fatal(err)
	}
	waitUntil("the pinned host's warm alert", func() bool {
		return count(`select count(*) from alerts where source_id = 'pin' and rule = 'warm' and state = 'firing'`) == 1
	})
	st := edit("broken edit", reload.Rejected, pipeline(3, true, false))
	brokenText := reloadPipelineText(dataDir, dsn, 3, true, false)
	at := strings.Index(brokenText, "valeu")
	line := strings.Count(brokenText[:at], "\n") + 1
	col := at - strings.LastIndex(brokenText[:at], "\n")
	if len(st.Errors) == 0 || st.Errors[0].File != file || st.Errors[0].Line != line || st.Errors[0].Col != col {
		t.Fatalf("broken edit reported at %+v, want %s:%d:%d (the v of valeu)", st.Errors, file, line, col)
	}
	edit("the broken edit undone", reload.Unchanged, pipeline(3, false, false))
	edit("lookup edit", reload.Applied, func() { writeFile(cmdb, "host,site\nh0,fra1\nh1,ams2\n") })
	edit("removed rule", reload.Applied, pipeline(4, false, false))
	edit("new stream", reload.Applied, pipeline(4, false, true))
	edit("editor-style save", reload.Applied, func() {
		writeFile(file+".swp", reloadPipelineText(dataDir, dsn, 5, false, true))
		if err := os.Rename(file+".swp", file); err != nil {
			t.Fatal(err)
		}
	})
	allowed.Store(n)
	produced.Wait()
	// Last, a reading per host that fires under the last version and one that resolves it:
	// once their alerts are in, every reading before them has been evaluated.
	var last []int
	for i, host := range []string{"h0", "h1", "h2", "h3", "pin"} {
		for j, v := range []float64{99, 10} {
			k := pinned + 1 + 2*i + j
			if err := send(k, host, v); err != nil {
				t.Fatal(err)
			}
			last = append(last, k)
		}
	}
	total := n + 1 + len(last)
	waitUntil("the last readings' alerts", func() bool {
		return count(`select count(*) from alerts where (labels->>'n')::int = any($1) and state = 'resolved'`, last) == 5
	})
	waitUntil("every reading in the metrics table", func() bool { return count(`select count(*) from metrics`) >= total })

	// The metrics table and the normalized topic: every event exactly once.
	if got, distinct := count(`select count(*) from metrics`), count(`select count(distinct ts) from metrics`); got != total || distinct != total {
		t.Fatalf("metrics holds %d rows of %d distinct events; want each of the %d events once", got, distinct, total)
	}
	if seen := topicCounts(t, ctx, brokers, "out", func(m map[int]int) bool { return len(m) >= total }); len(seen) != total || countAbove(seen, 1) > 0 {
		t.Fatalf("topic out holds %d distinct events (%d more than once), want each of %d once", len(seen), countAbove(seen, 1), total)
	}
	copied := topicCounts(t, ctx, brokers, "copy", func(m map[int]int) bool {
		return !slices.ContainsFunc(last, func(k int) bool { return m[k] == 0 })
	})
	for _, k := range last {
		if copied[k] != 1 {
			t.Fatalf("the new stream copied reading %d %d times, want once (it runs from its start)", k, copied[k])
		}
	}
	if c := countAbove(copied, 1); c > 0 {
		t.Fatalf("the new stream copied %d readings more than once", c)
	}

	// The lookup edit: h1's readings enriched before it have no site, after it site ams2.
	rows, err := pg.Query(ctx, `select coalesce(tags->>'site', '') from metrics where source_id = 'h1' order by ts`)
	if err != nil {
		t.Fatal(err)
	}
	sites, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	firstNew := slices.Index(sites, "ams2")
	if firstNew <= 0 || slices.ContainsFunc(sites[firstNew:], func(s string) bool { return s != "ams2" }) {
		t.Fatalf("h1's sites in time order %v: want none, then ams2 from the lookup edit on", compact(sites))
	}

	checkAlertHistory(t, ctx, pg)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// checkAlertHistory replays each host's readings through the rule versions and compares
// with the alerts table. A reading that raised alerts names its version (label v); one that
// raised none was evaluated by some version between the versions named before and after it,
// and must be one that raises nothing from the host's state.
func checkAlertHistory(t *testing.T, ctx context.Context, pg *pgx.Conn) {
	t.Helper()
	type alert struct{ rule, state, reason, key string }
	type reading struct {
		n      int
		value  float64
		alerts []alert
		v      int // the version its alerts name, 0 if none
	}
	rows, err := pg.Query(ctx, `select source_id, (extract(epoch from ts - '2026-01-01T00:00:00Z'))::int, value from metrics order by ts`)
	if err != nil {
		t.Fatal(err)
	}
	byHost := map[string][]*reading{}
	byN := map[int]*reading{}
	for rows.Next() {
		var host string
		r := &reading{}
		if err := rows.Scan(&host, &r.n, &r.value); err != nil {
			t.Fatal(err)
		}
		byHost[host] = append(byHost[host], r)
		byN[r.n] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows, err = pg.Query(ctx, `select source_id, rule, state, coalesce(reason, ''), fingerprint, labels::text from alerts`)
	if err != nil {
		t.Fatal(err)
	}
	removed := map[string][]alert{}
	fingerprints := map[string]string{} // host/rule -> fingerprint
	versions := map[int]bool{}
	for rows.Next() {
		var host, labels string
		var a alert
		if err := rows.Scan(&host, &a.rule, &a.state, &a.reason, &a.key, &labels); err != nil {
			t.Fatal(err)
		}
		if fp, ok := fingerprints[host+"/"+a.rule]; ok && fp != a.key {
			t.Errorf("%s's %s alerts have fingerprints %s and %s", host, a.rule, fp, a.key)
		}
		fingerprints[host+"/"+a.rule] = a.key
		if a.reason == "rule removed" {
			removed[host] = append(removed[host], a)
			continue
		}
		var l struct {
			V string  `json:"v"`
			N float64 `json:"n"`
		}
		if err := json.Unmarshal([]byte(labels), &l); err != nil {
			t.Fatal(err)
		}
		r := byN[int(l.N)]
		if r == nil {
			t.Fatalf("alert %+v of %s names reading %v, which is not in the metrics table", a, host, l.N)
		}
		var v int
		fmt.Sscan(l.V, &v)
		if r.v != 0 && r.v != v {
			t.Fatalf("reading %d has alerts of versions %d and %d", r.n, r.v, v)
		}
		r.v = v
		versions[v] = true
		r.alerts = append(r.alerts, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(versions) != len(reloadRules) {
		t.Fatalf("alerts name versions %v; every version should have evaluated some readings", versions)
	}
	if len(removed["pin"]) != 1 {
		t.Fatalf("the pinned host's warm alert ended with %v, want one resolved record with reason rule removed", removed["pin"])
	}
	// expect is what version v raises for a reading of value from state firing.
	expect := func(v int, value float64, firing map[string]bool) []alert {
		var out []alert
		for _, r := range reloadRules[v] {
			switch holds := r.holds(value); {
			case holds && !firing[r.name]:
				out = append(out, alert{rule: r.name, state: "firing"})
			case !holds && firing[r.name]:
				out = append(out, alert{rule: r.name, state: "resolved", reason: "cleared"})
			}
		}
		return out
	}
	strip := func(as []alert) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.rule+"/"+a.state+"/"+a.reason)
		}
		slices.Sort(out)
		return out
	}
	for host, rs := range byHost {
		// lo and hi bound the version in force at each reading.
		lo, hi := make([]int, len(rs)), make([]int, len(rs))
		for i, cur := 0, 1; i < len(rs); i++ {
			if rs[i].v != 0 {
				if rs[i].v < cur {
					t.Fatalf("%s: reading %d was evaluated by version %d after version %d", host, rs[i].n, rs[i].v, cur)
				}
				cur = rs[i].v
			}
			lo[i] = cur
		}
		for i, cur := len(rs)-1, len(reloadRules); i >= 0; i-- {
			if rs[i].v != 0 {
				cur = rs[i].v
			}
			hi[i] = cur
		}
		firing := map[string]bool{}
		ended := false
		for i, r := range rs {
			if !ended && lo[i] >= 4 {
				// The warm rule was removed before this reading: its alert, if firing, ended.
				if firing["warm"] != (len(removed[host]) == 1) || len(removed[host]) > 1 {
					t.Fatalf("%s: warm firing %v when it was removed, and %d rule removed records", host, firing["warm"], len(removed[host]))
				}
				firing["warm"], ended = false, true
			}
			if r.v != 0 {
				want := expect(r.v, r.value, firing)
				if !slices.Equal(strip(r.alerts), strip(want)) {
					t.Fatalf("%s: reading %d (value %g) raised %v under version %d; from %v that version raises %v", host, r.n, r.value, strip(r.alerts), r.v, firing, strip(want))
				}
				for _, a := range r.alerts {
					firing[a.rule] = a.state == "firing"
				}
				continue
			}
			quiet := false
			for v := lo[i]; v <= hi[i] && !quiet; v++ {
				quiet = len(expect(v, r.value, firing)) == 0
			}
			if !quiet {
				t.Fatalf("%s: reading %d (value %g) raised nothing, but every version it could have met (%d to %d) raises an alert from %v", host, r.n, r.value, lo[i], hi[i], firing)
			}
		}
		if !ended {
			t.Fatalf("%s: no reading was certainly evaluated after the warm rule was removed", host)
		}
	}
}

// topicCounts reads a topic (read committed) and counts each reading (its "n") in it: until
// complete says every reading wanted is there, then on until a poll finds nothing more.
func topicCounts(t *testing.T, ctx context.Context, brokers []string, topic string, complete func(map[int]int) bool) map[int]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[int]int{}
	deadline := time.Now().Add(60 * time.Second)
	for {
		pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		pcancel()
		if fs.NumRecords() == 0 && complete(seen) {
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s: %d readings after 60s, not all that are wanted", topic, len(seen))
		}
		fs.EachRecord(func(r *kgo.Record) {
			var v struct {
				N int `json:"n"`
			}
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Fatalf("%s: %v", topic, err)
			}
			seen[v.N]++
		})
	}
}

func countAbove(m map[int]int, limit int) int {
	c := 0
	for _, v := range m {
		if v > limit {
			c++
		}
	}
	return c
}

// compact shows a long sequence of repeated values as value×count.
func compact(s []string) []string {
	var out []string
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] == s[i] {
			j++
		}
		out = append(out, fmt.Sprintf("%q×%d", s[i], j-i))
		i = j
	}
	return out
}

// A reload can add a Parquet sink and a route on the table it writes: the route answers from
// the new files' store (rows still unflushed included), and the routes already served go on.
func TestReloadAddsAParquetTableAndItsRoute(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pipeline.yaml")
	base := fmt.Sprintf(`version: 1
broker:
  embedded: {listen: "127.0.0.1:0", data_dir: %q}
topics:
  in:  {partitions: 1}
  out: {partitions: 1}
  dlq: {}
dead_letter: dlq
streams:
  - name: copy
    input: {topic: in}
    output: {topic: out}
api:
  listen: "127.0.0.1:0"
  routes:
    - {path: /out, stream: out}
`, filepath.Join(dir, "broker"))
	added := strings.Replace(base, "api:\n", fmt.Sprintf("sinks:\n  - {from: in, parquet: {dir: %q, table: metrics}}\napi:\n", filepath.Join(dir, "parquet")), 1) +
		"    - {path: /readings, table: metrics, where: {source_id: query.host}, order: ts desc}\n"
	running, stop, _ := runFile(t, file, base, runtime.RunOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + running.API.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("Content-Type") == "text/event-stream" {
			return resp.StatusCode, "" // a stream: it does not end
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/readings?host=h1"); code != http.StatusNotFound {
		t.Fatalf("GET /readings before the reload: %d, want 404", code)
	}
	if err := os.WriteFile(file, []byte(added), 0o644); err != nil {
		t.Fatal(err)
	}
	if st := running.ReloadFiles(ctx, "test", []string{file}); st.Result != reload.Applied {
		t.Fatalf("reload: %s %+v", st.Result, st.Errors)
	}
	producer, err := kgo.NewClient(kgo.SeedBrokers(running.Broker.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	reading := `{"event_id":"e1","ts_event":"2026-01-01T00:00:00Z","tenant_id":"acme","source":{"source_id":"h1"},"metric":"cpu","value":42}`
	if err := producer.ProduceSync(ctx, &kgo.Record{Topic: "in", Value: []byte(reading)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get("/readings?host=h1")
		if code == http.StatusOK && strings.Contains(body, `"event_id":"e1"`) && strings.Contains(body, `"value":42`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /readings?host=h1 after the reload: %d %s, want the reading", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := get("/out"); code != http.StatusOK {
		t.Fatalf("GET /out (a route from before the reload): %d, want 200", code)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// runFile writes text to file and runs it (reloadable from the file: ro.Load is set), as
// runUntilStopped does; load loads the file again.
func runFile(tb testing.TB, file, text string, ro runtime.RunOptions) (running *runtime.Running, stop func() error, load func() (*config.Pipeline, error)) {
	tb.Helper()
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
	load = func() (*config.Pipeline, error) { return config.Load(file, components.Registry()) }
	cfg, err := load()
	if err != nil {
		tb.Fatal(err)
	}
	ro.Load = load
	running, stop = runUntilStopped(tb, cfg, ro)
	return running, stop, load
}

// runUntilStopped builds cfg and runs it with ro, and returns once the pipeline is up. stop
// (also called at the end of the test) ends the run and returns its error.
func runUntilStopped(tb testing.TB, cfg *config.Pipeline, ro runtime.RunOptions) (running *runtime.Running, stop func() error) {
	tb.Helper()
	return runtimetest.Start(tb, cfg, components, ro)
}

// A processor inserted before a stateful one moves it (processors[0].threshold becomes
// processors[1].threshold) without changing it: it keeps its alert states through the
// reload, and its checkpoint moves to its new name, so a restart after the reload restores
// them too; nothing is left under the old name.
func TestMovedProcessorKeepsItsState(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pipeline.yaml")
	before := fmt.Sprintf(`version: 1
broker:
  embedded: {listen: "127.0.0.1:0", data_dir: %q}
topics:
  in:     {partitions: 1}
  alerts: {partitions: 1}
  dlq:    {}
dead_letter: dlq
streams:
  - name: rules
    input: {topic: in}
    processors:
      - threshold:
          series: [host]
          rules: [{name: hot, when: 'value >= 90', severity: critical}]
    output: {topic: alerts}
`, filepath.Join(dir, "broker"))
	after := strings.Replace(before, "    processors:\n", "    processors:\n      - filter: {when: 'value >= 0'}\n", 1)
	running, stop, load := runFile(t, file, before, runtime.RunOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	brokers := running.Broker.Addrs()
	producer, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	send := func(minute, value int) {
		t.Helper()
		v := fmt.Sprintf(`{"host":"h1","value":%d,"ts_event":"2026-01-01T00:%02d:00Z"}`, value, minute)
		if err := producer.ProduceSync(ctx, &kgo.Record{Topic: "in", Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	alerts, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("alerts"), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer alerts.Close()
	// next is the state of the next alert record, at the minute of the reading that made it.
	next := func() string {
		t.Helper()
		pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
		defer pcancel()
		for {
			fs := alerts.PollRecords(pctx, 1)
			if pctx.Err() != nil {
				t.Fatal("no alert within 30s")
			}
			for _, r := range fs.Records() {
				var a struct{ State, Ts string }
				if err := json.Unmarshal(r.Value, &a); err != nil {
					t.Fatal(err)
				}
				return a.State + "@" + a.Ts[14:16]
			}
		}
	}
	send(1, 95)
	if got := next(); got != "firing@01" {
		t.Fatalf("first alert %s, want firing@01", got)
	}
	if err := os.WriteFile(file, []byte(after), 0o644); err != nil {
		t.Fatal(err)
	}
	if st := running.ReloadFiles(ctx, "test", []string{file}); st.Result != reload.Applied {
		t.Fatalf("reload: %s %+v", st.Result, st.Errors)
	}
	send(2, 96) // still firing: no record, unless the state was lost (then: firing@02)
	send(3, 10)
	if got := next(); got != "resolved@03" {
		t.Fatalf("after the reload: %s, want resolved@03 (the firing state kept)", got)
	}
	send(4, 97)
	if got := next(); got != "firing@04" {
		t.Fatalf("after the reload: %s, want firing@04", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	running, stop = runUntilStopped(t, cfg, runtime.RunOptions{Load: load})
	producer2, err := kgo.NewClient(kgo.SeedBrokers(running.Broker.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer producer2.Close()
	producer = producer2
	alerts, err = kgo.NewClient(kgo.SeedBrokers(running.Broker.Addrs()...), kgo.ConsumeTopics("alerts"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer alerts.Close()
	for _, want := range []string{"firing@01", "resolved@03", "firing@04"} {
		if got := next(); got != want {
			t.Fatalf("alerts topic after the restart: %s, want %s", got, want)
		}
	}
	send(5, 98) // still firing after the restart: the state came back under the new name
	send(6, 10)
	if got := next(); got != "resolved@06" {
		t.Fatalf("after the restart: %s, want resolved@06 (the firing state restored)", got)
	}

	changelog, err := kgo.NewClient(kgo.SeedBrokers(running.Broker.Addrs()...), kgo.ConsumeTopics(runtime.ChangelogTopic("eventops.rules")),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer changelog.Close()
	latest := map[string]bool{} // key -> has a value
	for quiet := false; !quiet; {
		pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := changelog.PollFetches(pctx)
		pcancel()
		quiet = fs.NumRecords() == 0
		fs.EachRecord(func(r *kgo.Record) { latest[string(r.Key)] = r.Value != nil })
	}
	for key, live := range latest {
		if live && strings.HasPrefix(key, "processors[0].threshold\x00") {
			t.Errorf("changelog still holds %q under the threshold's former name", key)
		}
	}
	if !latest["processors[1].threshold\x00meta"] {
		t.Errorf("changelog has no state under the threshold's new name: %v", latest)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
