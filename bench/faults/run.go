package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/bench/internal/benchutil"
	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/broker"
	"github.com/eventops/eventops-engine/engine/runtime"
	outputs "github.com/eventops/eventops-engine/outputs/all"
	"github.com/eventops/eventops-engine/processors/all"
)

// outputTopics are the topics the suite compares, in the order it prints them.
var outputTopics = []string{"signals.metric.v1", "signals.rollup.v1", "ops.alert.v1", "ops.late.v1", "ops.deadletter.v1"}

// group is a consumer group of the pipeline and the topic it reads.
type group struct{ name, topic string }

// run is one run of the pipeline: its broker process, its engine process, its PostgreSQL
// schema, and what the monitor saw.
type run struct {
	name string
	o    *options
	in   *input
	bin  string
	dir  string

	brokerAddr string
	apiAddr    string
	pipeline   string
	pgBase     string // the server, without a schema
	schema     string
	dsn        string // the sinks' DSN: pgBase with search_path=schema
	groups     []group
	compacted  map[string]bool // topics whose cleanup policy compacts

	mu         sync.Mutex
	broker     *brokerProc
	engine     *engineProc
	last       observation
	recoveries []*recovery
	notes      []string
	idle       bool // every group caught up and nothing changing, as of the last observation
	checks     []check
	busy       time.Duration // from the first commit to the last change seen, once complete
	toDone     time.Duration // from the engine's start to the last change seen, once complete

	adm       *kadm.Client
	kcl       *kgo.Client
	cacheMu   sync.Mutex
	dataCache map[string]bool // hasData's answers
}

// newRun prepares a run: directory, broker process, schema, pipeline, topics, input.
func newRun(ctx context.Context, o *options, name, bin, root, pgBase string, in *input) (*run, error) {
	r := &run{name: name, o: o, in: in, bin: bin, pgBase: pgBase, dataCache: map[string]bool{}}
	var err error
	if r.dir, err = os.MkdirTemp("", "eventops-faults-"+name+"-"); err != nil {
		return nil, err
	}
	r.brokerAddr, r.apiAddr = benchutil.FreeAddr(), benchutil.FreeAddr()
	if err := r.createSchema(ctx); err != nil {
		return r, err
	}
	if r.pipeline, err = writePipeline(root, r.dir, r.brokerAddr, r.dsn, r.apiAddr, o.Hosts); err != nil {
		return r, err
	}
	if r.broker, err = startBroker(r.brokerAddr, filepath.Join(r.dir, "broker"), filepath.Join(r.dir, "broker.log"), r.o.CleanEvery); err != nil {
		return r, err
	}
	if r.kcl, err = kgo.NewClient(kgo.SeedBrokers(r.brokerAddr), kgo.RetryTimeout(3*time.Second)); err != nil {
		return r, err
	}
	r.adm = kadm.NewClient(r.kcl)
	if err := r.createTopics(ctx); err != nil {
		return r, err
	}
	if err := in.produce(ctx, r.brokerAddr); err != nil {
		return r, err
	}
	return r, nil
}

func (r *run) logf(format string, args ...any) {
	if r.o.Log != nil {
		r.o.Log("[%s] %s", r.name, fmt.Sprintf(format, args...))
	}
}

func (r *run) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.notes = append(r.notes, msg)
	r.mu.Unlock()
	r.logf("%s", msg)
}

func (r *run) createSchema(ctx context.Context) error {
	var b [4]byte
	rand.Read(b[:])
	r.schema = "faults_" + strings.ReplaceAll(r.name, "-", "_") + "_" + hex.EncodeToString(b[:])
	conn, err := pgConnect(ctx, r.pgBase)
	if err != nil {
		return fmt.Errorf("PostgreSQL at %s: %w", r.pgBase, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+r.schema); err != nil {
		return fmt.Errorf("creating schema %s: %w", r.schema, err)
	}
	u, err := url.Parse(r.pgBase)
	if err != nil {
		return fmt.Errorf("the PostgreSQL DSN must be a URL (postgres://...): %w", err)
	}
	q := u.Query()
	q.Set("search_path", r.schema)
	u.RawQuery = q.Encode()
	r.dsn = u.String()
	return nil
}

func pgConnect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return pgx.Connect(ctx, dsn)
}

// createTopics creates the pipeline's topics as the engine would (so the input can be
// produced before it starts) and finds its consumer groups.
func (r *run) createTopics(ctx context.Context) error {
	cfg, err := config.Load(r.pipeline, components.Registry())
	if err != nil {
		return fmt.Errorf("the suite's pipeline: %w", err)
	}
	b, err := broker.Start(ctx, cfg.Broker, nil)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.EnsureTopics(ctx, cfg.Topics); err != nil {
		return fmt.Errorf("creating the topics: %w", err)
	}
	plan, err := runtime.Build(cfg, runtime.Options{Components: components})
	if err != nil {
		return fmt.Errorf("building the suite's pipeline: %w", err)
	}
	for _, sp := range plan.Streams {
		r.groups = append(r.groups, group{name: sp.Group(), topic: sp.Config.Input.Topic})
	}
	r.compacted = map[string]bool{}
	for name, t := range cfg.Topics {
		r.compacted[name] = strings.Contains(t.Cleanup, "compact")
	}
	return nil
}

// startEngine starts the engine and registers the recovery to measure when it restarts.
func (r *run) startEngine(ctx context.Context, restart bool) error {
	var rec *recovery
	if restart {
		rec = r.newRecovery(ctx, "engine restart", progressCommitted)
	}
	e, err := startEngine(r.bin, r.pipeline, r.apiAddr, filepath.Join(r.dir, "engine.log"))
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.engine = e
	r.mu.Unlock()
	if rec != nil {
		r.arm(rec, e.started)
		go r.watchReady(ctx, e, rec)
	}
	return nil
}

// killEngine kills the engine with SIGKILL.
func (r *run) killEngine() {
	r.mu.Lock()
	e := r.engine
	r.mu.Unlock()
	if e != nil {
		e.kill()
	}
}

func (r *run) currentEngine() *engineProc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.engine
}

func (r *run) currentBroker() *brokerProc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.broker
}

// watchReady records when /-/ready first answers 200 after a restart.
func (r *run) watchReady(ctx context.Context, e *engineProc, rec *recovery) {
	cl := &http.Client{Timeout: time.Second}
	for ctx.Err() == nil && e.running() {
		if resp, err := cl.Get(e.api + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				r.mu.Lock()
				rec.ready = time.Since(rec.start)
				r.mu.Unlock()
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// close stops the engine (SIGTERM, then SIGKILL) and the broker, and removes what the run
// made unless -keep.
func (r *run) close() {
	if e := r.currentEngine(); e != nil && e.running() {
		if !e.stop(15 * time.Second) {
			r.note("the engine did not stop within 15s of SIGTERM; killed")
		}
	}
	if r.kcl != nil {
		r.kcl.Close()
	}
	r.mu.Lock()
	b := r.broker
	r.mu.Unlock()
	if b != nil && b.running() {
		b.stop(10 * time.Second)
	}
	if r.o.Keep {
		r.logf("kept: directory %s, schema %s (%s)", r.dir, r.schema, r.pgBase)
		return
	}
	if r.schema != "" {
		if conn, err := pgConnect(context.Background(), r.pgBase); err == nil {
			conn.Exec(context.Background(), "SET lock_timeout = '10s'")
			if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+r.schema+" CASCADE"); err != nil {
				r.logf("dropping schema %s: %v", r.schema, err)
			}
			conn.Close(context.Background())
		}
	}
	if r.dir != "" {
		os.RemoveAll(r.dir)
	}
}

// engineLogTail is the last lines the current engine logged.
func (r *run) engineLogTail(n int) string {
	if e := r.currentEngine(); e != nil {
		return e.logTail(n)
	}
	return ""
}

// behind lists the groups that have not committed up to the end of their input, as of the
// last observation.
func (r *run) behind() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, g := range r.groups {
		for p, end := range r.last.ends[g.topic] {
			if c := r.last.committed[g.name][p]; c < end {
				out = append(out, fmt.Sprintf("%s at %d of %d in %s/%d", g.name, c, end, g.topic, p))
			}
		}
	}
	slices.Sort(out)
	return out
}

// components are the component types the benchmark's pipelines use: all the engine has.
var components = engine.Components{Processors: all.Factories(), Outputs: outputs.Factories()}
