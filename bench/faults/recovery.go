package main

import (
	"context"
	"time"
)

// progressKind says what counts as progress after a restart.
type progressKind int

const (
	// progressCommitted: some group committed a higher offset (engine and broker restarts).
	progressCommitted progressKind = iota
	// progressRows: a sink wrote a row (PostgreSQL restarts).
	progressRows
)

// recovery is one restart and how long the pipeline took to move again after it.
type recovery struct {
	What string `json:"what"`
	// Ready is the time from the process start to the first /-/ready 200 (engine restarts).
	Ready time.Duration `json:"ready_ns,omitempty"`
	// Progress is the time from the process start to the first progress; 0 when there was
	// nothing left to do (Idle) or the run ended first (Never).
	Progress time.Duration `json:"progress_ns"`
	Idle     bool          `json:"idle,omitempty"`
	Never    bool          `json:"never,omitempty"`

	start time.Time
	armed bool // start is set: the restarted process runs
	kind  progressKind
	base  int64
	done  bool
	ready time.Duration
}

// newRecovery registers a restart about to happen; the caller arms it when the process
// has started. The progress baseline is taken now, from a fresh observation, so that a
// commit of the process that was just killed does not count as progress.
func (r *run) newRecovery(ctx context.Context, what string, kind progressKind) *recovery {
	ob := r.observe(ctx, r.lastObservation())
	rec := &recovery{What: what, kind: kind}
	rec.base = rec.measure(ob)
	if r.caughtUp(ctx, ob) {
		rec.Idle, rec.done = true, true // nothing left to do: no progress to wait for
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recoveries = append(r.recoveries, rec)
	return rec
}

// arm sets when the restarted process started, from which its recovery is measured.
func (r *run) arm(rec *recovery, start time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec.start, rec.armed = start, true
}

func (rec *recovery) measure(ob observation) int64 {
	if rec.kind == progressRows {
		return ob.rowsSum()
	}
	return ob.committedSum()
}

// updateRecoveries marks the recoveries whose progress shows in ob.
func (r *run) updateRecoveries(ob observation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recoveries {
		if rec.done || !rec.armed || ob.at.Before(rec.start) {
			continue
		}
		if (rec.kind == progressCommitted && ob.brokerErr != nil) || (rec.kind == progressRows && ob.pgErr != nil) {
			continue
		}
		if rec.measure(ob) > rec.base {
			rec.Progress, rec.done = ob.at.Sub(rec.start), true
		}
	}
}

// finishRecoveries closes the recoveries still open when the run ends.
func (r *run) finishRecoveries() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recoveries {
		rec.Ready = rec.ready
		if !rec.done {
			rec.Never, rec.done = true, true
		}
	}
}

// lastRestart is when the newest restart began (zero when none); the lock is held.
func (r *run) lastRestart() time.Time {
	var t time.Time
	for _, rec := range r.recoveries {
		if rec.start.After(t) {
			t = rec.start
		}
	}
	return t
}

// waitProgress waits until rec shows progress or the run is idle.
func (r *run) waitProgress(ctx context.Context, rec *recovery) bool {
	for ctx.Err() == nil {
		r.mu.Lock()
		done, idle := rec.done, r.idle
		r.mu.Unlock()
		if done {
			return true
		}
		if idle {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}
