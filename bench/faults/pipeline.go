package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// pipelineEdits turn examples/eventops-flow.yaml into the suite's pipeline: each is an exact
// piece of the example and what replaces it, so that a change to the example that the suite
// does not know about stops it with a clear message instead of running something else.
func pipelineEdits(root, brokers, dsn, api string) [][2]string {
	return [][2]string{
		{`brokers: ["${BROKERS:-localhost:9092}"]`, fmt.Sprintf("brokers: [%q]", brokers)},
		// Large enough for the oversized scenario's 5 MB event.
		{`ingest.raw.agent:  {partitions: 1, retention: 3d, ingest: true}`,
			`ingest.raw.agent:  {partitions: 1, retention: 3d, ingest: true, configs: {max.message.bytes: "8388608"}}`},
		{`../schemas/`, filepath.Join(root, "schemas") + "/"},
		// An idle partition's last windows would close on the wall clock: not comparable.
		{"          late: ops.late.v1\n", "          late: ops.late.v1\n          idle_timeout: 0s\n"},
		{`dsn: "${PG_DSN:-postgres://eventops:eventops@localhost:5432/eventops}"`, fmt.Sprintf("dsn: %q", dsn)},
		{`listen: "${EVENTOPS_API_LISTEN:-127.0.0.1:8088}"`, fmt.Sprintf("listen: %q", api)},
	}
}

// writePipeline writes the suite's pipeline and its CMDB into dir and returns the file.
func writePipeline(root, dir, brokers, dsn, api string, hosts int) (string, error) {
	src, err := os.ReadFile(filepath.Join(root, "examples", "eventops-flow.yaml"))
	if err != nil {
		return "", err
	}
	y := string(src)
	for _, e := range pipelineEdits(root, brokers, dsn, api) {
		if !strings.Contains(y, e[0]) {
			return "", fmt.Errorf("examples/eventops-flow.yaml no longer contains %q; update bench/faults/pipeline.go", e[0])
		}
		y = strings.ReplaceAll(y, e[0], e[1])
	}
	// The heartbeat stream fires on wall-clock silence, which differs between runs.
	start := strings.Index(y, "  # Heartbeat:")
	end := strings.Index(y, "\nsinks:")
	if start < 0 || end < start {
		return "", fmt.Errorf("examples/eventops-flow.yaml: cannot find the heartbeat stream before sinks:; update bench/faults/pipeline.go")
	}
	y = y[:start] + y[end+1:]
	if err := writeCMDB(filepath.Join(dir, "cmdb.csv"), hosts); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "pipeline.yaml")
	return path, os.WriteFile(path, []byte(y), 0o644)
}

func writeCMDB(path string, hosts int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"host", "owner", "site", "service", "criticality"})
	for h := 0; h < hosts; h++ {
		w.Write([]string{fmt.Sprintf("host-%03d", h), fmt.Sprintf("team-%d", h%7), fmt.Sprintf("site-%d", h%3), fmt.Sprintf("svc-%d", h%11), []string{"low", "medium", "high"}[h%3]})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
