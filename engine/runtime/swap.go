package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/reload"
)

// swapTo is the next version of a running stream, built and validated while the current one
// runs. The input (topic, consumer group, and whether it checkpoints state) stays: a
// reload that changes those replaces the stream instead.
type swapTo struct {
	plan *StreamPlan
	// output replaces the running output; nil keeps it (its configuration did not change).
	output engine.Output
	done   chan SwapResult
}

// SwapResult says how a swap went.
type SwapResult struct {
	// Pause is how long the stream read nothing: from the swap being taken up, through
	// delivering and committing the batches in flight, to the next version running.
	Pause time.Duration
	// Kept lists the processors (by path) that are unchanged and carried on as they were,
	// state included; Moved those replaced by a changed version into which their state was
	// carried (alert states by rule name, for threshold).
	Kept, Moved []string
	Err         error
}

// exporter is a stateful processor that can hand its whole state to a replacement.
type exporter interface {
	Export(put func(partition int32, key string, value []byte))
}

// errRetired is what a replaced state keeper answers to a restore: the partition callbacks
// retry with the stream's current keeper.
var errRetired = errors.New("state keeper replaced by a reload")

// errSwapWithdrawn: the stream never took the swap up; it runs its current version.
var errSwapWithdrawn = errors.New("swap withdrawn")

// Swap hands the stream its next version and waits until the processing stage has applied
// it at a commit boundary (or ctx ends). Every record read before is processed, delivered
// and acked by the current version; every record read after, by the next.
func (s *stream) Swap(ctx context.Context, plan *StreamPlan, output engine.Output) (SwapResult, error) {
	if (s.state != nil) != plan.Stateful() {
		return SwapResult{}, fmt.Errorf("stream %s: a swap cannot change whether the stream keeps state; replace the stream", s.plan.Name)
	}
	sw := &swapTo{plan: plan, output: output, done: make(chan SwapResult, 1)}
	select {
	case s.swaps <- sw:
	case <-ctx.Done():
		return SwapResult{}, ctx.Err()
	}
	if c := s.wake.Load(); c != nil {
		(*c)()
	}
	select {
	case res := <-sw.done:
		return res, res.Err
	case <-ctx.Done():
	}
	// Withdraw the request if the stream has not taken it up; if it has, it is settling
	// and applies the next version as soon as its batch in flight is committed.
	select {
	case <-s.swaps:
		return SwapResult{}, fmt.Errorf("stream %s did not reach a commit boundary in time; it runs on unchanged: %w", s.plan.Name, errSwapWithdrawn)
	default:
		return SwapResult{}, fmt.Errorf("stream %s is still committing its batch in flight; it switches once that is done: %w", s.plan.Name, ctx.Err())
	}
}

// apply switches to the next version; called by the processing stage with nothing in
// flight. Unchanged processors (same position, type and configuration) carry on as they
// are; a changed stateful processor gets its predecessor's state when the predecessor can
// export it.
func (s *stream) apply(sw *swapTo) SwapResult {
	old, next := s.plan, sw.plan
	var res SwapResult
	if k := s.state; k != nil {
		k.mu.Lock() // no restore or drop of the old keeper's processors meanwhile
		defer k.mu.Unlock()
	}
	for i := range next.Processors {
		np := &next.Processors[i]
		if i >= len(old.Processors) || old.Processors[i].Type != np.Type {
			continue
		}
		op := old.Processors[i]
		if reload.Same(old.Config.Processors[i].Config, next.Config.Processors[i].Config) {
			np.Processor = op.Processor
			res.Kept = append(res.Kept, np.Path)
			continue
		}
		ex, canExport := op.Processor.(exporter)
		st, stateful := np.Processor.(engine.Stateful)
		if !canExport || !stateful {
			continue
		}
		byPartition := map[int32]map[string][]byte{}
		ex.Export(func(p int32, key string, value []byte) {
			if byPartition[p] == nil {
				byPartition[p] = map[string][]byte{}
			}
			byPartition[p][key] = value
		})
		for p, entries := range byPartition {
			if err := st.Restore(p, entries); err != nil {
				res.Err = fmt.Errorf("carrying the state of %s over: %w", np.Path, err)
				return res
			}
		}
		res.Moved = append(res.Moved, np.Path)
	}
	if s.state != nil {
		keeper := newStateKeeper(next, s.state.changelog, s.state.read, s.log)
		// The carried state is in the changelog already, under the same keys.
		for _, p := range keeper.procs {
			p.Changes(func(int32, string, []byte) {})
		}
		s.state.retired.Store(true)
		s.state = keeper
		s.keeperRef.Store(keeper)
	}
	if sw.output != nil {
		prev := s.output
		s.output = sw.output
		if to, ok := sw.output.(transactionalOutput); ok && s.state != nil {
			s.txnOut = to
		}
		if err := prev.Close(); err != nil {
			s.log.Warn("closing the replaced output", "err", err)
		}
	}
	s.plan = next
	s.setTicking()
	s.running.Store(next)
	return res
}

// setTicking ticks the stream when one of its processors depends on the clock.
func (s *stream) setTicking() {
	s.tickEvery = 0
	if hasTicker(s.plan.Processors) {
		s.tickEvery = s.tickInterval
	}
}

// restoreState restores partitions into the current keeper's processors.
func (s *stream) restoreState(ctx context.Context, partitions []int32) error {
	for {
		k := s.keeperRef.Load()
		err := k.restoreRetrying(ctx, partitions)
		if !errors.Is(err, errRetired) {
			return err
		}
	}
}

// dropState forgets partitions in the current keeper's processors.
func (s *stream) dropState(partitions []int32) {
	for {
		if err := s.keeperRef.Load().drop(partitions); !errors.Is(err, errRetired) {
			return
		}
	}
}
