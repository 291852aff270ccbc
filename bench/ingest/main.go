// Command ingest measures the receivers: records per second stored durably (answered OK) by
// the engine's http input (newline-delimited JSON), otlp input (metrics over OTLP/HTTP
// protobuf and OTLP/gRPC: one record per data point) and prometheus_remote_write input (one
// record per sample), each next to the records it stores produced straight to the same
// embedded broker with franz-go in the same run (the ceiling: what the broker takes without
// the receiver), and the requests' p50/p99 latency.
//
//	go run ./bench/ingest [-duration 10s] [-senders 8] [-batch 500] [-formats http,otlp,otlp-grpc,remote_write] [-bin ENGINE]
//
// The engine runs a pipeline of one stream whose topic has the three inputs and whose output
// is drop, so that the stream reads what arrives and the engine does the work it would.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/bench/internal/benchutil"
)

type options struct {
	duration       time.Duration
	senders, batch int
	bin, profile   string
	formats        string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each contender sends")
	flag.IntVar(&o.senders, "senders", 8, "concurrent senders (HTTP clients, or producers for the ceiling)")
	flag.IntVar(&o.batch, "batch", 500, "records per request (and per produce call)")
	flag.StringVar(&o.bin, "bin", "", "engine binary (default: built from this checkout)")
	flag.StringVar(&o.profile, "cpuprofile", "", "write the engine's CPU profile (both contenders' runs) to this file")
	flag.StringVar(&o.formats, "formats", "http,otlp,otlp-grpc,remote_write", "receivers to measure, each against its own ceiling")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

const pipeline = `version: 1
broker: {embedded: {listen: %q, data_dir: %q}}
topics: {raw: {partitions: 1, ingest: true}, ceiling: {partitions: 1, ingest: true}, dead: {partitions: 1}}
dead_letter: dead
api: {listen: %q}
streams:
  - name: s
    input:
      topic: raw
      http: {listen: %q, path: /ingest}
      otlp: {http: {listen: %q}, grpc: {listen: %q}, signals: [metrics]}
      prometheus_remote_write: {listen: %q}
    output: {drop: {}}
`

func run(o options) error {
	root, err := benchutil.RepoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "eventops-ingest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.bin == "" {
		o.bin = filepath.Join(dir, "eventops-engine")
		cmd := exec.Command("go", "build", "-o", o.bin, "./cmd/eventops-engine")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building the engine: %v\n%s", err, out)
		}
	}
	addrs := receiverAddrs{http: benchutil.FreeAddr(), otlp: benchutil.FreeAddr(), grpc: benchutil.FreeAddr(), remoteWrite: benchutil.FreeAddr()}
	brokerAddr, apiAddr := benchutil.FreeAddr(), benchutil.FreeAddr()
	pfile := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(pfile, fmt.Appendf(nil, pipeline, brokerAddr, filepath.Join(dir, "broker"), apiAddr, addrs.http, addrs.otlp, addrs.grpc, addrs.remoteWrite), 0o644); err != nil {
		return err
	}
	args := []string{"run", "-c", pfile}
	if o.profile != "" {
		args = append(args, "--cpuprofile", o.profile)
	}
	eng := exec.Command(o.bin, args...)
	logf, err := os.Create(filepath.Join(dir, "engine.log"))
	if err != nil {
		return err
	}
	eng.Stdout, eng.Stderr = logf, logf
	if err := eng.Start(); err != nil {
		return err
	}
	defer func() { _ = eng.Process.Signal(syscall.SIGTERM); _ = eng.Wait() }()
	if err := waitReady("http://" + apiAddr + "/-/ready"); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.DefaultProduceTopic("ceiling"), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return err
	}
	defer cl.Close()
	fmt.Printf("machine: %s; %d senders, %d records per request, %s each\n", benchutil.Machine(), o.senders, o.batch, o.duration)
	for _, name := range strings.Split(o.formats, ",") {
		c, err := newContender(name, addrs, o.batch)
		if err != nil {
			return err
		}
		res := measure(o, c.send)
		// The ceiling runs once the stream has read what the receiver stored, so that the two
		// do not share the cores with different backlogs.
		if err := waitDrained("http://" + apiAddr + "/-/metrics"); err != nil {
			return err
		}
		ceiling := measure(o, func() error { return produce(cl, c.stored) })
		res.print(c.name, o.batch)
		ceiling.print("  franz-go, the same records", o.batch)
		fmt.Printf("  ratio: %s / produce ceiling = %.2f\n", name, res.rate(o.batch)/ceiling.rate(o.batch))
	}
	return nil
}

// requestBody is batch readings as newline-delimited JSON.
func requestBody(batch int) []byte {
	var b bytes.Buffer
	for i := range batch {
		fmt.Fprintf(&b, `{"tenant_id":"acme","host":"host-%03d","metric":"cpu_load","value":%d.5,"ts_event":"2026-12-07T10:00:%02dZ","unit":"percent","tags":{"env":"prod"}}`+"\n", i%1000, i%100, i%60)
	}
	return b.Bytes()
}

type result struct {
	calls, failed int
	elapsed       time.Duration
	latencies     []time.Duration
}

// measure runs send from o.senders goroutines for o.duration.
func measure(o options, send func() error) result {
	var mu sync.Mutex
	var res result
	start := time.Now()
	deadline := start.Add(o.duration)
	var wg sync.WaitGroup
	for range o.senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				t0 := time.Now()
				err := send()
				took := time.Since(t0)
				mu.Lock()
				if err != nil {
					res.failed++
				} else {
					res.calls++
					res.latencies = append(res.latencies, took)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

func (r result) rate(batch int) float64 { return float64(r.calls*batch) / r.elapsed.Seconds() }

func (r result) print(name string, batch int) {
	slices.Sort(r.latencies)
	q := func(p float64) time.Duration {
		if len(r.latencies) == 0 {
			return 0
		}
		return r.latencies[int(p*float64(len(r.latencies)-1))]
	}
	fmt.Printf("%-36s %9.0f records/s  %6d calls (%d failed)  p50 %6.1f ms  p99 %6.1f ms\n", name, r.rate(batch), r.calls, r.failed,
		float64(q(0.5).Microseconds())/1000, float64(q(0.99).Microseconds())/1000)
}

func post(url, contentType string, body []byte, encoding string) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func produce(cl *kgo.Client, lines [][]byte) error { // the ceiling
	recs := make([]*kgo.Record, len(lines))
	for i, l := range lines {
		recs[i] = &kgo.Record{Value: l}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cl.ProduceSync(ctx, recs...).FirstErr()
}

func waitReady(url string) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("engine not ready at %s within a minute", url)
}

// waitDrained waits until the engine's stream has no records left to read (its
// eventops_consumer_lag_records are all 0), for up to two minutes.
func waitDrained(metricsURL string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if lag, err := consumerLag(metricsURL); err == nil && lag == 0 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	lag, err := consumerLag(metricsURL)
	return fmt.Errorf("the stream still lags after two minutes (%s: %v, %v)", metricsURL, lag, err)
}

func consumerLag(metricsURL string) (float64, error) {
	resp, err := http.Get(metricsURL)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	seen, lag := false, 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, "eventops_consumer_lag_records{"); ok {
			_, value, _ := strings.Cut(rest, "} ")
			n, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err != nil {
				return 0, err
			}
			seen, lag = true, lag+n
		}
	}
	if !seen {
		return 0, errors.New("no eventops_consumer_lag_records yet")
	}
	return lag, nil
}
