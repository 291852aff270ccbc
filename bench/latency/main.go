// Command latency measures how fast an alert reaches a client: it starts the eventops-engine
// binary on examples/quickstart.yaml (embedded broker, Parquet sinks; only its ports and
// directories moved into a temporary directory), produces raw agent readings to
// ingest.raw.agent at a steady rate, and times each probe reading — a host crossing the CPU
// threshold, or coming back below it — from the moment it is handed to the Kafka client to the
// moment its alert arrives on /alerts/stream (Server-Sent Events). The probes ride on the
// background readings (-hosts hosts, values that never alert), so every probe goes through the
// same batches, transactions and consumers as the load.
//
// For each rate it reports the probes' p50, p99 and max latency, how many never came, the
// engine's CPU time per event, and whether every stream and sink kept up: how much of what was
// produced each consumer group had committed when producing stopped, and how long it then took
// to catch up.
//
//	go run ./bench/latency                           # 10k, 25k, 50k, 100k events/s, 20 s each
//	go run ./bench/latency -rates 50000 -duration 60s
//	go run ./bench/latency -bin /tmp/eventops-engine-before   # an engine built elsewhere
//
// The producer runs in this process, on the same machine: its CPU time is reported too.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eventops/eventops-engine/bench/internal/benchutil"
)

type options struct {
	rates      []int
	duration   time.Duration
	hosts      int
	probesPerS int
	bin        string
	keep       bool
	profile    string
	rtt        time.Duration
}

func main() {
	var o options
	rates := flag.String("rates", "10000,25000,50000,100000", "comma-separated production rates, events per second")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "how long to produce at each rate")
	flag.IntVar(&o.hosts, "hosts", 1000, "hosts sending background readings")
	flag.IntVar(&o.probesPerS, "probes", 50, "probe readings (threshold crossings) per second")
	flag.StringVar(&o.bin, "bin", "", "engine binary to run (default: built from this checkout)")
	flag.BoolVar(&o.keep, "keep", false, "keep each run's directory (pipeline, data, engine log)")
	flag.DurationVar(&o.rtt, "rtt", 0, "instead of the embedded broker, a Kafka-protocol broker (kfake) in this process that answers every request this much later, as a broker across a network would")
	flag.StringVar(&o.profile, "profile", "", "write the engine's CPU profile of each rate to this directory (cpu-RATE.pprof)")
	flag.Parse()
	for _, r := range strings.Split(*rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "latency: bad rate %q\n", r)
			os.Exit(2)
		}
		o.rates = append(o.rates, n)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "latency:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	root, err := benchutil.RepoRoot()
	if err != nil {
		return err
	}
	if o.bin == "" {
		o.bin = filepath.Join(os.TempDir(), fmt.Sprintf("eventops-latency-%d", os.Getpid()))
		defer os.Remove(o.bin)
		if out, err := exec.Command("go", "build", "-o", o.bin, "./cmd/eventops-engine").CombinedOutput(); err != nil {
			return fmt.Errorf("building the engine: %v\n%s", err, out)
		}
	}
	fmt.Printf("produce → SSE latency, examples/quickstart.yaml, %d background hosts, %d probes/s, %s per rate\n", o.hosts, o.probesPerS, o.duration)
	fmt.Printf("%9s %9s %8s %8s %8s %7s %9s %9s  %s\n", "rate/s", "produced", "p50 ms", "p99 ms", "max ms", "missed", "eng µs/ev", "prod µs/ev", "kept up (committed at stop; caught up after)")
	for _, rate := range o.rates {
		res, err := oneRate(root, o, rate)
		if err != nil {
			return fmt.Errorf("at %d events/s: %w", rate, err)
		}
		res.print()
	}
	return nil
}

// result is one rate's figures.
type result struct {
	rate, produced     int
	latencies          []time.Duration
	missed             int
	engineCPU, prodCPU time.Duration
	keptUp             []groupProgress
	producedBehindBy   time.Duration                   // how far the producer fell behind its schedule
	stages             map[string]map[string]stageTime // stream → stage → time spent
}

// stageTime is the time a stream spent in one stage of its batches, and how many batches.
type stageTime struct {
	seconds float64
	batches int
}

type groupProgress struct {
	group    string
	atStop   float64       // fraction of its input committed when producing stopped
	caughtUp time.Duration // from the stop until it had committed everything (-1: not within the deadline)
}

func (r result) print() {
	slices.Sort(r.latencies)
	pct := func(q float64) float64 {
		if len(r.latencies) == 0 {
			return 0
		}
		return float64(r.latencies[min(len(r.latencies)-1, int(q*float64(len(r.latencies))))].Microseconds()) / 1000
	}
	var kept []string
	for _, g := range r.keptUp {
		c := "never"
		if g.caughtUp >= 0 {
			c = fmt.Sprintf("%.1fs", g.caughtUp.Seconds())
		}
		kept = append(kept, fmt.Sprintf("%s %.1f%%, %s", g.group, 100*g.atStop, c))
	}
	behind := ""
	if r.producedBehindBy > 100*time.Millisecond {
		behind = fmt.Sprintf(" (producer %.1fs behind schedule)", r.producedBehindBy.Seconds())
	}
	fmt.Printf("%9d %9d %8.1f %8.1f %8.1f %7d %9.1f %9.1f  %s%s\n", r.rate, r.produced, pct(0.5), pct(0.99), pct(1),
		r.missed, perEvent(r.engineCPU, r.produced), perEvent(r.prodCPU, r.produced), strings.Join(kept, "; "), behind)
	for _, stream := range slices.Sorted(maps.Keys(r.stages)) {
		var parts []string
		for _, stage := range []string{"read", "process", "write", "dead_letter", "ack", "commit"} {
			if st, ok := r.stages[stream][stage]; ok && st.batches > 0 {
				parts = append(parts, fmt.Sprintf("%s %.1fs (%d × %.1f ms)", stage, st.seconds, st.batches, 1000*st.seconds/float64(st.batches)))
			}
		}
		if in, shared := r.stages[stream]["eventops_stream_records_in_total"], r.stages[stream]["eventops_stream_records_shared_total"]; in.seconds > 0 {
			parts = append(parts, fmt.Sprintf("%.0f%% of records taken decoded", 100*shared.seconds/in.seconds))
		}
		fmt.Printf("%19s %-32s %s\n", "", stream, strings.Join(parts, ", "))
	}
}

// stageTimes reads the engine's eventops_stream_stage_seconds: the time each stream spent
// reading, processing, writing and acknowledging (for a transactional stream: its
// checkpoint transaction) its batches.
func stageTimes(url string) map[string]map[string]stageTime {
	resp, err := http.Get(url)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := map[string]map[string]stageTime{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), "{")
		if !ok || (name != "eventops_stream_stage_seconds_sum" && name != "eventops_stream_stage_seconds_count" &&
			name != "eventops_stream_records_in_total" && name != "eventops_stream_records_shared_total") {
			continue
		}
		if name == "eventops_stream_records_in_total" || name == "eventops_stream_records_shared_total" {
			rest = `stage="` + name + `",` + rest
		}
		labels, value, _ := strings.Cut(rest, "} ")
		var stage, stream string
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch v = strings.Trim(v, `"`); k {
			case "stage":
				stage = v
			case "stream":
				stream = v
			}
		}
		f, _ := strconv.ParseFloat(value, 64)
		if out[stream] == nil {
			out[stream] = map[string]stageTime{}
		}
		st := out[stream][stage]
		if strings.HasSuffix(name, "_sum") || strings.HasSuffix(name, "_total") {
			st.seconds = f
		} else {
			st.batches = int(f)
		}
		out[stream][stage] = st
	}
	return out
}

func perEvent(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}

// oneRate starts a fresh engine, produces at rate for o.duration and measures.
func oneRate(root string, o options, rate int) (result, error) {
	dir, err := os.MkdirTemp("", "eventops-latency-")
	if err != nil {
		return result{}, err
	}
	if o.keep {
		fmt.Println("run directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	brokerAddr, apiAddr := benchutil.FreeAddr(), benchutil.FreeAddr()
	remote := o.rtt > 0
	if remote {
		stop, err := slowBroker(brokerAddr, o.rtt)
		if err != nil {
			return result{}, err
		}
		defer stop()
	}
	pfile, err := writePipeline(root, dir, brokerAddr, apiAddr, remote)
	if err != nil {
		return result{}, err
	}
	args := []string{"run", "-c", pfile}
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return result{}, err
		}
		args = append(args, "--cpuprofile", filepath.Join(o.profile, fmt.Sprintf("cpu-%d.pprof", rate)))
	}
	eng := exec.Command(o.bin, args...)
	elog, err := os.Create(filepath.Join(dir, "engine.log"))
	if err != nil {
		return result{}, err
	}
	defer elog.Close()
	eng.Stdout, eng.Stderr = elog, elog
	if err := eng.Start(); err != nil {
		return result{}, err
	}
	defer func() { eng.Process.Signal(syscall.SIGTERM); eng.Wait() }()
	if err := waitFor(time.Minute, func() bool { return httpOK("http://" + apiAddr + "/-/ready") }); err != nil {
		return result{}, fmt.Errorf("engine not ready (log: %s): %w", elog.Name(), err)
	}

	probes := newProbeBook()
	sse, err := listenSSE("http://"+apiAddr+"/alerts/stream", probes)
	if err != nil {
		return result{}, err
	}
	defer sse.Close()

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.DefaultProduceTopic("ingest.raw.agent"),
		kgo.ProducerLinger(time.Millisecond), kgo.MaxBufferedRecords(1_000_000))
	if err != nil {
		return result{}, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	res := result{rate: rate}
	engCPU0, prodCPU0 := processCPU(eng.Process.Pid), selfCPU()
	res.produced, res.producedBehindBy, err = produce(cl, o, rate, probes)
	if err != nil {
		return result{}, err
	}
	stop := time.Now()
	res.stages = stageTimes("http://" + apiAddr + "/-/metrics")
	res.keptUp, err = keptUp(adm, stop)
	if err != nil {
		return result{}, err
	}
	// Probes still on their way come within a few seconds of every group catching up.
	waitFor(10*time.Second, func() bool { return probes.pending() == 0 })
	res.engineCPU, res.prodCPU = processCPU(eng.Process.Pid)-engCPU0, selfCPU()-prodCPU0
	res.latencies, res.missed = probes.results()
	return res, nil
}

// writePipeline is examples/quickstart.yaml with the broker, the API and the data moved into
// dir; nothing else changes.
func writePipeline(root, dir, brokerAddr, apiAddr string, remote bool) (string, error) {
	raw, err := os.ReadFile(filepath.Join(root, "examples", "quickstart.yaml"))
	if err != nil {
		return "", err
	}
	s := string(raw)
	if remote {
		s = embeddedBroker.ReplaceAllString(s, fmt.Sprintf("broker:\n  brokers: [%q]\n  embedded_was: x", brokerAddr))
		s = strings.Replace(s, "\n  embedded_was: x", "", 1)
		s = schemaRegistry.ReplaceAllString(s, "") // the engine serves one next to its embedded broker only
	}
	for _, r := range [][2]string{
		{"127.0.0.1:9092", brokerAddr},
		{"listen: 127.0.0.1:8081", "listen: 127.0.0.1:0"},
		{`listen: "127.0.0.1:8088"`, fmt.Sprintf("listen: %q", apiAddr)},
		{"data/", filepath.Join(dir, "data") + "/"},
		{"../schemas/", filepath.Join(root, "schemas") + "/"},
		{"file: cmdb.csv", "file: " + filepath.Join(root, "examples", "cmdb.csv")},
	} {
		if !strings.Contains(s, r[0]) && !(remote && (r[0] == "127.0.0.1:9092" || r[0] == "listen: 127.0.0.1:8081")) {
			return "", fmt.Errorf("examples/quickstart.yaml no longer contains %q: update bench/latency", r[0])
		}
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	path := filepath.Join(dir, "pipeline.yaml")
	return path, os.WriteFile(path, []byte(s), 0o644)
}

// schemaRegistry is the quickstart's schema_registry block.
var schemaRegistry = regexp.MustCompile(`schema_registry:\n(  .*\n)+`)

// embeddedBroker is the quickstart's broker block.
var embeddedBroker = regexp.MustCompile(`broker:\n  embedded:\n(    .*\n)+`)

// slowBroker runs a kfake broker on addr that holds every request for rtt before it
// handles it (others go on meanwhile).
func slowBroker(addr string, rtt time.Duration) (func(), error) {
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(p))
	if err != nil {
		return nil, err
	}
	c.ControlKey(-1, func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { time.Sleep(rtt) })
		return nil, nil, false
	})
	return c.Close, nil
}

// produce sends readings at rate for o.duration, o.probesPerS of them probes. It returns how
// many it produced and how far behind its schedule it was at the end.
func produce(cl *kgo.Client, o options, rate int, probes *probeBook) (int, time.Duration, error) {
	ctx := context.Background()
	var (
		failed   error
		failedMu sync.Mutex
	)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failedMu.Lock()
			failed = err
			failedMu.Unlock()
		}
	}
	total := int(float64(rate) * o.duration.Seconds())
	probeEvery := max(rate/max(o.probesPerS, 1), 1)
	begin := time.Now()
	sent, probeN := 0, 0
	for sent < total {
		due := min(total, int(time.Since(begin).Seconds()*float64(rate))+1)
		for ; sent < due; sent++ {
			if sent%probeEvery == probeEvery-1 {
				host, value := probes.next(probeN)
				probeN++
				rec := &kgo.Record{Value: reading(host, value)}
				probes.sent(host, time.Now())
				cl.Produce(ctx, rec, promise)
				continue
			}
			host := fmt.Sprintf("host-%04d", sent%o.hosts)
			cl.Produce(ctx, &kgo.Record{Value: reading(host, 10+rand.Float64()*50)}, promise)
		}
		time.Sleep(time.Millisecond)
	}
	behind := time.Since(begin) - o.duration
	if err := cl.Flush(ctx); err != nil {
		return sent, behind, err
	}
	failedMu.Lock()
	defer failedMu.Unlock()
	return sent, behind, failed
}

func reading(host string, value float64) []byte {
	return fmt.Appendf(nil, `{"tenant_id":"acme","host":%q,"metric":"cpu_load","value":%.2f,"ts_event":%q,"unit":"percent","tags":{"env":"prod"}}`,
		host, value, time.Now().UTC().Format(time.RFC3339Nano))
}

// probeBook pairs each probe reading with the alert it causes. Probe hosts take turns: a
// host's first probe is 95 (its alert fires), its next 50 (resolved), and so on, so each probe
// causes exactly one alert record, for its host, and a host's alerts come in the order of its
// probes (one input partition; alerts keyed by fingerprint).
type probeBook struct {
	mu       sync.Mutex
	inFlight map[string][]time.Time // host → when its probes still on their way were produced
	got      []time.Duration
	sentN    int
}

const probeHosts = 200

func newProbeBook() *probeBook { return &probeBook{inFlight: map[string][]time.Time{}} }

// next is the nth probe: its host and value.
func (b *probeBook) next(n int) (string, float64) {
	host := fmt.Sprintf("probe-%03d", n%probeHosts)
	if (n/probeHosts)%2 == 0 {
		return host, 95
	}
	return host, 50
}

func (b *probeBook) sent(host string, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sentN++
	b.inFlight[host] = append(b.inFlight[host], at)
}

func (b *probeBook) arrived(host string, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.inFlight[host]
	if len(q) == 0 {
		return
	}
	b.got = append(b.got, at.Sub(q[0]))
	if len(q) == 1 {
		delete(b.inFlight, host)
	} else {
		b.inFlight[host] = q[1:]
	}
}

func (b *probeBook) pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.inFlight)
}

func (b *probeBook) results() ([]time.Duration, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.got), b.sentN - len(b.got)
}

// listenSSE reads the alert stream and reports each probe host's alert to probes.
func listenSSE(url string, probes *probeBook) (interface{ Close() error }, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data:")
			if !ok {
				continue
			}
			var alert struct {
				SourceID string `json:"source_id"`
			}
			if json.Unmarshal([]byte(strings.TrimSpace(data)), &alert) == nil && strings.HasPrefix(alert.SourceID, "probe-") {
				probes.arrived(alert.SourceID, time.Now())
			}
		}
	}()
	return resp.Body, nil
}

// keptUp says, per consumer group of the engine, how much of its input it had committed when
// producing stopped, and how long it then took to commit the rest.
func keptUp(adm *kadm.Client, stop time.Time) ([]groupProgress, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, err
	}
	groups := listed.Groups()
	slices.Sort(groups)
	var out []groupProgress
	lags, err := adm.Lag(ctx, groups...)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		l := lags[g]
		var lag, end int64
		for _, ps := range l.Lag {
			for _, p := range ps {
				lag += max(p.Lag, 0)
				end += p.End.Offset
			}
		}
		gp := groupProgress{group: strings.TrimPrefix(g, "eventops."), atStop: 1, caughtUp: 0}
		if end > 0 {
			gp.atStop = 1 - float64(lag)/float64(end)
		}
		out = append(out, gp)
	}
	for i, g := range groups {
		err := waitFor(2*time.Minute, func() bool {
			lags, err := adm.Lag(ctx, g)
			return err == nil && lags[g].Lag.Total() == 0
		})
		out[i].caughtUp = time.Since(stop)
		if errors.Is(err, errTimeout) {
			out[i].caughtUp = -1
		}
	}
	return out, nil
}

// processCPU is the CPU time (user + system) a process has used so far.
func processCPU(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

var errTimeout = errors.New("timed out")

func waitFor(within time.Duration, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%w after %s", errTimeout, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
