package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// graph is a tiered service graph: each service depends on 1–3 services of the tiers below
// (fan-out), and popular lower services are depended on by many (fan-in).
type graph struct {
	nodes      []string
	deps       map[string][]string
	dependents map[string][]string
}

func newGraph(rng *rand.Rand, n int) *graph {
	g := &graph{deps: map[string][]string{}, dependents: map[string][]string{}}
	tiers := [][]string{{}, {}, {}, {}} // edge, services, platform, data
	shares := []float64{0.15, 0.45, 0.25, 0.15}
	for i := range n {
		t := tierOf(float64(i)/float64(n), shares)
		name := fmt.Sprintf("%s-%03d", []string{"edge", "svc", "plat", "data"}[t], i)
		tiers[t] = append(tiers[t], name)
		g.nodes = append(g.nodes, name)
	}
	for t := range 3 {
		for _, from := range tiers[t] {
			for range 1 + rng.IntN(3) {
				below := tiers[t+1+rng.IntN(len(tiers)-t-1)]
				to := below[int(float64(len(below))*rng.Float64()*rng.Float64())] // skewed: a few popular ones
				if !slices.Contains(g.deps[from], to) {
					g.deps[from] = append(g.deps[from], to)
					g.dependents[to] = append(g.dependents[to], from)
				}
			}
		}
	}
	return g
}

func tierOf(x float64, shares []float64) int {
	for t, s := range shares {
		if x < s {
			return t
		}
		x -= s
	}
	return len(shares) - 1
}

func (g *graph) edges() int {
	n := 0
	for _, d := range g.deps {
		n += len(d)
	}
	return n
}

// alert is an alert record as the threshold processor writes it.
type alert struct {
	Fingerprint string    `json:"fingerprint"`
	State       string    `json:"state"`
	Rule        string    `json:"rule"`
	Severity    string    `json:"severity"`
	SourceID    string    `json:"source_id"`
	TenantID    string    `json:"tenant_id"`
	StartedAt   time.Time `json:"started_at"`
	ResolvedAt  time.Time `json:"resolved_at,omitzero"`
	failure     int       // the injected failure it comes from; -1 for noise
}

type failure struct {
	node  string
	start time.Time
	root  string // the fingerprint of the failing node's own alert
}

type scenario struct {
	failures []failure
	alerts   []alert
	noise    int
}

var (
	start        = time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	rootRules    = []string{"db_down", "error_rate", "latency", "saturation"}
	symptomRules = []string{"error_rate", "latency"}
	// moreRules are the further rules an affected service may raise with -alerts N > 1.
	moreRules = []string{"error_rate", "latency", "saturation", "slo_burn", "queue_depth"}
)

// rules picks the rules an affected service raises: first, then with -alerts N > 1 up to
// N-1 more of moreRules (distinct). With N = 1 it draws nothing more, so a seed makes the
// same scenario as before the flag existed.
func rules(rng *rand.Rand, first string, n int) []string {
	out := []string{first}
	if n <= 1 {
		return out
	}
	for _, r := range rng.Perm(len(moreRules))[:rng.IntN(n)] {
		if name := moreRules[r]; !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// newScenario injects the failures: each starts at its node, whose dependents (up to 3 hops
// up) alert after 5–60 s each with probability 0.8; each lasts 3–10 minutes. Failures are 10
// minutes apart, but an overlapping one starts 0–60 s into the previous one, elsewhere.
func newScenario(rng *rand.Rand, g *graph, o options) *scenario {
	sc := &scenario{}
	pick := func(rng *rand.Rand, nodes []string) string { return nodes[rng.IntN(len(nodes))] }
	if o.failing == "dependents" {
		pick = g.byDependents()
	}
	t := start
	for i := range o.failures {
		if i > 0 && rng.Float64() < o.overlap {
			t = sc.failures[i-1].start.Add(time.Duration(rng.IntN(60)) * time.Second)
		} else {
			t = t.Add(10 * time.Minute)
		}
		f := failure{node: pick(rng, g.nodes), start: t}
		dur := time.Duration(3+rng.IntN(8)) * time.Minute
		rs := rules(rng, rootRules[rng.IntN(len(rootRules))], o.alerts)
		f.root = sc.add(alert{Rule: rs[0], Severity: "critical", SourceID: f.node, StartedAt: t, ResolvedAt: t.Add(dur), failure: i})
		for _, r := range rs[1:] {
			sc.add(alert{Rule: r, Severity: "critical", SourceID: f.node, StartedAt: t, ResolvedAt: t.Add(dur), failure: i})
		}
		sc.failures = append(sc.failures, f)
		sc.propagate(rng, g, f, i, dur, o.alerts)
	}
	sc.addNoise(rng, g, o.noise)
	return sc
}

// propagate makes the symptoms of failure f: its dependents, breadth first, 3 hops up.
func (sc *scenario) propagate(rng *rand.Rand, g *graph, f failure, i int, dur time.Duration, alerts int) {
	delay := map[string]time.Duration{f.node: 0}
	frontier := []string{f.node}
	for range 3 {
		var next []string
		for _, n := range frontier {
			for _, up := range g.dependents[n] {
				if _, seen := delay[up]; seen || rng.Float64() >= 0.8 {
					continue
				}
				delay[up] = delay[n] + time.Duration(5+rng.IntN(56))*time.Second
				at := f.start.Add(delay[up])
				for _, r := range rules(rng, symptomRules[rng.IntN(len(symptomRules))], alerts) {
					sc.add(alert{Rule: r, Severity: "warning", SourceID: up, StartedAt: at, ResolvedAt: at.Add(dur), failure: i})
				}
				next = append(next, up)
			}
		}
		frontier = next
	}
}

// addNoise adds lone alerts on random nodes at random times, share of all alerts.
func (sc *scenario) addNoise(rng *rand.Rand, g *graph, share float64) {
	end := sc.failures[len(sc.failures)-1].start
	sc.noise = int(float64(len(sc.alerts)) * share / (1 - share))
	for range sc.noise {
		at := start.Add(time.Duration(rng.Int64N(int64(end.Sub(start)))))
		sc.add(alert{Rule: "latency", Severity: "warning", SourceID: g.nodes[rng.IntN(len(g.nodes))], StartedAt: at, ResolvedAt: at.Add(2 * time.Minute), failure: -1})
	}
}

func (sc *scenario) add(a alert) string {
	a.Fingerprint = fmt.Sprintf("fp-%d", len(sc.alerts))
	a.TenantID = "acme"
	sc.alerts = append(sc.alerts, a)
	return a.Fingerprint
}

// records are the alert records in event-time order: each alert firing, then resolved.
func (sc *scenario) records() []alert {
	var out []alert
	for _, a := range sc.alerts {
		firing := a
		firing.State, firing.ResolvedAt = "firing", time.Time{}
		resolved := a
		resolved.State = "resolved"
		out = append(out, firing, resolved)
	}
	slices.SortStableFunc(out, func(x, y alert) int { return x.at().Compare(y.at()) })
	return out
}

func (a alert) at() time.Time {
	if a.State == "resolved" {
		return a.ResolvedAt
	}
	return a.StartedAt
}

// byDependents picks a node with probability in proportion to 1 + how many nodes depend on it
// within 3 hops.
func (g *graph) byDependents() func(*rand.Rand, []string) string {
	weights := make([]int, len(g.nodes))
	total := 0
	for i, n := range g.nodes {
		weights[i] = 1 + g.dependentsWithin(n, 3)
		total += weights[i]
	}
	return func(rng *rand.Rand, nodes []string) string {
		x := rng.IntN(total)
		for i, w := range weights {
			if x < w {
				return nodes[i]
			}
			x -= w
		}
		return nodes[len(nodes)-1]
	}
}

func (g *graph) dependentsWithin(n string, hops int) int {
	seen := map[string]bool{n: true}
	frontier := []string{n}
	for range hops {
		var next []string
		for _, m := range frontier {
			for _, up := range g.dependents[m] {
				if !seen[up] {
					seen[up] = true
					next = append(next, up)
				}
			}
		}
		frontier = next
	}
	return len(seen) - 1
}
