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
	// DefaultLogEvery bounds the log lines about failures to about one per this interval,
	// so that a descriptor shortage (where accepts fail and succeed by turns as descriptors
	// come and go) does not flood the log.
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
	// LogEvery is how often failures are logged at most. Default DefaultLogEvery.
	LogEvery time.Duration
}

// Listener is a net.Listener whose Accept retries failures instead of returning them. Only
// closing the listener makes Accept return an error.
type Listener struct {
	net.Listener
	opts      Options
	log       *slog.Logger
	errors    *atomic.Uint64
	reports   failureLog
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
		reports:  failureLog{every: opts.LogEvery},
	}
}

// Accept waits for the next connection. A failed accept is logged, counted and tried again
// after a backoff; the error returned once the listener is closed wraps net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	backoff := time.Duration(0)
	for {
		conn, err := l.Listener.Accept()
		if err == nil {
			l.reports.succeeded(l.log)
			return conn, nil
		}
		if l.isClosed(err) {
			return nil, l.closedError(err)
		}
		l.errors.Add(1)
		l.reports.failed(l.log, err)
		backoff = min(max(2*backoff, l.opts.MinBackoff), l.opts.MaxBackoff)
		if !l.wait(backoff) {
			return nil, l.closedError(net.ErrClosed)
		}
	}
}

// Close closes the listener and ends a backoff under way.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// failureLog writes the log lines about failed accepts: a warning when accepts start to
// fail and a note when they work again, but while failures go on, or come and go as they
// do while descriptors are short, at most one warning per interval (with the count since
// the last line).
type failureLog struct {
	every time.Duration

	mu       sync.Mutex
	failing  bool      // the last accept failed
	warned   bool      // failures were reported and their end not yet
	since    time.Time // the first of the failures since the last line
	count    int       // failures since the last line
	lastWarn time.Time
}

func (f *failureLog) failed(log *slog.Logger, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if f.count == 0 {
		f.since = now
	}
	f.failing = true
	f.count++
	if !f.lastWarn.IsZero() && now.Sub(f.lastWarn) < f.every {
		return
	}
	if f.warned {
		log.Warn("accepts still failing; retrying with backoff", "err", err, "failures", f.count, "first_at", f.since.Format(time.RFC3339))
	} else {
		log.Warn("accept failed; retrying with backoff (out of file descriptors? see ulimit -n)", "err", err)
	}
	f.warned, f.lastWarn, f.count = true, now, 0
}

func (f *failureLog) succeeded(log *slog.Logger) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.failing {
		return
	}
	f.failing = false
	if !f.warned {
		return // failures within the interval after the last line: counted, not logged
	}
	log.Info("accepting connections again", "failures_since_last_log", f.count)
	f.warned, f.count = false, 0
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

// Serve listens on address (tcp, guarded) and runs serve on the listener in the background.
// An error serve returns that is not closed (the server's own word for a shutdown, such as
// http.ErrServerClosed) is logged: the server stopped serving.
func Serve(address string, opts Options, serve func(net.Listener) error, closed error) (net.Listener, error) {
	ln, err := Listen("tcp", address, opts)
	if err != nil {
		return nil, err
	}
	go func() {
		if err := serve(ln); err != nil && !errors.Is(err, closed) && opts.Logger != nil {
			opts.Logger.Error(opts.Name+" stopped serving", "err", err)
		}
	}()
	return ln, nil
}
