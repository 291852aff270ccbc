// Command throughput measures how many events per CPU-second the engine processes the
// quickstart's work at, in one process with nothing in front of it or behind it, next to two
// peers measured in the same run on the same events:
//
//   - eventops-engine on bench/throughput/quickstart.yaml: a file input (raw agent
//     readings, one JSON object per line) checked against the raw-agent schema, the
//     quickstart's normalize mapping and CMDB enrich, its threshold rule, a drop output;
//   - a plain Go loop doing the same work by hand (loop.go): the ceiling;
//   - Redpanda Connect on bench/throughput/connect/quickstart.yaml, when a redpanda-connect
//     binary is given (-connect) or on the PATH.
//
// Each contender runs as its own process over the same file, in turns (engine, loop, Connect;
// again for each round), and is measured by its CPU time (user + system, from the kernel's
// accounting of the child) and wall time. Before the timed rounds, one untimed pass of each
// prints its alerts, and the run stops if they do not find the same number of alert
// transitions: the figures compare the same work.
//
//	go run ./bench/throughput                         # 1,000,000 events, 3 rounds
//	go run ./bench/throughput -events 2000000 -rounds 5 -connect /path/to/redpanda-connect
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/bench/internal/benchutil"
)

type options struct {
	events, hosts, rounds int
	bin, connect          string
	keep                  bool
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == "-loop" { // the plain Go loop, run as a child
		if err := runLoop(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "loop:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.IntVar(&o.events, "events", 1_000_000, "events in the file")
	flag.IntVar(&o.hosts, "hosts", 1000, "hosts (series) in the events; three are in examples/cmdb.csv")
	flag.IntVar(&o.rounds, "rounds", 3, "timed rounds; each runs every contender once")
	flag.StringVar(&o.bin, "bin", "", "engine binary (default: built from this checkout)")
	flag.StringVar(&o.connect, "connect", "", "redpanda-connect binary (default: redpanda-connect on the PATH, if any)")
	flag.BoolVar(&o.keep, "keep", false, "keep the events file and the run directory")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "throughput:", err)
		os.Exit(1)
	}
}

// contender is one program doing the work.
type contender struct {
	name string
	cmd  func(check bool) *exec.Cmd
	// run, if set, runs the command to the end of the work instead of to its exit (a
	// pipeline that reads a topic does not stop by itself).
	run func(cmd *exec.Cmd) ([]byte, usage, error)
	// alerts counts the alert transitions in the output of a check run.
	alerts func(stdout []byte) int
}

func run(o options) error {
	root, err := benchutil.RepoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "eventops-throughput-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Println("run directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	events, cmdb := filepath.Join(dir, "events.ndjson"), filepath.Join(root, "examples", "cmdb.csv")
	planted, err := generate(events, o.events, o.hosts)
	if err != nil {
		return err
	}
	contenders, cleanup, err := setUp(root, dir, events, cmdb, o)
	defer cleanup()
	if err != nil {
		return err
	}
	fmt.Printf("%d events (%d hosts, %d threshold transitions planted), %s\n", o.events, o.hosts, planted, benchutil.Machine())
	for _, c := range contenders {
		out, _, err := c.measure(true)
		if err != nil {
			return fmt.Errorf("%s (check pass): %w", c.name, err)
		}
		if n := c.alerts(out); n != planted {
			return fmt.Errorf("%s found %d alert transitions, want the %d planted: not the same work", c.name, n, planted)
		}
	}
	fmt.Printf("every contender found the %d transitions\n\n", planted)
	perCPU := map[string][]float64{}
	for r := range o.rounds {
		for _, c := range contenders {
			_, u, err := c.measure(false)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			rate := float64(o.events) / u.cpu.Seconds()
			perCPU[c.name] = append(perCPU[c.name], rate)
			fmt.Printf("round %d  %-22s %8.2f s CPU %7.2f s wall  %9.0f events per CPU-second\n", r+1, c.name, u.cpu.Seconds(), u.wall.Seconds(), rate)
		}
	}
	fmt.Println()
	report(contenders, perCPU, o.rounds)
	return nil
}

// report prints each contender's median, then each engine variant's ratio to each peer,
// round by round (a ratio within a round compares runs minutes apart at most).
func report(contenders []contender, perCPU map[string][]float64, rounds int) {
	for _, c := range contenders {
		fmt.Printf("%-22s median %9.0f events per CPU-second\n", c.name, median(perCPU[c.name]))
	}
	for _, e := range contenders {
		if !strings.HasPrefix(e.name, "engine") {
			continue
		}
		for _, peer := range contenders {
			if strings.HasPrefix(peer.name, "engine") {
				continue
			}
			var ratios []string
			for r := range rounds {
				ratios = append(ratios, fmt.Sprintf("%.2f", perCPU[e.name][r]/perCPU[peer.name][r]))
			}
			fmt.Printf("%s / %s, by round: %s\n", e.name, peer.name, strings.Join(ratios, ", "))
		}
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	return s[len(s)/2]
}

// setUp builds the engine (unless given) and lists the contenders.
func setUp(root, dir, events, cmdb string, o options) (_ []contender, cleanup func(), err error) {
	var written []string
	cleanup = func() {
		for _, f := range written {
			os.Remove(f)
		}
	}
	if o.bin == "" {
		o.bin = filepath.Join(dir, "eventops-engine")
		if out, err := exec.Command("go", "build", "-o", o.bin, "./cmd/eventops-engine").CombinedOutput(); err != nil {
			return nil, cleanup, fmt.Errorf("building the engine: %v\n%s", err, out)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, cleanup, err
	}
	// Each pipeline, and its copy for the check pass with the alerts on standard output.
	variant := func(path, old, new string) (string, string, error) {
		check, err := withOutput(path, old, new)
		if err == nil {
			written = append(written, check)
		}
		return path, check, err
	}
	fused, fusedCheck, err := variant(filepath.Join(root, "bench", "throughput", "quickstart.yaml"), "output: {drop: {}}", "output: {stdout: {}}")
	if err != nil {
		return nil, cleanup, err
	}
	streams, streamsCheck, err := variant(filepath.Join(root, "bench", "throughput", "quickstart-streams.yaml"), "output: {drop: {}}", "output: {stdout: {}}")
	if err != nil {
		return nil, cleanup, err
	}
	brokerAddr := benchutil.FreeAddr()
	env := append(os.Environ(), "EVENTS_FILE="+events, "CMDB_FILE="+cmdb, "DATA_DIR="+dir, "BROKER="+brokerAddr)
	engine := func(path, check string, level string) func(bool) *exec.Cmd {
		return func(checking bool) *exec.Cmd {
			p := path
			if checking {
				p = check
			}
			os.RemoveAll(filepath.Join(dir, "broker"))
			c := exec.Command(o.bin, "run", "--no-watch", "--log-level", level, "-c", p)
			c.Env = env
			return c
		}
	}
	countStates := func(stdout []byte) int { return bytes.Count(stdout, []byte(`"state":`)) }
	out := []contender{
		{name: "engine, one stream", cmd: engine(fused, fusedCheck, "warn"), alerts: countStates},
		{name: "engine, quickstart", cmd: engine(streams, streamsCheck, "info"), alerts: countStates,
			run: func(cmd *exec.Cmd) ([]byte, usage, error) { return untilRulesDone(cmd, brokerAddr) }},
		{name: "plain Go loop", cmd: func(bool) *exec.Cmd { return exec.Command(self, "-loop", events, cmdb) }, alerts: loopAlerts},
	}
	connect := o.connect
	if connect == "" {
		connect, _ = exec.LookPath("redpanda-connect")
	}
	if connect == "" {
		fmt.Println("no redpanda-connect binary (-connect or the PATH): measuring without it")
		return out, cleanup, nil
	}
	cfg, cfgCheck, err := variant(filepath.Join(root, "bench", "throughput", "connect", "quickstart.yaml"), connectAlertsDrop, connectAlertsStdout)
	if err != nil {
		return nil, cleanup, err
	}
	return append(out, contender{
		name: "Redpanda Connect",
		cmd: func(check bool) *exec.Cmd {
			p := cfg
			if check {
				p = cfgCheck
			}
			c := exec.Command(connect, "run", "--log.level", "warn", p)
			// Batches of 256: its best configuration (bench/throughput/connect/README.md).
			c.Env = append(env, "SCHEMAS_DIR="+filepath.Join(root, "schemas"), "BATCH_COUNT=256", "BATCH_PERIOD=100ms")
			return c
		},
		alerts: countStates,
	}), cleanup, nil
}

// The Connect config's alert output, and what the check pass replaces it with.
const (
	connectAlertsDrop   = "      # --- stream rules: threshold on cpu_load, then topic ops.alert.v1 ---\n      - drop: {}\n"
	connectAlertsStdout = "      # --- stream rules: threshold on cpu_load, then topic ops.alert.v1 ---\n      - stdout: {}\n"
)

// withOutput writes a copy of the pipeline at path with its output swapped, for the check
// pass, next to the original (relative paths in it still resolve).
func withOutput(path, old, new string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if bytes.Count(raw, []byte(old)) != 1 {
		return "", fmt.Errorf("%s no longer contains %q once: update bench/throughput", path, old)
	}
	out := filepath.Join(filepath.Dir(path), ".check-"+filepath.Base(path))
	return out, os.WriteFile(out, bytes.Replace(raw, []byte(old), []byte(new), 1), 0o644)
}

// untilRulesDone runs the quickstart's two streams until normalize has read its file to the
// end and rules has committed everything normalize wrote, then stops the engine (rules reads
// a topic: it would wait for more) and measures it.
func untilRulesDone(cmd *exec.Cmd, brokerAddr string) ([]byte, usage, error) {
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, usage{}, err
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, usage{}, err
	}
	var logTail []string
	normalizeDone := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			logTail = append(logTail[max(0, len(logTail)-19):], line)
			if strings.Contains(line, "read its input to the end") && strings.Contains(line, "stream=normalize") {
				close(normalizeDone)
			}
		}
	}()
	select {
	case <-normalizeDone:
	case <-time.After(10 * time.Minute):
		cmd.Process.Kill()
		return nil, usage{}, fmt.Errorf("normalize did not finish its file:\n%s", strings.Join(logTail, "\n"))
	}
	if err := waitRulesCommitted(brokerAddr); err != nil {
		cmd.Process.Kill()
		return nil, usage{}, err
	}
	wall := time.Since(t0)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		return nil, usage{}, fmt.Errorf("%v\n%s", err, strings.Join(logTail, "\n"))
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return stdout.Bytes(), usage{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), wall: wall}, nil
}

// waitRulesCommitted waits until the rules stream's group has committed the end of every
// partition of signals.metric.v1.
func waitRulesCommitted(brokerAddr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for ctx.Err() == nil {
		lags, err := adm.Lag(ctx, "eventops.rules")
		if l, ok := lags["eventops.rules"]; err == nil && ok && l.Error() == nil && len(l.Lag) > 0 && l.Lag.Total() == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("the rules stream did not commit everything within 10 minutes")
}

func loopAlerts(stdout []byte) int {
	var events, rejected, alerts int
	fmt.Sscanf(string(stdout), "events=%d rejected=%d alerts=%d", &events, &rejected, &alerts)
	return alerts
}

func (c contender) measure(check bool) ([]byte, usage, error) {
	if c.run != nil {
		return c.run(c.cmd(check))
	}
	return measure(c.cmd(check))
}

type usage struct{ cpu, wall time.Duration }

// measure runs cmd to its end and returns its standard output and the CPU time it used.
func measure(cmd *exec.Cmd) ([]byte, usage, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	err := cmd.Run()
	wall := time.Since(t0)
	if err != nil {
		return nil, usage{}, fmt.Errorf("%v\n%s", err, tail(stderr.String(), 20))
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return stdout.Bytes(), usage{cpu: cpu, wall: wall}, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// generate writes n readings of hosts hosts, each a random walk of CPU load around a
// baseline of its own that stays below 75, in event-time order; the first three are the
// hosts of examples/cmdb.csv, the CMDB every contender enriches from.
// Every hundredth reading of a host is a spike to 95, the next one back to 30: each spike
// fires the host's alert and the reading after it resolves it. It returns how many alert
// transitions it planted.
func generate(events string, n, hosts int) (int, error) {
	rng := rand.New(rand.NewPCG(19, 2026))
	names := make([]string, hosts)
	for h := range names {
		names[h] = fmt.Sprintf("host-%04d", h)
		if h < 3 {
			names[h] = "host-" + string(rune('a'+h)) // in examples/cmdb.csv
		}
	}
	f, err := os.Create(events)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	base := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	level := make([]float64, hosts)
	for h := range level {
		level[h] = 10 + rng.Float64()*50
	}
	firing := make([]bool, hosts)
	transitions := 0
	for i := range n {
		h := i % hosts
		value := level[h]
		switch (i / hosts) % 100 {
		case 99:
			value = 95
		case 0:
			value = 30
		default:
			level[h] = min(max(level[h]+rng.NormFloat64()*2, 0), 70)
		}
		if value >= 80 != firing[h] {
			firing[h] = !firing[h]
			transitions++
		}
		ts := base.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano)
		fmt.Fprintf(w, `{"tenant_id":"acme","host":%q,"metric":"cpu_load","value":%.2f,"ts_event":%q,"unit":"percent","tags":{"env":"prod"}}`+"\n", names[h], value, ts)
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	return transitions, f.Close()
}
