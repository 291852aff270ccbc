package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/eventops/eventops-engine/engine"
)

// laneCapacity is how many batches may wait for one Alertmanager. Past it the oldest is
// dropped: an Alertmanager that far behind gets the firing alerts again at the next resend,
// and resolves the others itself at their endsAt.
const laneCapacity = 256

// errLaneFull is why a lane dropped a batch.
var errLaneFull = errors.New("dropped: too many batches waited for this Alertmanager")

// lane sends, in order, what goes to one Alertmanager, so that a slow or down one holds back
// neither the stream nor the others. A batch is queued on every lane at once, under the
// output's lock, so each Alertmanager gets writes and resends in the order they were made.
type lane struct {
	index  int
	sender *Output
	log    *slog.Logger

	mu    sync.Mutex
	queue []*laneJob
	wake  chan struct{}
}

// laneJob is one batch for one lane: a write (settled with the batch's tally) or a resend.
type laneJob struct {
	batch  []*engine.Record
	tally  *tally // nil for a resend
	resend bool
}

func newLane(index int, sender *Output, log *slog.Logger) *lane {
	return &lane{index: index, sender: sender, log: log, wake: make(chan struct{}, 1)}
}

// enqueue adds j, dropping the oldest waiting job when the lane is full.
func (l *lane) enqueue(j *laneJob) {
	l.mu.Lock()
	var dropped *laneJob
	if len(l.queue) >= laneCapacity {
		dropped, l.queue = l.queue[0], l.queue[1:]
	}
	l.queue = append(l.queue, j)
	l.mu.Unlock()
	if dropped != nil {
		l.log.Warn("alertmanager: too many batches wait for this Alertmanager; the oldest is dropped", "url", l.sender.target, "records", len(dropped.batch))
		dropped.settle(l.index, nil, errLaneFull)
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// next waits for the oldest job, or returns nil once ctx ends.
func (l *lane) next(ctx context.Context) *laneJob {
	for {
		l.mu.Lock()
		if len(l.queue) > 0 {
			j := l.queue[0]
			l.queue = l.queue[1:]
			l.mu.Unlock()
			return j
		}
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-l.wake:
		}
	}
}

// run sends the lane's jobs until ctx ends; the jobs still waiting then are settled as not
// sent, so that no Write waits on a lane that stopped.
func (l *lane) run(ctx context.Context) {
	for j := l.next(ctx); j != nil; j = l.next(ctx) {
		l.send(ctx, j)
	}
	l.mu.Lock()
	left := l.queue
	l.queue = nil
	l.mu.Unlock()
	for _, j := range left {
		j.settle(l.index, nil, ctx.Err())
	}
}

func (l *lane) send(ctx context.Context, j *laneJob) {
	if j.resend {
		failed, err := l.sender.resend(ctx, j.batch)
		if err != nil || failed > 0 {
			l.log.Warn("alertmanager: could not send the firing alerts again; trying at the next interval", "url", l.sender.target, "alerts", len(j.batch), "undelivered", failed, "err", err)
		}
		return
	}
	var rejects engine.Rejects
	err := l.sender.Write(ctx, j.batch, &rejects)
	j.settle(l.index, &rejects, err)
}

func (j *laneJob) settle(lane int, rejects *engine.Rejects, err error) {
	if j.tally != nil {
		j.tally.settle(lane, j.batch, rejects, err)
	}
}

// tally follows one Write's batch across the lanes: a record is sent once one Alertmanager
// accepted it (they share what they get), and given up once every one refused it.
type tally struct {
	lanes    int
	mu       sync.Mutex
	accepted map[*engine.Record]bool
	refused  map[*engine.Record]int
	reasons  map[*engine.Record]error
	open     int // records neither accepted nor refused by every lane
	done     chan struct{}
}

func newTally(batch []*engine.Record, lanes int) *tally {
	t := &tally{lanes: lanes, accepted: map[*engine.Record]bool{}, refused: map[*engine.Record]int{},
		reasons: map[*engine.Record]error{}, open: len(batch), done: make(chan struct{})}
	if t.open == 0 {
		close(t.done)
	}
	return t
}

// settle takes one lane's outcome: the records in rejects were refused, the others
// accepted, unless err says the lane did not send the batch at all.
func (t *tally) settle(lane int, batch []*engine.Record, rejects *engine.Rejects, err error) {
	refusedHere := map[*engine.Record]error{}
	if rejects != nil {
		for _, it := range rejects.Items {
			refusedHere[it.Record] = it.Err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, rec := range batch {
		reason, refused := refusedHere[rec]
		if err != nil {
			reason, refused = fmt.Errorf("alertmanager %d: %w", lane+1, err), true
		}
		t.count(rec, reason, refused)
	}
}

// count takes one lane's outcome for rec. Call with mu held.
func (t *tally) count(rec *engine.Record, reason error, refused bool) {
	if t.accepted[rec] || t.refused[rec] == t.lanes {
		return
	}
	if refused {
		t.refused[rec]++
		t.reasons[rec] = reason
		if t.refused[rec] < t.lanes {
			return
		}
	} else {
		t.accepted[rec] = true
	}
	if t.open--; t.open == 0 {
		close(t.done)
	}
}

// rejects adds to out the records every lane refused, each with its last reason.
func (t *tally) rejects(batch []*engine.Record, out *engine.Rejects) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, rec := range batch {
		if t.refused[rec] == t.lanes {
			out.Add(rec, "output", t.reasons[rec])
		}
	}
}
