package runtime_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/reload"
	"github.com/eventops/eventops-engine/engine/runtime"
	"github.com/eventops/eventops-engine/processors/all"
)

const reloadPipeline = `version: 1
broker:
  embedded: {listen: "127.0.0.1:0", data_dir: "DATA"}
topics:
  in:     {partitions: 2, ingest: true}
  out:    {partitions: 2}
  alerts: {partitions: 2}
  copy:   {partitions: 1}
  dlq:    {}
dead_letter: dlq
lookups:
  cmdb: {file: cmdb.csv, key: host}
streams:
  - name: normalize
    input: {topic: in, batch_size: 50}
    processors:
      - map: {event_id: record_id(), host: host, value: float(value), n: n}
      - enrich: {lookup: cmdb, key: host, into: tags}
    output: {topic: out, key: host}
  - name: rules
    input: {topic: out, batch_size: 50}
    processors:
      - threshold:
          series: [host]
          rules:
            - {name: hot, when: 'value >= 90', severity: critical}
    output: {topic: alerts}
`

// While a producer sends events at a steady pace, the pipeline file and its lookup file are
// edited several times: a threshold edit, a new rule, a broken edit, a lookup edit, a new
// stream, an editor-style write by rename. Every edit but the broken one is applied, the
// broken one is rejected at its line and column with the old pipeline running on, and the
// normalized topic ends up with every event exactly once.
func TestReloadsLoseAndDuplicateNothing(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pipeline.yaml")
	cmdb := filepath.Join(dir, "cmdb.csv")
	writeFile := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := strings.Replace(reloadPipeline, "DATA", filepath.Join(dir, "broker"), 1)
	writeFile(file, text)
	writeFile(cmdb, "host,site\nhost-0,fra1\n")
	load := func() (*config.Pipeline, error) { return config.Load(file, all.Registry()) }
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	plan, err := runtime.Build(cfg, runtime.Options{Logger: logger, Factories: all.Factories()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan *runtime.Running, 1)
	done := make(chan error, 1)
	go func() {
		done <- plan.Run(ctx, runtime.RunOptions{Load: load, Started: func(r *runtime.Running) { started <- r }})
	}()
	var running *runtime.Running
	select {
	case running = <-started:
	case err := <-done:
		t.Fatalf("pipeline stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("pipeline did not start")
	}
	brokers := running.Broker.Addrs()

	// The producer: n events, a few per millisecond, keyed by host.
	const n = 3000
	var produced sync.WaitGroup
	produced.Add(1)
	go func() {
		defer produced.Done()
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close()
		for i := range n {
			rec := &kgo.Record{Topic: "in", Key: fmt.Appendf(nil, "host-%d", i%5),
				Value: fmt.Appendf(nil, `{"host":"host-%d","value":%d,"n":%d}`, i%5, (i*7)%100, i)}
			if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
				t.Error(err)
				return
			}
			if i%10 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()

	edit := func(old, new string) {
		t.Helper()
		if !strings.Contains(text, old) {
			t.Fatalf("pipeline has no %q", old)
		}
		text = strings.Replace(text, old, new, 1)
		writeFile(file, text)
	}
	reloadWant := func(what, result string) reload.Status {
		t.Helper()
		st := running.ReloadFiles(ctx, what, []string{file, cmdb})
		if st.Result != result {
			t.Fatalf("%s: result %q (%v), want %q", what, st.Result, st.Errors, result)
		}
		return st
	}
	edit("when: 'value >= 90'", "when: 'value >= 95'")
	reloadWant("threshold edit", reload.Applied)
	edit("            - {name: hot, when: 'value >= 95', severity: critical}\n",
		"            - {name: hot, when: 'value >= 95', severity: critical}\n            - {name: warm, when: 'value >= 80 && value < 95', severity: warning}\n")
	reloadWant("new rule", reload.Applied)
	good := text
	edit("when: 'value >= 80 && value < 95'", "when: 'valeu >= 80'")
	st := reloadWant("broken edit", reload.Rejected)
	if len(st.Errors) == 0 || st.Errors[0].File != file || st.Errors[0].Line != 27 || st.Errors[0].Col != 35 {
		t.Fatalf("broken edit reported at %+v, want %s:27:35 (the v of valeu)", st.Errors, file)
	}
	text = good
	writeFile(file, text)
	writeFile(cmdb, "host,site\nhost-0,fra1\nhost-1,ams2\n")
	reloadWant("lookup edit", reload.Applied)
	edit("    output: {topic: alerts}\n", "    output: {topic: alerts}\n  - name: copier\n    input: {topic: in}\n    output: {topic: copy}\n")
	reloadWant("new stream", reload.Applied)
	// An editor's save: written aside, renamed over the file.
	text = strings.Replace(text, "when: 'value >= 95'", "when: 'value >= 97'", 1)
	writeFile(file+".tmp", text)
	if err := os.Rename(file+".tmp", file); err != nil {
		t.Fatal(err)
	}
	reloadWant("editor-style save", reload.Applied)
	produced.Wait()

	// Every event is normalized exactly once, by whichever version was in force.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]int{}
	deadline := time.Now().Add(60 * time.Second)
	total := 0
	for total < n && time.Now().Before(deadline) {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) {
			total++
			v := string(r.Value)
			i := strings.Index(v, `"n":`)
			j := strings.IndexAny(v[i+4:], ",}")
			seen[v[i+4:i+4+j]]++
		})
	}
	if total != n || len(seen) != n {
		t.Fatalf("out holds %d records of %d distinct events; want each of the %d events once", total, len(seen), n)
	}
	for k, c := range seen {
		if c != 1 {
			t.Fatalf("event %s normalized %d times", k, c)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
