package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// errRetired is what a replaced state keeper answers to a restore: the partition callbacks
// retry with the stream's current keeper.
var errRetired = errors.New("state keeper replaced by a reload")

// errSwapWithdrawn: the stream never took the swap up; it runs its current version.
var errSwapWithdrawn = errors.New("swap withdrawn")

// Swap hands the stream its next version and waits until the processing stage has applied
// it at a commit boundary (or ctx ends). Every record read before is processed, delivered
// and acked by the current version; every record read after, by the next.
func (s *stream) Swap(ctx context.Context, plan *StreamPlan, output engine.Output) (SwapResult, error) {
	if (s.state != nil) != plan.Transactional() {
		return SwapResult{}, fmt.Errorf("stream %s: a swap cannot change whether the stream commits in transactions (keeps state or writes a topic); replace the stream", s.plan.Name)
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
// flight. Unchanged processors (same type and configuration) carry on as they are, state
// and all, also when they moved (a processor was inserted or removed before them); a
// changed stateful processor at the same position gets its predecessor's state when the
// predecessor can export it.
//
// A stateful processor's changelog entries are keyed by its name, which holds its position
// (processors[1].window). The next checkpoint therefore rewrites the state of a processor
// that moved under its new name and deletes it under the old one, and deletes the entries
// of stateful processors that are gone; until that checkpoint commits, a restore also reads
// a moved processor's entries under its old name (stateKeeper.aliases).
func (s *stream) apply(sw *swapTo) SwapResult {
	old, next := s.plan, sw.plan
	var res SwapResult
	if k := s.state; k != nil {
		k.mu.Lock() // no restore or drop of the old keeper's processors meanwhile
		defer k.mu.Unlock()
	}
	used := make([]bool, len(old.Processors))
	matched := make([]bool, len(next.Processors))
	unchanged := func(i, j int) bool {
		return old.Processors[j].Type == next.Processors[i].Type && reload.Same(old.Config.Processors[j].Config, next.Config.Processors[i].Config)
	}
	renamed := map[string]string{} // new name -> old name of kept stateful processors
	keep := func(i, j int) {
		np := &next.Processors[i]
		np.Processor = old.Processors[j].Processor
		used[j], matched[i] = true, true
		res.Kept = append(res.Kept, np.Path)
		if _, stateful := np.Processor.(engine.Stateful); stateful && old.Processors[j].Name != np.Name {
			renamed[np.Name] = old.Processors[j].Name
		}
	}
	for i := range next.Processors { // unchanged in place
		if i < len(old.Processors) && unchanged(i, i) {
			keep(i, i)
		}
	}
	for i := range next.Processors { // unchanged, moved
		for j := range old.Processors {
			if !matched[i] && !used[j] && unchanged(i, j) {
				keep(i, j)
			}
		}
	}
	for i := range next.Processors { // changed in place: carry the state over
		if matched[i] || i >= len(old.Processors) || used[i] || old.Processors[i].Type != next.Processors[i].Type {
			continue
		}
		np := &next.Processors[i]
		ex, canExport := old.Processors[i].Processor.(engine.StateExporter)
		st, stateful := np.Processor.(engine.Stateful)
		if !canExport || !stateful {
			continue
		}
		used[i] = true
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
		keeper.aliases = renamed
		for _, p := range keeper.procs {
			if from, ok := renamed[p.name]; ok {
				keeper.rename(p, from)
			}
		}
		for j, op := range old.Processors {
			if ex, ok := op.Processor.(engine.StateExporter); ok && !used[j] && !slices.ContainsFunc(keeper.procs, func(p statefulProc) bool { return p.name == op.Name }) {
				keeper.forget(op.Name, ex) // gone: its entries are deleted
			}
		}
		s.state.retired.Store(true)
		s.state = keeper
		s.keeperRef.Store(keeper)
	}
	if sw.output != nil {
		prev := s.output
		s.output = sw.output
		s.txnOut = nil
		if to, ok := sw.output.(transactionalOutput); ok && s.state != nil {
			s.txnOut = to
		}
		if err := prev.Close(); err != nil {
			s.log.Warn("closing the replaced output", "err", err)
		}
	}
	s.plan = next
	s.commitEvery = next.Config.Input.CommitInterval.D()
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

// restoreState restores partitions into the current keeper's processors and returns the
// offsets their checkpoints were taken at.
func (s *stream) restoreState(ctx context.Context, partitions []int32) (map[int32]int64, error) {
	for {
		k := s.keeperRef.Load()
		offsets, err := k.restoreRetrying(ctx, partitions, s.health)
		if !errors.Is(err, errRetired) {
			return offsets, err
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
