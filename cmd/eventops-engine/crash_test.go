package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/engine/postgres/pgtest"
)

// buildBinary compiles the engine once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "eventops-engine")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("building the engine: %v", err)
	}
	return bin
}

// engineProc is the engine running as a child process.
type engineProc struct {
	cmd     *exec.Cmd
	brokers string
	exited  chan struct{}

	mu  sync.Mutex
	log strings.Builder // its stderr so far
}

// logTail is the last n lines the engine logged, for failure messages.
func (p *engineProc) logTail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines := strings.Split(strings.TrimRight(p.log.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

var brokerAddr = regexp.MustCompile(`embedded broker listening.*addr=(127\.0\.0\.1:\d+)`)

func startEngine(t *testing.T, bin, pipeline string, env ...string) *engineProc {
	t.Helper()
	cmd := exec.Command(bin, "-c", pipeline)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &engineProc{cmd: cmd, exited: make(chan struct{})}
	running := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			if m := brokerAddr.FindStringSubmatch(line); m != nil && p.brokers == "" {
				p.brokers = m[1]
			}
			p.mu.Unlock()
			if strings.Contains(line, "pipeline running") {
				close(running)
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	select {
	case <-running:
	case <-p.exited:
		t.Fatalf("engine exited before running:\n%s", p.logTail(200))
	case <-time.After(60 * time.Second):
		t.Fatalf("engine did not start its streams within 60s:\n%s", p.logTail(200))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p
}

func (p *engineProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

const crashPipeline = `
version: 1
broker:
  embedded: {listen: "127.0.0.1:0", data_dir: "%s"}
topics:
  ingest.raw.agent:  {partitions: 3, retention: 3d}
  signals.metric.v1: {partitions: 3, retention: 14d}
  ops.deadletter.v1: {partitions: 1, retention: 7d}
dead_letter: ops.deadletter.v1
streams:
  - name: normalize
    input: {topic: ingest.raw.agent, batch_size: 2000}
    processors:
      - map:
          event_id: record_id()
          ts_event: parse_time(ts_event)
          tenant_id: tenant_id
          source: {type: '"host"', source_id: host}
          metric: metric
          value: float(value)
    output: {topic: signals.metric.v1, key: tenant_id}
sinks:
  - {from: signals.metric.v1, batch_size: 2000, postgres: {dsn: "%s", table: metrics}}
`

// crashSetup gives a crash test a fresh database schema, the engine binary, and a pipeline
// file made from format (its %s are the broker data directory, then the DSN).
func crashSetup(t *testing.T, format string) (dsn, bin, pipeline string) {
	t.Helper()
	dsn = pgtest.DSN(t)
	bin = buildBinary(t)
	dir := t.TempDir()
	pipeline = filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(pipeline, []byte(fmt.Sprintf(format, filepath.Join(dir, "broker"), dsn)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dsn, bin, pipeline
}

// Killing the engine with SIGKILL in the middle of a stream of 100k events and starting it
// again ends with exactly 100k rows: nothing lost, nothing written twice.
func TestSIGKILLMidStreamLosesAndDuplicatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs the engine binary; skipped with -short")
	}
	dsn, bin, pipeline := crashSetup(t, crashPipeline)
	const n = 100_000

	eng := startEngine(t, bin, pipeline)
	produceEvents(t, eng.brokers, n, false)

	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	count := func() (rows, distinct int) {
		if err := conn.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT event_id) FROM metrics").Scan(&rows, &distinct); err != nil {
			// The table appears when the sink starts.
			return 0, 0
		}
		return rows, distinct
	}
	waitFor(t, 120*time.Second, "some rows before the kill", func() bool { r, _ := count(); return r >= 5_000 })
	eng.kill(t)
	before, _ := count()
	t.Logf("killed the engine at %d rows of %d", before, n)
	if before >= n {
		t.Logf("the engine had finished before it was killed (%d rows); the restart then only proves nothing is duplicated", before)
	}

	restarted := startEngine(t, bin, pipeline)
	waitFor(t, 180*time.Second, "all 100k rows after the restart", func() bool { r, _ := count(); return r >= n })
	rows, distinct := count()
	if rows != n || distinct != n {
		t.Fatalf("after a SIGKILL at %d rows and a restart: %d rows, %d distinct event ids; want exactly %d", before, rows, distinct, n)
	}
	// The table dedupes by event id; the topic must not need to: normalize commits its
	// output and its offsets in one transaction, so a reader of committed records (the
	// rollups and rules downstream) sees each reading once.
	records, ids := topicEventIDs(t, restarted.brokers, "signals.metric.v1")
	if records != n || ids != n {
		t.Fatalf("after a SIGKILL at %d rows and a restart, signals.metric.v1 holds %d committed records with %d distinct event ids; want exactly %d", before, records, ids, n)
	}
}

// topicEventIDs reads topic to its end as a downstream stream does (committed records
// only) and counts its records and distinct event ids.
func topicEventIDs(t *testing.T, brokers, topic string) (records, distinct int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	ids := map[string]bool{}
	for len(left) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (partitions not read to their end: %v)", topic, ctx.Err(), left)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			if r.Attrs.IsControl() {
				return // a transaction marker
			}
			var v struct {
				EventID string `json:"event_id"`
			}
			if json.Unmarshal(r.Value, &v) == nil {
				ids[v.EventID] = true
			}
			records++
		})
	}
	return records, len(ids)
}

// produceEvents sends n raw events for 50 hosts, one second apart; keyed by host, each host's
// events keep their order through the pipeline (unkeyed, they spread over the partitions
// and a stream reading them may see a host's readings out of order).
func produceEvents(t *testing.T, brokers string, n int, keyed bool) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ProducerLinger(2*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	base := time.Date(2025, 10, 16, 9, 0, 0, 0, time.UTC)
	recs := make([]*kgo.Record, 0, 10_000)
	for i := 0; i < n; i++ {
		v := fmt.Sprintf(`{"tenant_id":"acme","host":"host-%d","metric":"cpu_load","value":%d,"ts_event":"%s"}`,
			i%50, i%100, base.Add(time.Duration(i)*time.Second).Format(time.RFC3339))
		rec := &kgo.Record{Topic: "ingest.raw.agent", Value: []byte(v)}
		if keyed {
			rec.Key = fmt.Appendf(nil, "host-%d", i%50)
		}
		recs = append(recs, rec)
		if len(recs) == cap(recs) || i == n-1 {
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatalf("producing: %v", err)
			}
			recs = recs[:0]
		}
	}
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// brokerOnlyPipeline runs the engine binary as nothing but its embedded broker (%s: the
// data directory), so that a crash test can kill the engine without killing its broker.
const brokerOnlyPipeline = `
version: 1
broker:
  embedded: {listen: "127.0.0.1:0", data_dir: "%s"}
topics: {}
`

// crashStatefulPipeline reads an external broker (%s: its address), as eventops-flow reads
// Redpanda, then the DSN.
const crashStatefulPipeline = `
version: 1
broker:
  brokers: ["%s"]
topics:
  ingest.raw.agent:  {partitions: 3, retention: 3d}
  signals.metric.v1: {partitions: 3, retention: 14d}
  ops.alert.v1:      {partitions: 3, retention: 30d, cleanup: compact+delete}
  ops.deadletter.v1: {partitions: 1, retention: 7d}
dead_letter: ops.deadletter.v1
streams:
  - name: normalize
    input: {topic: ingest.raw.agent, batch_size: 2000}
    processors:
      - map:
          event_id: record_id()
          ts_event: parse_time(ts_event)
          tenant_id: tenant_id
          source: {type: '"host"', source_id: host}
          metric: metric
          value: float(value)
    output: {topic: signals.metric.v1, key: tenant_id}
  - name: rules
    input: {topic: signals.metric.v1, batch_size: 2000}
    processors:
      - threshold:
          rules:
            - {name: cpu_hot, when: 'value >= 90', severity: critical}
    output: {topic: ops.alert.v1}
sinks:
  - {from: ops.alert.v1, batch_size: 2000, postgres: {dsn: "%s", table: alerts}}
`

// Killing the engine with SIGKILL while the rules stream is halfway through and starting it
// again gives the alerts table one uninterrupted run gives: the alert states restored from
// the changelog are exactly those at the committed offsets (killsKeepAlertStates).
func TestSIGKILLKeepsAlertStatesConsistent(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs the engine binary; skipped with -short")
	}
	// The broker runs in a process of its own, as Redpanda does in production: the kill
	// takes down the engine alone (the next test kills both).
	bin := buildBinary(t)
	dir := t.TempDir()
	brokerFile := filepath.Join(dir, "broker.yaml")
	if err := os.WriteFile(brokerFile, []byte(fmt.Sprintf(brokerOnlyPipeline, filepath.Join(dir, "broker"))), 0o644); err != nil {
		t.Fatal(err)
	}
	brk := startEngine(t, bin, brokerFile)
	if brk.brokers == "" {
		t.Fatalf("the broker process did not log its address:\n%s", brk.logTail(50))
	}
	dsn := pgtest.DSN(t)
	pipeline := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(pipeline, []byte(fmt.Sprintf(crashStatefulPipeline, brk.brokers, dsn)), 0o644); err != nil {
		t.Fatal(err)
	}
	killsKeepAlertStates(t, bin, pipeline, dsn, brk.brokers, 1)
}

// alertsPipelineEmbedded is crashStatefulPipeline on the engine's own embedded broker (%s:
// its data directory), as the quickstart runs.
var alertsPipelineEmbedded = strings.Replace(crashStatefulPipeline, `brokers: ["%s"]`, `embedded: {listen: "127.0.0.1:0", data_dir: "%s"}`, 1)

// The same with the embedded broker: each kill takes the broker down with the engine, at
// any point of a transaction, including while the broker writes its commit markers. The
// broker's start-up recovery (engine/broker: recoverDataDir) aborts what was left unmarked
// and finishes commits cut short, so the alerts are still exactly those of one
// uninterrupted run, through several kills.
func TestSIGKILLWithTheEmbeddedBrokerKeepsAlertStatesConsistent(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs the engine binary; skipped with -short")
	}
	dsn, bin, pipeline := crashSetup(t, alertsPipelineEmbedded)
	killsKeepAlertStates(t, bin, pipeline, dsn, "", 3)
}

// killsKeepAlertStates runs pipeline (crashStatefulPipeline's streams), produces 100k keyed
// readings to brokers (the engine's embedded broker if empty), kills the engine kills times
// while alerts are being written, restarting it each time, and checks the alerts table
// against what one uninterrupted run gives. produceEvents gives host h the values h and h+50
// (mod 100) in turn, so each of hosts 40-49 fires on its odd readings and resolves on its
// even ones: 1000 firing and 999 resolved alerts per host, no other alert. A state lost in a
// crash would drop a resolve (and double a fire); a state restored ahead of the offsets
// would skip transitions.
// groupLags says, for every consumer group of the broker, how many records its members have
// yet to commit, in all and per topic partition that has any.
func groupLags(brokers string) string {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		return err.Error()
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return err.Error()
	}
	lags, err := adm.Lag(ctx, groups.Groups()...)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	lags.Each(func(l kadm.DescribedGroupLag) {
		fmt.Fprintf(&b, "\n  %s: %d", l.Group, l.Lag.Total())
		for _, pl := range l.Lag.Sorted() {
			if pl.Lag > 0 {
				fmt.Fprintf(&b, " %s/%d:%d", pl.Topic, pl.Partition, pl.Lag)
			}
		}
	})
	return b.String()
}

func killsKeepAlertStates(t *testing.T, bin, pipeline, dsn, brokers string, kills int) {
	t.Helper()
	const n, hot, perHost = 100_000, 10, 1000 + 999
	eng := startEngine(t, bin, pipeline)
	embedded := brokers == ""
	if embedded {
		brokers = eng.brokers
	}
	// The brokers now: an embedded one listens on another port after each restart.
	current := func() string {
		if embedded {
			return eng.brokers
		}
		return brokers
	}
	produceEvents(t, brokers, n, true) // keyed by host: each host's readings stay in order

	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	count := func() (rows, distinct int) {
		if err := conn.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT event_id) FROM alerts").Scan(&rows, &distinct); err != nil {
			return 0, 0 // the table appears when the sink starts
		}
		return rows, distinct
	}
	var at []int
	for k := 1; k <= kills; k++ {
		target := k * 2_000
		waitFor(t, 120*time.Second, fmt.Sprintf("%d alerts before kill %d", target, k), func() bool { r, _ := count(); return r >= target })
		eng.kill(t)
		r, _ := count()
		at = append(at, r)
		eng = startEngine(t, bin, pipeline)
	}
	t.Logf("killed the engine at %v alert rows of %d", at, hot*perHost)
	// A lost state shows as alerts that never come, so wait a bounded time and then
	// compare what is there.
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if r, _ := count(); r >= hot*perHost {
			break
		}
	}
	rows, distinct := count()
	if rows != hot*perHost || distinct != rows {
		// Lagging groups mean the missing alerts were late (a stream still behind, or
		// stalled); no lag means they were lost.
		t.Fatalf("after SIGKILLs at %v rows and restarts: %d alert rows (%d distinct); want exactly %d\ngroups' lag: %s\nthe restarted engine's log:\n%s",
			at, rows, distinct, hot*perHost, groupLags(current()), eng.logTail(60))
	}
	t.Logf("groups' lag at the end: %s", groupLags(current()))
	perState, err := conn.Query(context.Background(), `SELECT source_id, state, count(*) FROM alerts GROUP BY 1, 2 ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	for perState.Next() {
		var host, state string
		var c int
		if err := perState.Scan(&host, &state, &c); err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"firing": 1000, "resolved": 999}[state]
		if c != want {
			t.Errorf("%s: %d %s alerts, want %d", host, c, state, want)
		}
	}
}
