package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/eventops/eventops-engine/bench/internal/benchutil"
)

// driveKill9 kills the engine with SIGKILL -kills times and restarts it at once (or after
// -down: long enough, the broker aborts the killed instance's open transactions on its own
// timeout, and its cleaner runs, before the restart fences them). Each kill
// comes a random time (uniform in 0 to 2 × -kill-every, from the seed; by default
// -kill-every spreads the kills over the clean run's busy time) after the previous restart
// made its first progress (the first kill: after the time the clean run took to its first
// commit), so kills fall at different points of the backlog and of each stream's batches
// and transactions. Kills stop when the backlog is done.
func driveKill9(ctx context.Context, r *run) error {
	rng := rand.New(rand.NewPCG(r.o.Seed, 9))
	for k := 1; k <= r.o.Kills; k++ {
		delay := time.Duration(rng.Int64N(int64(2*r.o.KillEvery) + 1))
		if k == 1 {
			delay += r.o.startup // the clean run's time to its first commit
		}
		if !sleepUnlessIdle(ctx, r, delay) {
			r.note("the backlog was done after %d of %d kills", k-1, r.o.Kills)
			return ctx.Err()
		}
		r.killEngine()
		r.logf("kill %d of %d (after %v)", k, r.o.Kills, delay.Round(time.Millisecond))
		if r.o.Down > 0 && !sleepCtx(ctx, r.o.Down) {
			return ctx.Err()
		}
		if err := r.startEngine(ctx, true); err != nil {
			return err
		}
		r.mu.Lock()
		rec := r.recoveries[len(r.recoveries)-1]
		r.mu.Unlock()
		if rec.Idle {
			r.note("the backlog was done at kill %d of %d; no more kills", k, r.o.Kills)
			return nil
		}
		if !r.waitProgress(ctx, rec) {
			return ctx.Err()
		}
	}
	return nil
}

// waitFirstProgress waits until some group has committed an offset.
func (r *run) waitFirstProgress(ctx context.Context) bool {
	for ctx.Err() == nil {
		if r.lastObservation().committedSum() > 0 {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// sleepUnlessIdle sleeps d; false when the pipeline became idle (or ctx ended) first.
func sleepUnlessIdle(ctx context.Context, r *run, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil || r.isIdle() {
			return false
		}
		time.Sleep(min(50*time.Millisecond, time.Until(deadline)))
	}
	return ctx.Err() == nil && !r.isIdle()
}

// waitGroupShare waits until the groups reading topic have committed at least share of the
// input's records (summed over their partitions).
func (r *run) waitGroupShare(ctx context.Context, match func(group) bool, share float64) bool {
	want := int64(share * float64(len(r.in.records)))
	for ctx.Err() == nil {
		ob := r.lastObservation()
		var sum int64
		for _, g := range r.groups {
			if match(g) {
				for _, o := range ob.committed[g.name] {
					sum += o
				}
			}
		}
		if sum >= want {
			return true
		}
		if r.isIdle() {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// driveBrokerRestart kills the broker process with SIGKILL when normalize has committed 30%
// of the input, keeps it down for -broker-down, and starts it again on the same data
// directory and port.
func driveBrokerRestart(ctx context.Context, r *run) error {
	if !r.waitGroupShare(ctx, func(g group) bool { return g.topic == ingestTopic }, 0.3) {
		r.note("the backlog was done before the broker could be restarted mid-stream")
		return ctx.Err()
	}
	rec := r.newRecovery(ctx, "broker restart", progressCommitted)
	r.mu.Lock()
	b := r.broker
	r.mu.Unlock()
	b.kill()
	r.logf("broker killed")
	if r.o.Keep {
		// The data directory as the kill left it, before the restarted broker repairs and
		// compacts it: a failed run can be replayed from here.
		if err := os.CopyFS(b.dataDir+"-at-kill", os.DirFS(b.dataDir)); err != nil {
			r.note("could not keep the data directory as the kill left it: %v", err)
		}
	}
	ready := r.sampleReady(ctx)
	if !sleepCtx(ctx, r.o.BrokerDown) {
		return ctx.Err()
	}
	r.note("/-/ready while the broker was down: %s", ready.stop())
	nb, err := b.restart()
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.broker = nb
	r.mu.Unlock()
	r.arm(rec, nb.started)
	r.logf("broker restarted")
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// readySampler counts the answers of /-/ready while a fault lasts.
type readySampler struct {
	ok, notOK, noAnswer atomic.Int64
	done                chan struct{}
}

func (r *run) sampleReady(ctx context.Context) *readySampler {
	s := &readySampler{done: make(chan struct{})}
	go func() {
		cl := &http.Client{Timeout: time.Second}
		for ctx.Err() == nil && !closed(s.done) {
			e := r.currentEngine()
			resp, err := cl.Get(e.api + "/-/ready")
			switch {
			case err != nil:
				s.noAnswer.Add(1)
			case resp.StatusCode == http.StatusOK:
				s.ok.Add(1)
			default:
				s.notOK.Add(1)
			}
			if resp != nil {
				resp.Body.Close()
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
	return s
}

func (s *readySampler) stop() string {
	close(s.done)
	return fmt.Sprintf("200 %d times, not 200 %d times, no answer %d times", s.ok.Load(), s.notOK.Load(), s.noAnswer.Load())
}

// The second PostgreSQL cluster of pg-outage.
const secondCluster = "eventops_faults"

// setupSecondCluster creates a PostgreSQL cluster of its own (trust authentication, on a
// free port) for the pg-outage scenario's sinks; teardown drops it.
func setupSecondCluster(ctx context.Context, o *options) (string, func(), error) {
	ver, err := pgVersion()
	if err != nil {
		return "", nil, err
	}
	addr := benchutil.FreeAddr()
	port := addr[strings.LastIndex(addr, ":")+1:]
	if _, err := os.Stat(filepath.Join("/etc/postgresql", ver, secondCluster)); err == nil {
		if pgCluster(ctx, ver, "status") == nil {
			return "", nil, fmt.Errorf("the PostgreSQL cluster %s/%s is running: another fault suite is using it (or drop it: pg_dropcluster --stop %s %s)", ver, secondCluster, ver, secondCluster)
		}
		runCmd(ctx, "pg_dropcluster", ver, secondCluster) // left by an interrupted run
	}
	if err := runCmd(ctx, "pg_createcluster", ver, secondCluster, "-p", port, "--start-conf", "manual", "--", "--auth=trust"); err != nil {
		return "", nil, fmt.Errorf("creating the second PostgreSQL cluster: %w", err)
	}
	teardown := func() {
		if err := runCmd(context.Background(), "pg_dropcluster", "--stop", ver, secondCluster); err != nil {
			o.Log("dropping the second PostgreSQL cluster: %v", err)
		}
	}
	hba := "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"
	if err := os.WriteFile(filepath.Join("/etc/postgresql", ver, secondCluster, "pg_hba.conf"), []byte(hba), 0o640); err != nil {
		return "", teardown, err
	}
	if err := pgCluster(ctx, ver, "start"); err != nil {
		return "", teardown, err
	}
	o.Log("second PostgreSQL cluster %s/%s on port %s", ver, secondCluster, port)
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable", port), teardown, nil
}

func pgCluster(ctx context.Context, ver, action string, extra ...string) error {
	return runCmd(ctx, append([]string{"pg_ctlcluster", "--skip-systemctl-redirect", ver, secondCluster, action}, extra...)...)
}

// pgVersion is the newest PostgreSQL installed (a directory of /etc/postgresql).
func pgVersion() (string, error) {
	entries, err := os.ReadDir("/etc/postgresql")
	if err != nil {
		return "", fmt.Errorf("pg-outage needs the Debian PostgreSQL tools (pg_createcluster): %w", err)
	}
	var vers []int
	for _, e := range entries {
		if v, err := strconv.Atoi(e.Name()); err == nil {
			vers = append(vers, v)
		}
	}
	if len(vers) == 0 {
		return "", fmt.Errorf("no PostgreSQL version under /etc/postgresql")
	}
	return strconv.Itoa(slices.Max(vers)), nil
}

// drivePGOutage stops the sinks' PostgreSQL cluster (immediate shutdown, as a crash) when
// the metrics sink has committed 20% of the input, keeps it down for -outage, and starts
// it again.
func drivePGOutage(ctx context.Context, r *run) error {
	ver, err := pgVersion()
	if err != nil {
		return err
	}
	sink := func(g group) bool {
		return strings.HasPrefix(g.name, "eventops.sink.") && g.topic == "signals.metric.v1"
	}
	if !r.waitGroupShare(ctx, sink, 0.2) {
		r.note("the backlog was done before the outage could begin")
		return ctx.Err()
	}
	if err := pgCluster(ctx, ver, "stop", "-m", "immediate"); err != nil {
		return err
	}
	r.logf("PostgreSQL stopped for %v", r.o.Outage)
	ready := r.sampleReady(ctx)
	if !sleepCtx(ctx, r.o.Outage) {
		pgCluster(context.Background(), ver, "start")
		return ctx.Err()
	}
	r.note("/-/ready during the PostgreSQL outage: %s", ready.stop())
	rec := r.newRecovery(ctx, "postgres restart", progressRows)
	r.arm(rec, time.Now()) // from the start command: PostgreSQL accepts before it returns
	if err := pgCluster(ctx, ver, "start"); err != nil {
		return err
	}
	r.logf("PostgreSQL started")
	return nil
}
