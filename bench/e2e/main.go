// Command e2e measures the quickstart flow end to end: embedded broker → normalize (map +
// enrich, schema-checked) → rules (threshold) and sinks → PostgreSQL (the quickstart's sinks
// write Parquet; here they are swapped for eventops-flow's PostgreSQL ones), from a backlog of N raw
// events until every one of them is a row in `metrics` and the rules stream has committed
// every batch. In the same run it measures the ceiling: a plain pgx CopyFrom of the very same
// rows into an identical table (with its unique index, and without indexes), so the figure
// can be read as a ratio.
//
// The rules stream is stateful: each of its batches commits the threshold's state changes,
// its alerts and its input offsets in one Kafka transaction, and it reads the next batch only
// after that commit. So the run also reports that stream on its own: when it had read and
// committed everything (and how far behind normalize that was), its checkpoints and the
// state entries they wrote, the time it spent per stage (ack is the checkpoint
// transaction), and the readings its threshold dead-lettered as late. -lateness gives that
// threshold a lateness (the quickstart has none), to measure what buffering out-of-order
// readings in the state costs.
//
//	go run ./bench/e2e -events 200000
package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/broker"
	"github.com/eventops/eventops-engine/engine/runtime"
	"github.com/eventops/eventops-engine/engine/telemetry"
	outputs "github.com/eventops/eventops-engine/outputs/all"
	"github.com/eventops/eventops-engine/processors/all"

	"github.com/eventops/eventops-engine/bench/internal/benchutil"
)

func main() {
	events := flag.Int("events", 200000, "raw events to push through the pipeline")
	hosts := flag.Int("hosts", 500, "distinct hosts (series) in the events")
	dsn := flag.String("pg", envOr("EVENTOPS_TEST_PG", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL DSN")
	keep := flag.Bool("keep", false, "keep the benchmark schema and files")
	flag.BoolVar(&verbose, "v", false, "print per-stream progress every second")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the pipeline phase to this file")
	flag.StringVar(&lateness, "lateness", "", "set the rules stream's threshold lateness (e.g. 30s); default: the quickstart's (none)")
	flag.Parse()
	profilePath = *cpuProfile
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400) // as the eventops-engine binary does
	}
	if err := run(*events, *hosts, *dsn, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

var (
	profilePath string
	verbose     bool
	lateness    string
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(n, hosts int, baseDSN string, keep bool) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "eventops-bench-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	schema := fmt.Sprintf("bench_%d", time.Now().UnixNano())
	admin, err := pgx.Connect(ctx, baseDSN)
	if err != nil {
		return fmt.Errorf("PostgreSQL at %s: %w", baseDSN, err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return err
	}
	if !keep {
		defer admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	}
	dsn := withSearchPath(baseDSN, schema)

	pipelineFile, err := writePipeline(dir, dsn, hosts)
	if err != nil {
		return err
	}
	cfg, err := config.Load(pipelineFile, components.Registry())
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	// 1. The backlog: N raw events in ingest.raw.agent, produced before the pipeline starts.
	b, err := broker.Start(ctx, cfg.Broker, logger)
	if err != nil {
		return err
	}
	if err := b.EnsureTopics(ctx, cfg.Topics); err != nil {
		return err
	}
	produceRate, err := produce(ctx, b, n, hosts)
	b.Close()
	if err != nil {
		return err
	}

	// 2. The pipeline, from the backlog to rows.
	plan, err := runtime.Build(cfg, runtime.Options{Logger: logger, Components: components})
	if err != nil {
		return err
	}
	metrics := telemetry.New()
	runCtx, cancel := context.WithCancel(ctx)
	started := make(chan struct{})
	done := make(chan error, 1)
	var t0 time.Time
	if profilePath != "" {
		pf, err := os.Create(profilePath)
		if err != nil {
			cancel()
			return err
		}
		defer pf.Close()
		pprof.StartCPUProfile(pf)
		defer pprof.StopCPUProfile() // if the run fails early
	}
	go func() {
		done <- plan.Run(runCtx, runtime.RunOptions{Metrics: metrics, Started: func(*runtime.Running) { t0 = time.Now(); close(started) }})
	}()
	select {
	case <-started:
	case err := <-done:
		cancel()
		return fmt.Errorf("pipeline did not start: %w", err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		cancel()
		return err
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(10 * time.Minute)
	var rows int
	// When every event was a row, when normalize had written them all, when rules had read
	// them all, and when rules committed its last batch (to within the 10 ms poll).
	var rowsDone, normalized, rulesRead, rulesDone time.Duration
	// rules has committed its last batch once it reads again after reading the last event:
	// a stateful stream reads only when every batch before is committed.
	var readsAtAll, acks uint64
	rulesSettled := false
	lastReport := time.Now()
	for {
		if verbose && time.Since(lastReport) >= time.Second {
			lastReport = time.Now()
			var parts []string
			for _, s := range plan.Streams {
				parts = append(parts, fmt.Sprintf("%s in=%.0f out=%.0f", s.Name,
					testutil.ToFloat64(metrics.RecordsIn.WithLabelValues(s.Name)), testutil.ToFloat64(metrics.RecordsOut.WithLabelValues(s.Name))))
			}
			fmt.Printf("%5.1fs  %s\n", time.Since(t0).Seconds(), strings.Join(parts, " | "))
		}
		// Progress comes from the engine's own counters: polling count(*) would load the
		// database being measured. The rows are counted once, at the end.
		now := time.Since(t0)
		rows = int(testutil.ToFloat64(metrics.RecordsOut.WithLabelValues("sink.signals.metric.v1.metrics")))
		if rowsDone == 0 && rows >= n {
			rowsDone = now
		}
		if normalized == 0 && int(testutil.ToFloat64(metrics.RecordsOut.WithLabelValues("normalize"))) >= n {
			normalized = now
		}
		if !rulesSettled {
			if a := stage(metrics, "rules", "ack").n; a != acks {
				acks, rulesDone = a, now // the last commit seen so far
			}
			if rulesRead == 0 && int(testutil.ToFloat64(metrics.RecordsIn.WithLabelValues("rules"))) >= n {
				rulesRead, readsAtAll = now, stage(metrics, "rules", "read").n
			}
			// The stream reads at least once a second (its tick), so this comes soon.
			rulesSettled = rulesRead != 0 && stage(metrics, "rules", "read").n > readsAtAll
		}
		if rowsDone != 0 && rulesSettled {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			return fmt.Errorf("only %d of %d rows after 10 minutes", rows, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := max(rowsDone, rulesDone)
	// The rules stream's figures as of now, before shutting down adds to them.
	rulesStages := map[string]stageStat{}
	for _, st := range []string{"read", "process", "write", "dead_letter", "ack"} {
		rulesStages[st] = stage(metrics, "rules", st)
	}
	checkpoints := testutil.ToFloat64(metrics.Checkpoints.WithLabelValues("rules"))
	entries := testutil.ToFloat64(metrics.CheckpointEntries.WithLabelValues("rules"))
	aborts := testutil.ToFloat64(metrics.CheckpointAborts.WithLabelValues("rules"))
	// Records the threshold found older than the last one of their series (lateness: 0):
	// dead-lettered as late, not evaluated.
	late := testutil.ToFloat64(metrics.LateRecords.WithLabelValues("rules", "processors[0].threshold"))
	rulesDead := testutil.ToFloat64(metrics.DeadLetters.WithLabelValues("rules", "ops.deadletter.v1"))
	pprof.StopCPUProfile() // the profile covers the pipeline only, not the ceiling below
	cancel()
	if err := <-done; err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	var total, distinct, alerts int
	if err := conn.QueryRow(ctx, "SELECT count(*), count(DISTINCT event_id) FROM metrics").Scan(&total, &distinct); err != nil {
		return err
	}
	_ = conn.QueryRow(ctx, "SELECT count(*) FROM alerts").Scan(&alerts)
	if verbose {
		printStages(metrics, plan)
	}
	dead := testutil.ToFloat64(metrics.DeadLetters.WithLabelValues("normalize", "ops.deadletter.v1"))

	// 3. The ceiling, same rows, same run.
	copyIdx, copyNoIdx, err := copyCeiling(ctx, conn)
	if err != nil {
		return err
	}

	e2e := float64(n) / elapsed.Seconds()
	fmt.Printf("machine: %s/%s, %d CPUs, %s\n", goruntime.GOOS, goruntime.GOARCH, goruntime.NumCPU(), benchutil.CPUModel())
	fmt.Printf("events: %d raw events, %d hosts; produced to the embedded broker at %.0f events/s\n", n, hosts, produceRate)
	fmt.Printf("end to end: %.0f events/s (%.2fs for %d events; %d rows, %d distinct event ids, %d alert rows, %.0f dead letters)\n",
		e2e, elapsed.Seconds(), n, total, distinct, alerts, dead)
	fmt.Printf("ceiling: pgx CopyFrom of the same rows, 10k-row batches: %.0f rows/s into a copy of the metrics table (same indexes), %.0f rows/s into a table without indexes\n", copyIdx, copyNoIdx)
	fmt.Printf("ratio: end to end / COPY into the same table = %.2f; / COPY without indexes = %.2f\n", e2e/copyIdx, e2e/copyNoIdx)
	fmt.Printf("rules (stateful): read all %d events at %.2fs and committed them at %.2fs (%.0f events/s; normalize had written them all at %.2fs, so rules finished %.2fs after it)\n",
		n, rulesRead.Seconds(), rulesDone.Seconds(), float64(n)/rulesDone.Seconds(), normalized.Seconds(), (rulesDone - normalized).Seconds())
	ack := rulesStages["ack"]
	fmt.Printf("rules late records: %.0f (%.2f%% of the events; %.0f dead letters from rules in all)\n", late, 100*late/float64(n), rulesDead)
	fmt.Printf("rules checkpoints: %.0f committed (%.0f events each on average), %.0f state entries (%.1f per checkpoint), %.0f aborted; checkpoint transaction %.2f ms on average\n",
		checkpoints, float64(n)/max(checkpoints, 1), entries, entries/max(checkpoints, 1), aborts, 1000*ack.sum/float64(max(ack.n, 1)))
	line := "rules busy:"
	busy := 0.0
	for _, st := range []string{"process", "write", "dead_letter", "ack"} {
		line += fmt.Sprintf(" %s %.2fs/%d", st, rulesStages[st].sum, rulesStages[st].n)
		busy += rulesStages[st].sum
	}
	fmt.Printf("%s; %.2fs in all, %.0f%% of the run (read, which waits for input: %.2fs/%d)\n",
		line, busy, 100*busy/elapsed.Seconds(), rulesStages["read"].sum, rulesStages["read"].n)
	if total != n || distinct != n {
		return fmt.Errorf("delivery check failed: %d rows, %d distinct, want %d", total, distinct, n)
	}
	return nil
}

// stageStat is one stream stage's time histogram: batches and total seconds.
type stageStat struct {
	n   uint64
	sum float64
}

// stage reads the eventops_stream_stage_seconds histogram of one stream and stage.
func stage(m *telemetry.Metrics, stream, name string) stageStat {
	var d dto.Metric
	h, ok := m.StageSeconds.WithLabelValues(stream, name).(prometheus.Metric)
	if !ok || h.Write(&d) != nil {
		return stageStat{}
	}
	return stageStat{n: d.GetHistogram().GetSampleCount(), sum: d.GetHistogram().GetSampleSum()}
}

func withSearchPath(dsn, schema string) string {
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema
}

func writePipeline(dir, dsn string, hosts int) (string, error) {
	root, err := benchutil.RepoRoot()
	if err != nil {
		return "", err
	}
	f, err := os.Create(filepath.Join(dir, "cmdb.csv"))
	if err != nil {
		return "", err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"host", "owner", "site", "service", "criticality"})
	for i := 0; i < hosts; i++ {
		w.Write([]string{fmt.Sprintf("host-%d", i), fmt.Sprintf("team-%d", i%7), fmt.Sprintf("site-%d", i%3), fmt.Sprintf("svc-%d", i%11), "medium"})
	}
	w.Flush()
	f.Close()
	src, err := os.ReadFile(filepath.Join(root, "examples", "quickstart.yaml"))
	if err != nil {
		return "", err
	}
	y := string(src)
	y = strings.Replace(y, "listen: 127.0.0.1:9092", "listen: 127.0.0.1:0", 1)
	y = strings.Replace(y, "listen: 127.0.0.1:8081", "listen: 127.0.0.1:0", 1) // the schema registry
	y = strings.Replace(y, "data_dir: data/broker", "data_dir: "+filepath.Join(dir, "broker"), 1)
	y = strings.ReplaceAll(y, "../schemas/", filepath.Join(root, "schemas")+"/")
	// The quickstart stores into Parquet files; this benchmark measures the PostgreSQL path
	// (eventops-flow's stores), so its sinks are swapped for the PostgreSQL ones.
	for table, line := range map[string]string{
		"metrics": "  - {from: signals.metric.v1, parquet: {dir: data/parquet, table: metrics}}\n",
		"alerts":  "  - {from: ops.alert.v1,      parquet: {dir: data/parquet-alerts, table: alerts}}\n",
	} {
		if !strings.Contains(y, line) {
			return "", fmt.Errorf("examples/quickstart.yaml no longer has the sink %q; update bench/e2e", strings.TrimSpace(line))
		}
		from := "signals.metric.v1"
		if table == "alerts" {
			from = "ops.alert.v1"
		}
		y = strings.Replace(y, line, fmt.Sprintf("  - {from: %s, postgres: {dsn: %q, table: %s}}\n", from, dsn, table), 1)
	}
	if lateness != "" {
		const at = "      - threshold:\n"
		if !strings.Contains(y, at) {
			return "", fmt.Errorf("-lateness: no threshold processor in examples/quickstart.yaml")
		}
		y = strings.Replace(y, at, at+"          lateness: "+lateness+"\n", 1)
	}
	// No API in the benchmark: it measures the pipeline.
	if i := strings.Index(y, "\napi:"); i >= 0 {
		y = y[:i+1]
	}
	path := filepath.Join(dir, "pipeline.yaml")
	return path, os.WriteFile(path, []byte(y), 0o644)
}

func produce(ctx context.Context, b *broker.Broker, n, hosts int) (float64, error) {
	cl, err := kgo.NewClient(append(b.ClientOpts(), kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20))...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2025, 10, 16, 9, 0, 0, 0, time.UTC)
	// Each host's CPU load is a random walk around its own baseline, with rare spikes, so
	// that alerts are as rare as in real operations (a few per thousand readings).
	level := make([]float64, hosts)
	for h := range level {
		level[h] = 20 + float64((h*37)%50)
	}
	start := time.Now()
	errc := make(chan error, 1)
	for i := 0; i < n; i++ {
		h := rng.IntN(hosts)
		level[h] += rng.NormFloat64() * 2
		level[h] = max(5, min(85, level[h]))
		v := level[h]
		if rng.IntN(500) == 0 {
			v = 90 + rng.Float64()*10
		}
		ev := fmt.Sprintf(`{"tenant_id":"tenant-%d","host":"host-%d","metric":"cpu_load","value":%.2f,"ts_event":"%s","unit":"percent","tags":{"env":"prod"}}`,
			h%5, h, v, base.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano))
		cl.Produce(ctx, &kgo.Record{Topic: "ingest.raw.agent", Value: []byte(ev)}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	select {
	case err := <-errc:
		return 0, err
	default:
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// copyCeiling copies the rows the pipeline wrote into two fresh tables of the same layout,
// one with the unique event_id index and one without indexes, and returns rows/s for each.
func copyCeiling(ctx context.Context, conn *pgx.Conn) (withIdx, without float64, err error) {
	rows, err := conn.Query(ctx, "SELECT event_id, ts, tenant, source_id, metric, value, unit, tags FROM metrics")
	if err != nil {
		return 0, 0, err
	}
	var data [][]any
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return 0, 0, err
		}
		// Hand pgx the tags as JSON text, so the timed COPY does not include marshalling.
		if vals[7], err = json.Marshal(vals[7]); err != nil {
			return 0, 0, err
		}
		data = append(data, vals)
	}
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	cols := []string{"event_id", "ts", "tenant", "source_id", "metric", "value", "unit", "tags"}
	measure := func(table, ddl string) (float64, error) {
		if _, err := conn.Exec(ctx, ddl); err != nil {
			return 0, err
		}
		start := time.Now()
		for i := 0; i < len(data); i += 10000 {
			j := min(i+10000, len(data))
			if _, err := conn.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(data[i:j])); err != nil {
				return 0, err
			}
		}
		return float64(len(data)) / time.Since(start).Seconds(), nil
	}
	// The same table as the pipeline writes: columns, defaults and every index.
	withIdx, err = measure("copy_idx", `CREATE TABLE copy_idx (LIKE metrics INCLUDING ALL)`)
	if err != nil {
		return 0, 0, err
	}
	without, err = measure("copy_noidx", `CREATE TABLE copy_noidx (event_id TEXT NOT NULL, ts TIMESTAMPTZ, tenant TEXT, source_id TEXT, metric TEXT, value DOUBLE PRECISION, unit TEXT, tags JSONB)`)
	return withIdx, without, err
}

// printStages prints, per stream, the batches and the total seconds spent in each stage.
func printStages(m *telemetry.Metrics, plan *runtime.Plan) {
	mfs, err := m.Registry.Gather()
	if err != nil {
		return
	}
	for _, mf := range mfs {
		if mf.GetName() != "eventops_stream_stage_seconds" {
			continue
		}
		for _, s := range plan.Streams {
			line := s.Name + ":"
			for _, met := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range met.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["stream"] != s.Name {
					continue
				}
				h := met.GetHistogram()
				line += fmt.Sprintf(" %s=%.2fs/%d", labels["stage"], h.GetSampleSum(), h.GetSampleCount())
			}
			fmt.Println("  stages", line)
		}
	}
}

// components are the component types the benchmark's pipelines use: all the engine has.
var components = engine.Components{Processors: all.Factories(), Outputs: outputs.Factories()}
