// Command notifystorm measures an alert storm through the notify processor and, in the same
// run, through a real Alertmanager fed by the engine's alertmanager output: -hosts hosts (in
// -groups clusters) cross a CPU threshold within -spread, and both group them by alertname
// and cluster with the same timings and send their notifications to a webhook receiver of
// this command. It reports, per side, the notifications and alerts received, the time from
// the first reading produced to the first notification and to the last alert notified, and
// the peak memory (RSS) of the engine process and of Alertmanager.
//
// With -outage, both receivers then answer 503 for that long while -resolve hosts recover,
// and come back: the run reports whether every resolved alert came, and how many
// notifications came more than once (by event_id for the engine; Alertmanager's carry none,
// so by group key and alert set).
//
//	go run ./bench/notifystorm                        # 10,000 hosts, 500 groups
//	go run ./bench/notifystorm -outage 5m -resolve 1000
//
// It needs prometheus-alertmanager (Debian's package, 0.25) on the PATH.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
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
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/bench/internal/benchutil"
)

type options struct {
	hosts, groups, resolve       int
	spread, groupWait, groupIntv time.Duration
	outage, deadline             time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.hosts, "hosts", 10000, "hosts crossing the threshold")
	flag.IntVar(&o.groups, "groups", 500, "clusters the hosts are in (one notification group each)")
	flag.DurationVar(&o.spread, "spread", time.Minute, "time over which the hosts cross")
	flag.DurationVar(&o.groupWait, "group-wait", 30*time.Second, "group_wait of both")
	flag.DurationVar(&o.groupIntv, "group-interval", time.Minute, "group_interval of both")
	flag.DurationVar(&o.outage, "outage", 0, "after the storm, how long both receivers answer 503 (0: no outage)")
	flag.IntVar(&o.resolve, "resolve", 1000, "hosts that recover during the outage")
	flag.DurationVar(&o.deadline, "deadline", 15*time.Minute, "give up after")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "notifystorm:", err)
		os.Exit(1)
	}
}

// receiver is one side's webhook receiver.
type receiver struct {
	name   string
	down   atomic.Bool
	mu     sync.Mutex
	notes  int
	first  time.Time
	last   time.Time
	firing map[string]bool // fingerprint → seen firing
	ended  map[string]bool // fingerprint → seen resolved
	ids    map[string]int  // notification identity → times acknowledged
}

func newReceiver(name string) *receiver {
	return &receiver{name: name, firing: map[string]bool{}, ended: map[string]bool{}, ids: map[string]int{}}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if rc.down.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var m struct {
		EventID  string `json:"event_id"`
		GroupKey string `json:"groupKey"`
		Alerts   []struct {
			Status string            `json:"status"`
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	if json.Unmarshal(body, &m) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	id := m.EventID
	var set []string
	now := time.Now()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, a := range m.Alerts {
		host := a.Labels["source_id"]
		set = append(set, host+"="+a.Status)
		if a.Status == "firing" {
			rc.firing[host] = true
		} else {
			rc.ended[host] = true
		}
	}
	if id == "" {
		slices.Sort(set)
		id = m.GroupKey + " " + strings.Join(set, ",")
	}
	rc.ids[id]++
	rc.notes++
	if rc.first.IsZero() {
		rc.first = now
	}
	rc.last = now
}

func (rc *receiver) counts() (notes, firing, ended, repeats int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, n := range rc.ids {
		repeats += n - 1
	}
	return rc.notes, len(rc.firing), len(rc.ended), repeats
}

const pipeline = `
version: 1
broker:
  embedded: {listen: "%[1]s", data_dir: "%[2]s/broker"}
topics:
  signals.metric.v1:   {partitions: 3, ingest: true}
  ops.alert.v1:        {partitions: 1, cleanup: compact+delete}
  ops.notification.v1: {partitions: 1}
  ops.deadletter.v1:   {partitions: 1}
dead_letter: ops.deadletter.v1
streams:
  - name: rules
    input: {topic: signals.metric.v1}
    processors:
      - threshold:
          rules:
            - name: cpu_high
              when: 'metric == "cpu_load" && value >= 90'
              severity: critical
              clear_when: 'value < 75'
              labels: {cluster: 'tags.cluster'}
    output: {topic: ops.alert.v1}
  - name: notify
    input: {topic: ops.alert.v1}
    processors:
      - notify:
          route: {receiver: hook, group_by: [alertname, cluster], group_wait: %[3]s, group_interval: %[4]s, repeat_interval: 4h}
          receivers: [{name: hook}]
    output: {topic: ops.notification.v1}
  - name: to-hook
    input: {topic: ops.notification.v1}
    processors: [{filter: {when: 'receiver == "hook"'}}]
    output:
      webhook: {url: "%[5]s", concurrency: 8, max_attempts: 1000000, max_elapsed: 1h, backoff: {initial: 1s, max: 10s}, delivery_log: {dir: "%[2]s/delivered"}}
sinks:
  - from: ops.alert.v1
    alertmanager: {urls: ["%[6]s"], state_dir: "%[2]s/am-state", max_attempts: 1000000, max_elapsed: 1h}
`

const amConfig = `route:
  receiver: hook
  group_by: [alertname, cluster]
  group_wait: %s
  group_interval: %s
  repeat_interval: 4h
receivers:
  - name: hook
    webhook_configs: [{url: "%s", send_resolved: true, max_alerts: 0}]
`

func run(o options) error {
	dir, err := os.MkdirTemp("", "notifystorm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	engineRcv, amRcv := newReceiver("notify"), newReceiver("alertmanager")
	engineURL, closeE := serve(engineRcv)
	defer closeE()
	amHookURL, closeA := serve(amRcv)
	defer closeA()

	amAddr := benchutil.FreeAddr()
	amCfg := filepath.Join(dir, "am.yml")
	os.WriteFile(amCfg, []byte(fmt.Sprintf(amConfig, o.groupWait, o.groupIntv, amHookURL)), 0o644)
	am := exec.Command("prometheus-alertmanager", "--config.file="+amCfg, "--storage.path="+filepath.Join(dir, "am"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=", "--log.level=error")
	am.Stderr = os.Stderr
	if err := am.Start(); err != nil {
		return fmt.Errorf("starting Alertmanager (apt-get install prometheus-alertmanager): %w", err)
	}
	defer am.Process.Kill()

	bin := filepath.Join(dir, "eventops-engine")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/eventops-engine").CombinedOutput(); err != nil {
		return fmt.Errorf("building the engine: %v\n%s", err, out)
	}
	brokerAddr := benchutil.FreeAddr()
	pfile := filepath.Join(dir, "pipeline.yaml")
	os.WriteFile(pfile, []byte(fmt.Sprintf(pipeline, brokerAddr, dir, o.groupWait, o.groupIntv, engineURL, "http://"+amAddr)), 0o644)
	eng := exec.Command(bin, "-c", pfile)
	elog, _ := os.Create(filepath.Join(dir, "engine.log"))
	eng.Stdout, eng.Stderr = elog, elog
	if err := eng.Start(); err != nil {
		return err
	}
	defer eng.Process.Kill()
	if err := waitReady(brokerAddr); err != nil {
		return err
	}
	peakE, peakA := watchRSS(eng.Process.Pid), watchRSS(am.Process.Pid)

	start := time.Now()
	if err := produce(brokerAddr, o, 95, o.hosts, o.spread); err != nil {
		return err
	}
	for _, rc := range []*receiver{engineRcv, amRcv} {
		if err := waitFor(o.deadline, func() bool { _, f, _, _ := rc.counts(); return f >= o.hosts }); err != nil {
			return fmt.Errorf("%s: not every host notified: %w", rc.name, err)
		}
	}
	report(o, start, engineRcv, amRcv, peakE, peakA)
	if o.outage <= 0 {
		return nil
	}
	engineRcv.down.Store(true)
	amRcv.down.Store(true)
	if err := produce(brokerAddr, o, 50, o.resolve, 0); err != nil {
		return err
	}
	time.Sleep(o.outage) // the outage itself: both receivers refuse for this long
	engineRcv.down.Store(false)
	amRcv.down.Store(false)
	for _, rc := range []*receiver{engineRcv, amRcv} {
		if err := waitFor(o.deadline, func() bool { _, _, e, _ := rc.counts(); return e >= o.resolve }); err != nil {
			return fmt.Errorf("%s: not every resolution notified after the outage: %w", rc.name, err)
		}
	}
	fmt.Printf("\nafter a receiver outage of %s during which %d hosts recovered:\n", o.outage, o.resolve)
	for _, rc := range []*receiver{engineRcv, amRcv} {
		n, _, e, rep := rc.counts()
		fmt.Printf("  %-13s %d notifications in all, %d resolved hosts notified, %d notifications acknowledged more than once\n", rc.name, n, e, rep)
	}
	return nil
}

func report(o options, start time.Time, e, a *receiver, peakE, peakA func() int64) {
	fmt.Printf("alert storm: %d hosts in %d groups crossing within %s; group_wait %s, group_interval %s\n", o.hosts, o.groups, o.spread, o.groupWait, o.groupIntv)
	fmt.Printf("  %-13s %13s %8s %22s %26s %12s\n", "", "notifications", "alerts", "first notification (s)", "last host notified (s)", "peak RSS")
	for _, x := range []struct {
		rc   *receiver
		peak func() int64
		what string
	}{{e, peakE, "engine (all)"}, {a, peakA, "Alertmanager"}} {
		n, f, _, _ := x.rc.counts()
		x.rc.mu.Lock()
		first, last := x.rc.first.Sub(start).Seconds(), x.rc.last.Sub(start).Seconds()
		x.rc.mu.Unlock()
		fmt.Printf("  %-13s %13d %8d %22.1f %26.1f %9.0f MB (%s)\n", x.rc.name, n, f, first, last, float64(x.peak())/1e6, x.what)
	}
}

// produce sends one cpu_load reading of value for each of the first n hosts, spread over
// spread.
func produce(addr string, o options, value float64, n int, spread time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("signals.metric.v1"))
	if err != nil {
		return err
	}
	defer cl.Close()
	step := spread / time.Duration(max(n, 1))
	begin := time.Now()
	for i := range n {
		if d := time.Until(begin.Add(time.Duration(i) * step)); d > 0 {
			time.Sleep(d)
		}
		host := fmt.Sprintf("host-%05d", i)
		v := fmt.Sprintf(`{"metric":"cpu_load","value":%g,"tenant_id":"acme","source":{"source_id":%q},"tags":{"cluster":"c%03d"},"ts_event":%q}`,
			value, host, i%o.groups, time.Now().UTC().Format(time.RFC3339Nano))
		cl.Produce(context.Background(), &kgo.Record{Key: []byte(host), Value: []byte(v)}, nil)
	}
	return cl.Flush(context.Background())
}

func serve(h http.Handler) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }
}

func waitReady(brokerAddr string) error {
	return waitFor(time.Minute, func() bool {
		c, err := net.Dial("tcp", brokerAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func waitFor(within time.Duration, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", within)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

var rssRE = regexp.MustCompile(`VmRSS:\s+(\d+) kB`)

// watchRSS samples the resident memory of a process every 100ms and returns a function that
// gives the peak so far.
func watchRSS(pid int) func() int64 {
	var peak atomic.Int64
	go func() {
		for {
			raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				return
			}
			if m := rssRE.FindSubmatch(raw); m != nil {
				kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
				if kb*1024 > peak.Load() {
					peak.Store(kb * 1024)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return peak.Load
}
