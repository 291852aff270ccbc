// Command rca measures the correlate processor on a generated service graph: failures
// injected at random nodes propagate to their dependents with delays, among noise alerts and
// unrelated failures at the same time; the alerts run through the engine (a pipeline of one
// correlate stream reading them from a file), and its incidents are scored against what was
// injected, next to Alertmanager-style grouping by alertname computed on the same alerts.
//
//	go run ./bench/rca [-services 200] [-failures 500] [-noise 0.1] [-overlap 0.2] [-seed 1] [-failing uniform|dependents] [-alerts 1] [-bin ENGINE]
//
// Scores: notifications per failure (incidents opened, raw firing alerts, and group_by:
// [alertname] notifications with group_wait 30s and group_interval 5m), root-cause top-1 and
// top-3 (the injected node is the incident's root_cause, or among its 3 candidates), false
// merges (incidents holding alerts of two injected failures), and time from the first
// symptom to the incident, in event time.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/bench/internal/benchutil"
)

type options struct {
	services, failures int
	noise, overlap     float64
	seed               uint64
	bin                string
	misses             int
	failing            string
	alerts             int
}

func main() {
	var o options
	flag.IntVar(&o.services, "services", 200, "services in the generated graph")
	flag.IntVar(&o.failures, "failures", 500, "failures injected")
	flag.Float64Var(&o.noise, "noise", 0.1, "noise alerts, as a share of all alerts")
	flag.Float64Var(&o.overlap, "overlap", 0.2, "share of failures that start while another is under way")
	flag.Uint64Var(&o.seed, "seed", 1, "random seed (the same seed makes the same graph, failures and alerts)")
	flag.StringVar(&o.bin, "bin", "", "engine binary (default: built from this checkout)")
	flag.StringVar(&o.failing, "failing", "uniform", "which services fail: uniform (any alike), or dependents (in proportion to 1 + how many services depend on them, transitively within 3 hops: databases behind many services fail most)")
	flag.IntVar(&o.alerts, "alerts", 1, "alerts an affected service raises: 1 (one rule each), or 1 to N rules (error_rate, latency, saturation, slo_burn, queue_depth), as services alerting on several rules and SLOs do")
	flag.IntVar(&o.misses, "misses", 0, "print this many failures whose root cause was missed, with their incident")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "rca:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "eventops-rca-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.bin == "" {
		if o.bin, err = build(dir); err != nil {
			return err
		}
	}
	rng := rand.New(rand.NewPCG(o.seed, o.seed^0x9e3779b97f4a7c15))
	g := newGraph(rng, o.services)
	sc := newScenario(rng, g, o)
	if err := writeInputs(dir, g, sc); err != nil {
		return err
	}
	incidents, err := runEngine(o.bin, dir)
	if err != nil {
		return err
	}
	fmt.Printf("machine: %s; %d services, %d edges; %d failures (%.0f%% overlapping, %s, up to %d alerts per service), %d alerts (%d noise); seed %d\n",
		benchutil.Machine(), len(g.nodes), g.edges(), len(sc.failures), 100*o.overlap, o.failing, o.alerts, len(sc.alerts), sc.noise, o.seed)
	r := score(sc, incidents)
	r.print(len(sc.failures))
	for _, m := range r.misses[:min(o.misses, len(r.misses))] {
		fmt.Println("  miss:", m)
	}
	return nil
}

func build(dir string) (string, error) {
	root, err := benchutil.RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "eventops-engine")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/eventops-engine")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the engine: %v\n%s", err, out)
	}
	return bin, nil
}

const pipeline = `version: 1
broker: {embedded: {listen: 127.0.0.1:0, data_dir: %q}}
topics: {dead: {partitions: 1}}
dead_letter: dead
lookups:
  services: {file: services.csv, key: service}
streams:
  - name: correlate
    input: {file: {path: alerts.ndjson}}
    processors:
      - correlate: {topology: {lookup: services}, window: 2m, max_hops: 3}
    output: {stdout: {}}
`

// writeInputs writes the topology (services.csv), the alerts in event-time order and the pipeline.
func writeInputs(dir string, g *graph, sc *scenario) error {
	var csv strings.Builder
	csv.WriteString("service,depends_on\n")
	for _, n := range g.nodes {
		fmt.Fprintf(&csv, "%s,%s\n", n, strings.Join(g.deps[n], " "))
	}
	if err := os.WriteFile(filepath.Join(dir, "services.csv"), []byte(csv.String()), 0o644); err != nil {
		return err
	}
	var alerts strings.Builder
	for _, a := range sc.records() {
		b, _ := json.Marshal(a)
		alerts.Write(append(b, '\n'))
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts.ndjson"), []byte(alerts.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "p.yaml"), fmt.Appendf(nil, pipeline, filepath.Join(dir, "broker")), 0o644)
}

// incident is what the scoring reads of an incident record.
type incident struct {
	ID         string `json:"incident_id"`
	Change     string
	MergedInto string    `json:"merged_into"`
	RootCause  string    `json:"root_cause"`
	OpenedAt   time.Time `json:"opened_at"`
	Candidates []candidate
	Members    []member
}

type member struct {
	Fingerprint string
	StartedAt   time.Time `json:"started_at"`
}

type candidate struct {
	Node  string
	Score float64
}

// runEngine runs the pipeline and reads its incident records from standard output.
func runEngine(bin, dir string) ([]incident, error) {
	cmd := exec.Command(bin, "run", "-c", filepath.Join(dir, "p.yaml"))
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var incs []incident
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var inc incident
		if err := json.Unmarshal(sc.Bytes(), &inc); err != nil {
			return nil, fmt.Errorf("the engine printed %q: %w", sc.Text(), err)
		}
		incs = append(incs, inc)
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("the engine: %v\n%s", err, stderr.String())
	}
	return incs, nil
}

// keys of a map, sorted.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
