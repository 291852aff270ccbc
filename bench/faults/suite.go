package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/bench/internal/benchutil"
)

// results is everything the suite prints.
type results struct {
	Machine string     `json:"machine"`
	Events  int        `json:"events"`
	Hosts   int        `json:"hosts"`
	Seed    uint64     `json:"seed"`
	Clean   runSummary `json:"clean"`
	// CleanFailures are the clean run's own checks that failed: it is then no reference,
	// and every scenario compared with it may differ for that reason alone.
	CleanFailures []string          `json:"clean_failures,omitempty"`
	Scenarios     []*scenarioResult `json:"scenarios"`
	Pass          bool              `json:"pass"`
}

// runSummary is what one run produced, per topic and table, and how long it took.
type runSummary struct {
	Duration time.Duration `json:"duration_ns"`
	// Busy is the time from the first commit to the last change of an offset or a table.
	Busy time.Duration `json:"busy_ns"`
	// ToDone is the time from the engine's start to the last change.
	ToDone  time.Duration  `json:"to_done_ns"`
	Counts  map[string]int `json:"counts"`
	Failure string         `json:"failure,omitempty"`
}

type scenarioResult struct {
	Name        string        `json:"name"`
	Run         runSummary    `json:"run"`
	Comparisons []comparison  `json:"comparisons"`
	Recoveries  []*recovery   `json:"recoveries"`
	Recovery    *recoveryStat `json:"recovery,omitempty"`
	Checks      []check       `json:"checks,omitempty"`
	Notes       []string      `json:"notes,omitempty"`
	Failures    []string      `json:"failures,omitempty"`
	Pass        bool          `json:"pass"`
}

// check is a scenario's own expectation beyond the comparison (the oversized records were
// dead-lettered; the API answered during the flood).
type check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// scenario is how one scenario runs: the input it uses, where its sinks write, what it
// does while the pipeline runs, and what it checks afterwards.
type scenario struct {
	input  func(clean *input) *input
	setup  func(ctx context.Context, o *options) (pgBase string, teardown func(), err error)
	driver func(ctx context.Context, r *run) error
	checks func(snap *snapshot) []check
}

func scenarios() map[string]scenario {
	return map[string]scenario{
		"control":        {driver: driveNothing},
		"kill9":          {driver: driveKill9},
		"broker-restart": {driver: driveBrokerRestart},
		"pg-outage":      {setup: setupSecondCluster, driver: drivePGOutage},
		"oversized":      {input: (*input).withOversized, checks: checkOversized},
		"slowloris":      {driver: driveSlowloris},
	}
}

// driveNothing injects no fault: the control scenario is a second clean run, so a difference
// from the first is the pipeline's own nondeterminism, not a fault's doing.
func driveNothing(context.Context, *run) error { return nil }

// runSuite builds the engine, runs the clean run and then every scenario.
func runSuite(ctx context.Context, o options) (*results, error) {
	root, err := benchutil.RepoRoot()
	if err != nil {
		return nil, err
	}
	if conn, err := pgConnect(ctx, o.PGDSN); err != nil {
		return nil, fmt.Errorf("PostgreSQL is not reachable at %s (set EVENTOPS_TEST_PG): %w", o.PGDSN, err)
	} else {
		conn.Close(context.Background())
	}
	binDir, err := os.MkdirTemp("", "eventops-faults-bin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(binDir)
	bin := filepath.Join(binDir, "eventops-engine")
	o.Log("building the engine")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/eventops-engine")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the engine: %w\n%s", err, out)
	}
	in := makeInput(o.Events, o.Hosts, o.Seed)
	res := &results{Machine: machine(), Events: o.Events, Hosts: o.Hosts, Seed: o.Seed, Pass: true}

	o.Log("clean run: %d events", o.Events)
	cleanSnap, clean := runOnce(ctx, &o, "clean", bin, root, o.PGDSN, in, scenario{})
	res.Clean = clean
	if cleanSnap == nil || clean.Failure != "" {
		return res, fmt.Errorf("the clean run failed, nothing to compare with: %s", clean.Failure)
	}
	for _, c := range cleanSnap.checks {
		if !c.OK {
			res.CleanFailures = append(res.CleanFailures, c.Name+": "+c.Detail)
			res.Pass = false
		}
	}
	o.startup = clean.ToDone - clean.Busy
	if o.KillEvery == 0 {
		// Spread the kills over the time the clean run took: kills during the backlog.
		o.KillEvery = max(clean.Busy/time.Duration(o.Kills+1), 50*time.Millisecond)
		o.Log("kill9: a kill every %v on average (the clean run was busy %v)", o.KillEvery.Round(time.Millisecond), clean.Busy.Round(time.Millisecond))
	}
	all := scenarios()
	for _, name := range o.Scenarios {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		sc := all[name]
		sr := runScenario(ctx, &o, name, sc, bin, root, in, cleanSnap)
		res.Scenarios = append(res.Scenarios, sr)
		res.Pass = res.Pass && sr.Pass
		o.Log("%s: %s", name, verdict(sr.Pass))
	}
	return res, nil
}

func runScenario(ctx context.Context, o *options, name string, sc scenario, bin, root string, clean *input, cleanSnap *snapshot) *scenarioResult {
	sr := &scenarioResult{Name: name}
	in := clean
	if sc.input != nil {
		in = sc.input(clean)
	}
	pgBase := o.PGDSN
	if sc.setup != nil {
		base, teardown, err := sc.setup(ctx, o)
		if teardown != nil {
			defer teardown()
		}
		if err != nil {
			sr.Failures = append(sr.Failures, "setup: "+err.Error())
			return sr
		}
		pgBase = base
	}
	o.Log("scenario %s: %d events", name, len(in.records))
	snap, rs := runOnce(ctx, o, name, bin, root, pgBase, in, sc)
	sr.Run = rs
	if rs.Failure != "" {
		sr.Failures = append(sr.Failures, rs.Failure)
	}
	if snap == nil {
		return sr
	}
	sr.Notes, sr.Recoveries = snap.notes, snap.recoveries
	sr.Comparisons = compareSnapshots(cleanSnap, snap)
	for _, c := range sr.Comparisons {
		if c.Lost+c.Duplicated+c.Differing+c.Extra > 0 {
			sr.Failures = append(sr.Failures, fmt.Sprintf("%s: %d lost, %d duplicated, %d differing, %d extra", c.Name, c.Lost, c.Duplicated, c.Differing, c.Extra))
		}
	}
	sr.Checks = snap.checks
	if sc.checks != nil {
		sr.Checks = append(sr.Checks, sc.checks(snap)...)
	}
	for _, c := range sr.Checks {
		if !c.OK {
			sr.Failures = append(sr.Failures, c.Name+": "+c.Detail)
		}
	}
	sr.Recovery = recoveryStats(sr.Recoveries)
	if sr.Recovery != nil && sr.Recovery.Max > o.RecoveryTarget {
		sr.Failures = append(sr.Failures, fmt.Sprintf("recovery: the slowest restart made progress after %v (target %v)", sr.Recovery.Max.Round(100*time.Millisecond), o.RecoveryTarget))
	}
	for _, rec := range sr.Recoveries {
		if rec.Never {
			sr.Failures = append(sr.Failures, fmt.Sprintf("recovery: after the %s the pipeline never made progress", rec.What))
		}
	}
	sr.Pass = len(sr.Failures) == 0
	return sr
}

// runOnce runs the pipeline on in with the scenario's driver and returns what it produced.
// A run that fails after it started still returns its outputs, to be compared.
func runOnce(ctx context.Context, o *options, name, bin, root, pgBase string, in *input, sc scenario) (*snapshot, runSummary) {
	var sum runSummary
	r, err := newRun(ctx, o, name, bin, root, pgBase, in)
	if r != nil {
		defer r.close()
	}
	if err != nil {
		sum.Failure = "preparing the run: " + err.Error()
		return nil, sum
	}
	start := time.Now()
	if err := r.startEngine(ctx, false); err != nil {
		sum.Failure = err.Error()
		return nil, sum
	}
	driverCtx, cancelDriver := context.WithCancel(ctx)
	driverDone := make(chan struct{})
	var driverErr error
	go func() {
		defer close(driverDone)
		if sc.driver != nil {
			driverErr = sc.driver(driverCtx, r)
		}
	}()
	waitErr := r.waitComplete(ctx, driverDone)
	cancelDriver()
	<-driverDone
	sum.Duration = time.Since(start)
	switch {
	case waitErr != nil:
		sum.Failure = waitErr.Error()
	case driverErr != nil && !errors.Is(driverErr, context.Canceled):
		sum.Failure = "injecting the fault: " + driverErr.Error()
	}
	if ctx.Err() != nil {
		sum.Failure = "interrupted"
		return nil, sum
	}
	r.finishRecoveries()
	snap, err := r.collect(ctx)
	if err != nil {
		sum.Failure = strings.TrimSpace(sum.Failure + "; reading the outputs: " + err.Error())
		return nil, sum
	}
	sum.Counts = snap.counts()
	r.mu.Lock()
	sum.Busy, sum.ToDone = r.busy, r.toDone
	r.mu.Unlock()
	return snap, sum
}

func verdict(pass bool) string {
	if pass {
		return "PASS"
	}
	return "FAIL"
}

// recoveryStat is min / median / max of the measured recoveries.
type recoveryStat struct {
	N      int           `json:"n"`
	Min    time.Duration `json:"min_ns"`
	Median time.Duration `json:"median_ns"`
	Max    time.Duration `json:"max_ns"`
}

func recoveryStats(recs []*recovery) *recoveryStat {
	var ds []time.Duration
	for _, r := range recs {
		if !r.Idle && !r.Never {
			ds = append(ds, r.Progress)
		}
	}
	if len(ds) == 0 {
		return nil
	}
	slices.Sort(ds)
	return &recoveryStat{N: len(ds), Min: ds[0], Median: ds[len(ds)/2], Max: ds[len(ds)-1]}
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if i := strings.Index(l, ":"); i >= 0 {
					model = strings.TrimSpace(l[i+1:])
					break
				}
			}
		}
	}
	return fmt.Sprintf("%s/%s, %d CPUs, %s", goruntime.GOOS, goruntime.GOARCH, goruntime.NumCPU(), model)
}
