package main

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// observation is what the monitor sees at one moment: the committed offset of every group
// on every partition of its input, the end offsets (high watermarks) and last stable
// offsets of the pipeline's topics, and the newest row id of each table.
type observation struct {
	at        time.Time
	committed map[string]map[int32]int64 // group -> partition -> offset (0 when none yet)
	ends      map[string]map[int32]int64 // topic -> partition -> high watermark
	stable    map[string]map[int32]int64 // topic -> partition -> last stable offset
	tables    map[string]int64           // table -> max(id), -1 when unreadable
	brokerErr error
	pgErr     error
}

// committedSum and rowsSum are the progress measures recoveries wait on.
func (ob observation) committedSum() int64 {
	var s int64
	for _, ps := range ob.committed {
		for _, o := range ps {
			s += o
		}
	}
	return s
}

func (ob observation) rowsSum() int64 {
	var s int64
	for _, n := range ob.tables {
		s += max(n, 0)
	}
	return s
}

// same reports whether nothing moved between two observations.
func (ob observation) same(o observation) bool {
	eq := func(a, b map[string]map[int32]int64) bool {
		return maps.EqualFunc(a, b, func(x, y map[int32]int64) bool { return maps.Equal(x, y) })
	}
	return eq(ob.committed, o.committed) && eq(ob.ends, o.ends) && maps.Equal(ob.tables, o.tables)
}

// observe asks the broker and PostgreSQL; what cannot be read (the broker or the database
// is down) keeps its previous value and the error is kept.
func (r *run) observe(ctx context.Context, prev observation) observation {
	ob := observation{at: time.Now(), committed: prev.committed, ends: prev.ends, stable: prev.stable, tables: prev.tables}
	if err := r.observeBroker(ctx, &ob); err != nil {
		ob.brokerErr = err
	}
	tables, err := r.observeTables(ctx)
	if err != nil {
		ob.pgErr = err
	} else {
		ob.tables = tables
	}
	return ob
}

func (r *run) observeBroker(ctx context.Context, ob *observation) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	topics := r.topics()
	ends, err := r.adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("end offsets: %w", err)
	}
	stable, err := r.adm.ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = stable.Error()
	}
	if err != nil {
		return fmt.Errorf("last stable offsets: %w", err)
	}
	committed := map[string]map[int32]int64{}
	for _, g := range r.groups {
		resps, err := r.adm.FetchOffsetsForTopics(ctx, g.name, g.topic)
		if err != nil {
			return fmt.Errorf("offsets of %s: %w", g.name, err)
		}
		ps := map[int32]int64{}
		for p, o := range resps[g.topic] {
			if o.Err == nil && o.At > 0 {
				ps[p] = o.At
			} else {
				ps[p] = 0
			}
		}
		committed[g.name] = ps
	}
	ob.ends, ob.stable, ob.committed = offsetsOf(ends), offsetsOf(stable), committed
	return nil
}

func offsetsOf(l kadm.ListedOffsets) map[string]map[int32]int64 {
	out := map[string]map[int32]int64{}
	for t, ps := range l {
		out[t] = map[int32]int64{}
		for p, o := range ps {
			out[t][p] = o.Offset
		}
	}
	return out
}

func (r *run) topics() []string {
	seen := map[string]bool{}
	var out []string
	for _, g := range r.groups {
		if !seen[g.topic] {
			seen[g.topic] = true
			out = append(out, g.topic)
		}
	}
	for _, t := range outputTopics {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

func (r *run) observeTables(ctx context.Context) (map[string]int64, error) {
	conn, err := pgConnect(ctx, r.dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	out := map[string]int64{}
	for _, t := range []string{"metrics", "alerts"} {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT coalesce(max(id), 0) FROM "+t).Scan(&n); err != nil {
			n = -1 // created when its sink starts
		}
		out[t] = n
	}
	return out, nil
}

// caughtUp reports whether every group has read all of its input and no transaction is
// open. A committed offset below the end counts as caught up when what lies between holds
// no record a read_committed consumer gets (transaction markers, aborted records).
func (r *run) caughtUp(ctx context.Context, ob observation) bool {
	for t, ps := range ob.ends {
		for p, end := range ps {
			if ob.stable[t][p] != end {
				return false // a transaction is open
			}
		}
	}
	for _, g := range r.groups {
		for p, end := range ob.ends[g.topic] {
			c := ob.committed[g.name][p]
			if c < end && r.hasData(ctx, g.topic, p, c, end) {
				return false
			}
		}
	}
	return true
}

// hasData reports whether a read_committed consumer gets a record in [from, end) of a
// partition, by fetching that range (transaction markers and aborted records are not
// records a consumer gets). Answers are cached: committed data does not change. When the
// broker does not answer, the answer is yes (not caught up).
func (r *run) hasData(ctx context.Context, topic string, p int32, from, end int64) bool {
	key := fmt.Sprintf("%s/%d/%d/%d", topic, p, from, end)
	r.cacheMu.Lock()
	v, ok := r.dataCache[key]
	r.cacheMu.Unlock()
	if ok {
		return v
	}
	found, err := r.fetchHasData(ctx, topic, p, from, end)
	if err != nil {
		return true
	}
	r.cacheMu.Lock()
	r.dataCache[key] = found
	r.cacheMu.Unlock()
	return found
}

func (r *run) fetchHasData(ctx context.Context, topic string, p int32, from, end int64) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	details, err := r.adm.ListTopics(ctx, topic)
	if err != nil {
		return false, err
	}
	id := details[topic].ID
	for off := from; off < end; {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MaxBytes, req.IsolationLevel = -1, 0, 8<<20, 1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p, off, 8<<20, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, r.kcl)
		if err != nil {
			return false, err
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return false, fmt.Errorf("fetch %s/%d: unexpected response", topic, p)
		}
		part := &resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
			return false, fmt.Errorf("fetch %s/%d at %d: %w", topic, p, off, err)
		}
		fp, last := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Offset: off, IsolationLevel: kgo.ReadCommitted(), Topic: topic, Partition: p},
			part, kgo.DefaultDecompressor(), nil)
		for _, rec := range fp.Records {
			if rec.Offset >= off && rec.Offset < end {
				return true, nil
			}
		}
		if last < off {
			return false, nil // nothing more in the log
		}
		off = last + 1
	}
	return false, nil
}

// waitComplete watches the run until it is complete and driverDone is closed, or it fails:
// a group with input to read has not committed for -stall, the run is not complete within
// -deadline, or ctx is done.
func (r *run) waitComplete(ctx context.Context, driverDone <-chan struct{}) error {
	start := time.Now()
	ob := r.observe(ctx, observation{})
	stableSince := time.Time{}
	var firstProgress time.Duration
	moved := map[string]time.Time{} // group -> when its committed offsets last changed
	lastReport := time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		next := r.observe(ctx, ob)
		r.updateRecoveries(next)
		if firstProgress == 0 && next.committedSum() > 0 {
			firstProgress = time.Since(start)
		}
		for _, g := range r.groups {
			if _, ok := moved[g.name]; !ok || !maps.Equal(next.committed[g.name], ob.committed[g.name]) {
				moved[g.name] = time.Now()
			}
		}
		if !next.same(ob) || next.brokerErr != nil || next.pgErr != nil {
			stableSince = time.Time{}
		} else if stableSince.IsZero() {
			stableSince = time.Now()
		}
		ob = next
		idle := !stableSince.IsZero() && time.Since(stableSince) >= 2*time.Second && r.caughtUp(ctx, ob)
		r.mu.Lock()
		r.last, r.idle = ob, idle
		lastRestart := r.lastRestart()
		r.mu.Unlock()
		if r.o.Verbose && time.Since(lastReport) >= 5*time.Second {
			lastReport = time.Now()
			r.logf("committed %d, rows %d, behind: %s", ob.committedSum(), ob.rowsSum(), strings.Join(r.behind(), "; "))
		}
		if idle && closed(driverDone) {
			r.finishRecoveries()
			r.mu.Lock()
			r.busy = stableSince.Sub(start) - firstProgress
			r.toDone = stableSince.Sub(start)
			r.mu.Unlock()
			return nil
		}
		if time.Since(lastRestart) > r.o.Stall {
			if stuck := r.stuckGroups(ctx, ob, moved); len(stuck) > 0 {
				tail := r.engineLogTail(15)
				if e := r.currentEngine(); e != nil && e.running() {
					e.dumpGoroutines(10 * time.Second)
					r.note("the engine was stopped with SIGQUIT: its goroutines are at the end of engine.log")
				}
				if b := r.currentBroker(); b != nil && b.running() {
					syscall.Kill(b.cmd.Process.Pid, syscall.SIGUSR1)
					r.note("the broker's goroutines (SIGUSR1) are in broker.log")
				}
				return fmt.Errorf("%w: %s; broker: %v; postgres: %v\nthe engine's last log lines:\n%s",
					errStalled, strings.Join(stuck, "; "), ob.brokerErr, ob.pgErr, tail)
			}
		}
		if time.Since(start) > r.o.Deadline {
			return fmt.Errorf("not complete within -deadline %v; behind: %s\nthe engine's last log lines:\n%s",
				r.o.Deadline, strings.Join(r.behind(), "; "), r.engineLogTail(15))
		}
	}
}

// stuckGroups are the groups that have had records to read and committed nothing for -stall.
func (r *run) stuckGroups(ctx context.Context, ob observation, moved map[string]time.Time) []string {
	var out []string
	for _, g := range r.groups {
		since := time.Since(moved[g.name])
		if since <= r.o.Stall {
			continue
		}
		for p, end := range ob.ends[g.topic] {
			if c := ob.committed[g.name][p]; c < end && r.hasData(ctx, g.topic, p, c, end) {
				out = append(out, fmt.Sprintf("%s has committed nothing for %v (at offset %d of %d in %s/%d)", g.name, since.Round(time.Second), c, end, g.topic, p))
				break
			}
		}
	}
	return out
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// isIdle reports whether, as of the last observation, the pipeline had nothing left to do.
func (r *run) isIdle() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.idle
}

// lastObservation is the monitor's newest observation.
func (r *run) lastObservation() observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}
