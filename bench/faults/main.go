// Command faults is the fault suite of issue 17: it runs the eventops-flow pipeline as an
// operator would (the engine binary as a child process, a broker in a process of its own,
// PostgreSQL sinks), injects faults, and compares every topic and table with a clean run on
// the same input.
//
// Usage (from the repository root; PostgreSQL at EVENTOPS_TEST_PG, default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable, where the suite may create schemas):
//
//	go run ./bench/faults                                 # every scenario, 1,000,000 events
//	go run ./bench/faults -events 200000 -scenarios kill9,oversized
//	go run ./bench/faults -json > faults.json              # machine-readable results
//
// Each run gets a temporary directory, its own broker process (this binary re-executed as
// `faults broker --data-dir D --listen 127.0.0.1:PORT`: the engine's embedded broker, kfake,
// with the engine's retention/compaction cleaner, which the suite can kill -9 and restart on
// the same data directory and port), a fresh PostgreSQL schema, and the engine binary built
// once from ./cmd/eventops-engine. The input (-events records with a fixed -seed) is
// produced to ingest.raw.agent before the engine starts: a backlog.
//
// Scenarios (-scenarios, a comma list; default all):
//
//	control         no fault: a second clean run; any difference from the first is the
//	                pipeline's own nondeterminism
//	kill9           kill -9 the engine -kills times at random points of the backlog, restart at once
//	                (or after -down)
//	broker-restart  kill -9 the broker process mid-stream, restart it on the same data directory
//	pg-outage       the sinks write to a second PostgreSQL cluster made by the suite
//	                (pg_createcluster), stopped for -outage mid-stream, then started again
//	oversized       a 5 MB event and an event with a 1 MB host name in the middle of the input:
//	                both must be dead-lettered with their reason, the rest equal the clean run
//	slowloris       1,000 slow connections to the engine's API (127.0.0.1) while the pipeline
//	                runs; a normal GET /-/healthy must still answer
//
// A run is complete when every consumer group of the pipeline has committed up to the end
// of its input topic (offsets that hold only transaction markers or aborted records do not
// count), no transaction is open, and the tables have stopped changing. A run in which a
// group with input to read commits nothing for -stall, or that is not complete within
// -deadline, fails with what it waited for; its outputs are compared all the same.
//
// Then the suite reads every topic (signals.metric.v1, signals.rollup.v1, ops.alert.v1,
// ops.late.v1, ops.deadletter.v1) from the start with read_committed isolation, and the
// metrics and alerts tables, and prints per topic and table how many records of the clean
// run are lost, duplicated or differing, and how many are extra (an identity the clean run
// does not have). ops.alert.v1 is compacted, so it is compared in its compacted form (the
// newest record of each fingerprint); the alerts table holds its full history. Identities
// and the wall-clock fields left out of the comparison are described in compare.go. It also prints recovery times: for each restart, the time from
// the start of the restarted process (engine, broker or PostgreSQL) to the pipeline's first
// progress (a committed offset moving; for PostgreSQL, a row written). The verdict is FAIL
// (exit status 1) when any count is nonzero, a recovery takes longer than -recovery-target,
// or a run did not complete. Every run, the clean one included, also checks its own rollups
// (account.go): each rollup's n must be its minute's readings less those set aside as late or
// dead letters. A clean run that fails it fails the suite, as no reference.
//
// The suite's pipeline is examples/eventops-flow.yaml with these changes, all so that two
// runs on the same input give the same output: the heartbeat stream is left out (it fires
// on wall-clock silence, which differs between runs); the rollup's idle_timeout is 0 (an
// idle partition's last windows would otherwise close on the wall clock); ingest.raw.agent
// accepts records up to 8 MiB (so that the oversized scenario can produce its 5 MB event);
// the broker, the sinks' DSN and the API's address point at the suite's own.
//
// Every child process (engine, broker, PostgreSQL cluster) is stopped at the end of its run,
// also on failure and on Ctrl-C. All traffic stays on 127.0.0.1.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "broker" {
		os.Exit(brokerMain(os.Args[2:]))
	}
	os.Exit(cliMain(os.Args[1:]))
}

// options are the suite's settings; the flags of the command and the CI test fill them.
type options struct {
	Events    int
	Hosts     int
	Seed      uint64
	Scenarios []string
	Kills     int
	KillEvery time.Duration // the mean time from a restart's first progress to the next kill
	Down      time.Duration // how long the engine stays down after each kill
	// startup is the clean run's time from the engine's start to its first commit; set by
	// runSuite.
	startup        time.Duration
	BrokerDown     time.Duration
	CleanEvery     time.Duration // how often the broker process runs retention and compaction
	Outage         time.Duration
	Slowloris      int
	Stall          time.Duration
	Deadline       time.Duration // 0: derived from Events
	RecoveryTarget time.Duration
	Keep           bool
	Verbose        bool
	PGDSN          string // the server for the clean run and every scenario but pg-outage
	Log            func(format string, args ...any)
}

var allScenarios = []string{"control", "kill9", "broker-restart", "pg-outage", "oversized", "slowloris"}

func cliMain(args []string) int {
	fs := flag.NewFlagSet("faults", flag.ContinueOnError)
	o := options{}
	var scenarios string
	var asJSON bool
	fs.IntVar(&o.Events, "events", 1_000_000, "records in the input backlog (readings, late readings and bad records)")
	fs.IntVar(&o.Hosts, "hosts", 500, "hosts sending readings")
	fs.Uint64Var(&o.Seed, "seed", 17, "seed of the input and of the kill points")
	fs.StringVar(&scenarios, "scenarios", strings.Join(allScenarios, ","), "comma list of scenarios: "+strings.Join(allScenarios, ", "))
	fs.IntVar(&o.Kills, "kills", 10, "kill9: how many times the engine is killed")
	fs.DurationVar(&o.KillEvery, "kill-every", 0, "kill9: mean time from a restart's first progress to the next kill (uniform in 0..2x; default: the clean run's busy time / (kills+1))")
	fs.DurationVar(&o.CleanEvery, "clean-every", time.Minute, "how often the broker applies retention and compaction (the engine's default cleaner_interval; shorter makes a compaction during a run likely)")
	fs.DurationVar(&o.Down, "down", 0, "kill9: how long the engine stays down after each kill (0: restarted at once)")
	fs.DurationVar(&o.BrokerDown, "broker-down", 5*time.Second, "broker-restart: how long the broker stays down")
	fs.DurationVar(&o.Outage, "outage", 60*time.Second, "pg-outage: how long the sinks' PostgreSQL cluster is stopped")
	fs.IntVar(&o.Slowloris, "slowloris", 1000, "slowloris: number of slow connections (at most 5000)")
	fs.DurationVar(&o.Stall, "stall", 3*time.Minute, "a run fails when a group with input to read commits nothing for this long")
	fs.DurationVar(&o.Deadline, "deadline", 0, "a run not complete after this long fails (default 10m + 1s per 1,000 events)")
	fs.DurationVar(&o.RecoveryTarget, "recovery-target", 10*time.Second, "a restart must make progress within this time")
	fs.BoolVar(&o.Keep, "keep", false, "keep each run's directory and PostgreSQL schema (printed) for inspection")
	fs.BoolVar(&asJSON, "json", false, "print the results as JSON instead of tables")
	fs.BoolVar(&o.Verbose, "v", false, "print progress while runs go")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.Scenarios = splitList(scenarios)
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 2
	}
	o.Log = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer children.killAll()
	res, err := runSuite(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 1
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else {
		printResults(os.Stdout, res)
	}
	if !res.Pass {
		return 1
	}
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func (o *options) check() error {
	for _, s := range o.Scenarios {
		if !contains(allScenarios, s) {
			return fmt.Errorf("-scenarios: unknown scenario %q (want some of %s)", s, strings.Join(allScenarios, ", "))
		}
	}
	switch {
	case o.Events < 1000:
		return fmt.Errorf("-events %d: want at least 1000", o.Events)
	case o.Hosts < 10:
		return fmt.Errorf("-hosts %d: want at least 10", o.Hosts)
	case o.Slowloris < 1 || o.Slowloris > 5000:
		return fmt.Errorf("-slowloris %d: want 1 to 5000 connections", o.Slowloris)
	case o.Kills < 1:
		return fmt.Errorf("-kills %d: want at least 1", o.Kills)
	}
	if o.CleanEvery <= 0 {
		o.CleanEvery = time.Minute
	}
	if o.Deadline == 0 {
		o.Deadline = 10*time.Minute + time.Duration(o.Events/1000)*time.Second
	}
	if o.PGDSN == "" {
		o.PGDSN = os.Getenv("EVENTOPS_TEST_PG")
	}
	if o.PGDSN == "" {
		o.PGDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
