package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/broker"
)

// condition names a reason a stream is not ready; the metric label and the start of what
// /-/ready says.
type condition string

const (
	condRestore    condition = "restore"
	condOutput     condition = "output"
	condDeadLetter condition = "dead_letter"
	condCheckpoint condition = "checkpoint"
	condAck        condition = "ack"
	condRegistry   condition = "schema_registry" // a batch's schemas could not be fetched
	condStalled    condition = "stalled"
)

// health is what keeps one stream from being ready now, each condition with its reason and
// since when. Retry loops and restores set and clear it; /-/ready and the
// eventops_stream_condition gauge read it. A nil *health ignores everything.
type health struct {
	gauge *prometheus.GaugeVec // labels stream, condition; nil: no metric
	name  string

	mu    sync.Mutex
	conds map[condition]healthEntry
}

type healthEntry struct {
	reason string
	since  time.Time
}

func newHealth(stream string, gauge *prometheus.GaugeVec) *health {
	return &health{name: stream, gauge: gauge, conds: map[condition]healthEntry{}}
}

// set records that c holds, with reason; the time it started holding is kept across calls.
func (h *health) set(c condition, reason string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock() // the gauge changes with the conditions: see clear
	e, ok := h.conds[c]
	if !ok {
		e.since = time.Now()
	}
	e.reason = reason
	h.conds[c] = e
	if h.gauge != nil {
		h.gauge.WithLabelValues(h.name, string(c)).Set(1)
	}
}

// clear records that c no longer holds.
func (h *health) clear(c condition) {
	if h == nil {
		return
	}
	// Under the lock, like set: a gauge written after it could be a set's 1 landing after a
	// clear's 0, leaving the metric at 1 with no condition; and /-/ready could say ready
	// while the metric still says otherwise.
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.conds[c]
	delete(h.conds, c)
	if ok && h.gauge != nil {
		h.gauge.WithLabelValues(h.name, string(c)).Set(0)
	}
}

// problem describes the oldest condition that holds, or is nil when none does.
func (h *health) problem() error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.conds) == 0 {
		return nil
	}
	names := make([]condition, 0, len(h.conds))
	for c := range h.conds {
		names = append(names, c)
	}
	slices.SortFunc(names, func(a, b condition) int { return h.conds[a].since.Compare(h.conds[b].since) })
	e := h.conds[names[0]]
	return fmt.Errorf("stream %s: %s: %s (for %s)", h.name, names[0], e.reason, time.Since(e.since).Round(time.Second))
}

// ready says why the pipeline is not ready, or nil: the broker does not answer, a stream
// has not joined its group, has a condition (a restore, failing writes), or is stalled.
func (l *live) ready() error {
	if err := l.probe.fresh(); err != nil {
		return err
	}
	streams := l.running()
	slices.SortFunc(streams, func(a, b *stream) int { return strings.Compare(a.plan.Name, b.plan.Name) })
	for _, s := range streams {
		if !s.joined() {
			return fmt.Errorf("stream %s has not joined its consumer group or restored its state yet", s.plan.Name)
		}
		if err := s.health.problem(); err != nil {
			return err
		}
		if hr, ok := s.output.(engine.HealthReporter); ok {
			if err := hr.Problem(); err != nil {
				return fmt.Errorf("stream %s: output: %w", s.plan.Name, err)
			}
		}
		if err := s.stalled(); err != nil {
			return err
		}
	}
	return nil
}

// joined says whether s's input has joined its group and restored its state; an input
// without a group (a file) has from the start.
func (s *stream) joined() bool {
	m, ok := s.input.(engine.GroupMember)
	return !ok || m.Joined()
}

// brokerProbe asks the broker for metadata every probeEvery, so that /-/ready can say the
// broker is unreachable even while no stream is writing (a reader only waits).
type brokerProbe struct {
	b     *broker.Broker
	gauge prometheus.Gauge
	log   *slog.Logger
	last  atomic.Pointer[error]

	mu      sync.Mutex // one check at a time
	checked time.Time  // when the last check finished
}

const probeEvery = 2 * time.Second

func newBrokerProbe(b *broker.Broker, gauge prometheus.Gauge, log *slog.Logger) *brokerProbe {
	return &brokerProbe{b: b, gauge: gauge, log: log}
}

// run probes until ctx ends.
func (p *brokerProbe) run(ctx context.Context) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		p.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *brokerProbe) check(ctx context.Context) { p.checkAfter(ctx, time.Time{}) }

// checkAfter probes unless a probe finished after asked while it waited for its turn.
func (p *brokerProbe) checkAfter(ctx context.Context, asked time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !asked.IsZero() && p.checked.After(asked) {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	err := p.b.Ping(pctx)
	if ctx.Err() != nil {
		return
	}
	p.checked = time.Now()
	was := p.last.Load()
	if err != nil {
		err = fmt.Errorf("broker unreachable: %w", err)
		p.last.Store(&err)
		p.gauge.Set(0)
		if was == nil {
			p.log.Warn("the broker does not answer", "err", err)
		}
		return
	}
	p.last.Store(nil)
	p.gauge.Set(1)
	if was != nil {
		p.log.Info("the broker answers again")
	}
}

// probeTimeout bounds one probe: a broker that does not answer in that time is unreachable
// as far as readiness goes (kubelet's default probe timeout is 1 s).
const probeTimeout = 900 * time.Millisecond

// fresh returns the failure of a probe that finished after it was called, or nil: a
// readiness check finds a broker that went down since the last timed probe at once. Checks
// that arrive while a probe runs share the next one, so a flood of readiness checks costs
// one request at a time.
func (p *brokerProbe) fresh() error {
	if p == nil {
		return nil
	}
	asked := time.Now()
	p.mu.Lock()
	done := p.checked.After(asked)
	p.mu.Unlock()
	if !done {
		p.checkAfter(context.Background(), asked)
	}
	return p.err()
}

// err is the last probe's failure, or nil.
func (p *brokerProbe) err() error {
	if p == nil {
		return nil
	}
	if e := p.last.Load(); e != nil {
		return *e
	}
	return nil
}
