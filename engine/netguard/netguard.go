// Package netguard keeps the engine's listeners accepting through failures that pass.
//
// When Accept fails — EMFILE or ENFILE once the process or the host runs out of file
// descriptors, ECONNABORTED, a kernel short of buffers — the servers the engine embeds give
// up for good: fasthttp's Serve returns on any error that is not a timeout, and kfake's
// accept loop returns on any error at all. The process then lives on without serving. A
// Listener hides those failures from the server: it waits (exponential backoff, capped) and
// tries again, until Accept succeeds or the listener is closed, and it logs and counts what
// happened.
package netguard

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	DefaultMinBackoff = 5 * time.Millisecond
	DefaultMaxBackoff = time.Second
	// DefaultLogEvery bounds the log lines of one run of failures: the first failure and then
	// at most one line per this interval, so a descriptor shortage does not flood the log.
	DefaultLogEvery = 10 * time.Second
)

// Options configure a Listener.
type Options struct {
	// Name says which listener this is ("api", "broker"): in log lines and as the key of
	// AcceptErrors.
	Name   string
	Logger *slog.Logger
	// MinBackoff is the wait after the first failed Accept of a run; each further failure
	// doubles it, up to MaxBackoff. Defaults DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// LogEvery is how often a run of failures is logged after its first. Default
	// DefaultLogEvery.
	LogEvery time.Duration
}

// Listener is a net.Listener whose Accept retries failures instead of returning them. Only
// closing the listener makes Accept return an error.
type Listener struct {
	net.Listener
	opts      Options
	log       *slog.Logger
	errors    *atomic.Uint64
	closed    chan struct{}
	closeOnce sync.Once
}

// Listen listens on the address (see net.Listen) and guards the listener. It returns a
// net.Listener, never a nil *Listener in one, so that it can be returned as is.
func Listen(network, address string, opts Options) (net.Listener, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return Wrap(ln, opts), nil
}

// Wrap guards ln. Closing the Listener closes ln.
func Wrap(ln net.Listener, opts Options) *Listener {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(DefaultMaxBackoff, opts.MinBackoff)
	}
	if opts.LogEvery <= 0 {
		opts.LogEvery = DefaultLogEvery
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Listener{
		Listener: ln,
		opts:     opts,
		log:      log.With("listener", opts.Name, "addr", ln.Addr().String()),
		errors:   counter(opts.Name),
		closed:   make(chan struct{}),
	}
}

// Accept waits for the next connection. A failed accept is logged, counted and tried again
// after a backoff; the error returned once the listener is closed wraps net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	var run failureRun
	for {
		conn, err := l.Listener.Accept()
		if err == nil {
			l.recovered(&run)
			return conn, nil
		}
		if l.isClosed(err) {
			return nil, l.closedError(err)
		}
		l.failed(&run, err)
		if !l.wait(run.backoff) {
			return nil, l.closedError(net.ErrClosed)
		}
	}
}

// Close closes the listener and ends a backoff under way.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// failureRun is a run of failed accepts without a success between them.
type failureRun struct {
	count   int
	first   time.Time
	logged  time.Time
	backoff time.Duration
}

// failed records a failed accept: counted every time, logged on the first of a run and then
// every LogEvery; the backoff doubles up to MaxBackoff.
func (l *Listener) failed(run *failureRun, err error) {
	l.errors.Add(1)
	now := time.Now()
	run.count++
	if run.count == 1 {
		run.first, run.logged, run.backoff = now, now, l.opts.MinBackoff
		l.log.Warn("accept failed; retrying with backoff (out of file descriptors? see ulimit -n)", "err", err)
		return
	}
	run.backoff = min(2*run.backoff, l.opts.MaxBackoff)
	if now.Sub(run.logged) >= l.opts.LogEvery {
		run.logged = now
		l.log.Warn("accept still failing; retrying", "err", err, "failures", run.count, "since", run.first.Format(time.RFC3339))
	}
}

// recovered logs the end of a run of failures, if there was one.
func (l *Listener) recovered(run *failureRun) {
	if run.count == 0 {
		return
	}
	l.log.Info("accepting connections again", "failures", run.count, "after", time.Since(run.first).Round(time.Millisecond).String())
	*run = failureRun{}
}

// wait sleeps for d, or until the listener is closed (false).
func (l *Listener) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.closed:
		return false
	}
}

// isClosed reports whether err means the listener is closed rather than a failure that
// may pass.
func (l *Listener) isClosed(err error) bool {
	select {
	case <-l.closed:
		return true
	default:
	}
	return errors.Is(err, net.ErrClosed)
}

// closedError is what Accept returns once the listener is closed. fasthttp recognises a
// closed listener by the text of net.ErrClosed, which the wrapping keeps.
func (l *Listener) closedError(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return err
	}
	return fmt.Errorf("%w (%v)", net.ErrClosed, err)
}

// acceptErrors counts failed accepts per listener name for the whole process, so that the
// listeners of components without metrics of their own (the embedded broker) are counted
// too; telemetry exports them.
var acceptErrors sync.Map // name → *atomic.Uint64

func counter(name string) *atomic.Uint64 {
	c, _ := acceptErrors.LoadOrStore(name, new(atomic.Uint64))
	return c.(*atomic.Uint64)
}

// AcceptErrors returns how many accepts have failed in this process, by listener name.
func AcceptErrors() map[string]uint64 {
	out := map[string]uint64{}
	acceptErrors.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}
