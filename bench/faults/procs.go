package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/broker"
)

// children is every process the suite started and has not stopped yet, so that a failure
// or Ctrl-C stops them all.
var children = &registry{stops: map[int]func(){}}

type registry struct {
	mu    sync.Mutex
	next  int
	stops map[int]func()
}

// add registers stop and returns the function that unregisters it.
func (r *registry) add(stop func()) (remove func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.next
	r.next++
	r.stops[id] = stop
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.stops, id)
	}
}

func (r *registry) killAll() {
	r.mu.Lock()
	stops := make([]func(), 0, len(r.stops))
	for _, s := range r.stops {
		stops = append(stops, s)
	}
	r.stops = map[int]func(){}
	r.mu.Unlock()
	for _, s := range stops {
		s()
	}
}

// proc is a child process whose stderr (and stdout) is kept in a file and its last lines in
// memory, for failure messages.
type proc struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{}
	remove  func()

	mu   sync.Mutex
	tail []string
	// lines, when set, sees every line the process prints.
	lines func(string)
}

// startProc starts argv in its own process group (a Ctrl-C in the terminal reaches the suite,
// which stops its children itself), logging to logPath.
func startProc(name, logPath string, lines func(string), argv ...string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: log file: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd.Stderr = cmd.Stdout // one pipe, one order
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{}), lines: lines}
	fmt.Fprintf(logf, "--- %s start %s: %s\n", name, time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%s: start: %w", name, err)
	}
	p.started = time.Now()
	p.remove = children.add(func() { p.kill() })
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			p.mu.Lock()
			p.tail = append(p.tail, line)
			if len(p.tail) > 400 {
				p.tail = p.tail[200:]
			}
			f := p.lines
			p.mu.Unlock()
			if f != nil {
				f(line)
			}
		}
		io.Copy(io.Discard, out)
		cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	return p, nil
}

// logTail is the last n lines the process printed.
func (p *proc) logTail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail[max(0, len(p.tail)-n):], "\n")
}

// kill sends SIGKILL to the process group and waits for the process to end.
func (p *proc) kill() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
	p.remove()
}

// stop asks the process to end (SIGTERM) and kills it after grace.
func (p *proc) stop(grace time.Duration) (clean bool) {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
		p.remove()
		return true
	case <-time.After(grace):
		p.kill()
		return false
	}
}

// dumpGoroutines asks a Go process for the stacks of all its goroutines (SIGQUIT: the
// runtime prints them to stderr, into the process's log, and exits), for a stall to be
// diagnosed after the fact. It waits at most grace for the process to end.
func (p *proc) dumpGoroutines(grace time.Duration) {
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGQUIT)
	select {
	case <-p.exited:
	case <-time.After(grace):
	}
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// brokerMain is `faults broker`: the engine's embedded broker (the same kfake options, and
// the engine's retention/compaction cleaner) in a process of its own, until SIGTERM.
func brokerMain(args []string) int {
	fs := flag.NewFlagSet("faults broker", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "directory where the broker persists its topics")
	listen := fs.String("listen", "", "address to listen on (127.0.0.1:PORT)")
	cleanEvery := fs.Duration("clean-every", time.Minute, "how often retention and compaction run (the engine's default cleaner_interval)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dataDir == "" || *listen == "" {
		fmt.Fprintln(os.Stderr, "faults broker: --data-dir and --listen are required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := broker.Start(ctx, config.Broker{Embedded: &config.Embedded{Listen: *listen, DataDir: *dataDir}}, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults broker:", err)
		return 1
	}
	var deferred atomic.Int64
	b.CompactionsDeferred = func() { deferred.Add(1) }
	started := time.Now()
	go dumpOnSIGUSR1(ctx)
	b.StartCleaner(ctx, *cleanEvery)
	fmt.Printf("faults broker listening on %s\n", strings.Join(b.Addrs(), ","))
	<-ctx.Done()
	b.Close()
	// In the broker's log: how often compaction waited (a reader behind, a transaction open).
	fmt.Printf("faults broker stopped after %v: %d of about %d cleaner passes deferred compaction\n",
		time.Since(started).Round(time.Second), deferred.Load(), int(time.Since(started) / *cleanEvery))
	return 0
}

// dumpOnSIGUSR1 writes the stacks of all goroutines to stderr (the broker's log) at each
// SIGUSR1, and goes on: the suite asks for them when a run stalls, and still reads the
// broker's topics afterwards.
func dumpOnSIGUSR1(ctx context.Context) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			fmt.Fprintf(os.Stderr, "--- goroutines at %s (SIGUSR1)\n", time.Now().UTC().Format(time.RFC3339Nano))
			pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
		}
	}
}

// brokerProc is the broker process of one run.
type brokerProc struct {
	*proc
	addr, dataDir, logPath string
	cleanEvery             time.Duration
}

// startBroker starts `faults broker` on addr and waits until it listens.
func startBroker(addr, dataDir, logPath string, cleanEvery time.Duration) (*brokerProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	listening := make(chan struct{})
	var once sync.Once
	p, err := startProc("broker", logPath, func(line string) {
		if strings.HasPrefix(line, "faults broker listening") {
			once.Do(func() { close(listening) })
		}
	}, self, "broker", "--data-dir", dataDir, "--listen", addr, "--clean-every", cleanEvery.String())
	if err != nil {
		return nil, err
	}
	select {
	case <-listening:
		return &brokerProc{proc: p, addr: addr, dataDir: dataDir, logPath: logPath, cleanEvery: cleanEvery}, nil
	case <-p.exited:
		return nil, fmt.Errorf("the broker process exited before it listened on %s:\n%s", addr, p.logTail(30))
	case <-time.After(60 * time.Second):
		p.kill()
		return nil, fmt.Errorf("the broker process did not listen on %s within 60s:\n%s", addr, p.logTail(30))
	}
}

// restart starts a new broker process on the same address and data directory.
func (b *brokerProc) restart() (*brokerProc, error) {
	return startBroker(b.addr, b.dataDir, b.logPath, b.cleanEvery)
}

// engineProc is the engine binary running the suite's pipeline.
type engineProc struct {
	*proc
	api string // http://127.0.0.1:PORT
}

func startEngine(bin, pipeline, api, logPath string) (*engineProc, error) {
	p, err := startProc("engine", logPath, nil, bin, "run", "-c", pipeline, "--instance-id", "faults", "--no-watch")
	if err != nil {
		return nil, err
	}
	return &engineProc{proc: p, api: "http://" + api}, nil
}

// runCmd runs a short command (pg_ctlcluster and friends) and returns its output in the
// error when it fails.
func runCmd(ctx context.Context, argv ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

var errStalled = errors.New("stalled")
