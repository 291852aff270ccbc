package correlate

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/eventops/eventops-engine/engine/topology"
)

// Candidate is a node of an incident scored as its root cause.
type Candidate struct {
	Node string
	// Score is 0.4·Explains + 0.3·Healthy + 0.2·Onset + 0.1·Strength, each 0 to 1.
	Score float64
	// Explains is the share of the incident's alerting nodes that are this node or depend on
	// it (within MaxHops): the symptoms it accounts for.
	Explains float64
	// Healthy is 1 when none of the node's own dependencies alert in the incident (the
	// failure does not come from further down), else 0.
	Healthy float64
	// Onset is 1 for the node whose alerts started first, falling to 0 for one that started
	// Window later.
	Onset float64
	// Strength is the strongest of the node's alerts (severity or anomaly score).
	Strength float64
}

// Evidence is how a symptom leads to the cause: the chain of dependencies from the symptom's
// node to the cause's (nil when the graph does not connect them within MaxHops).
type Evidence struct {
	Symptom string
	Path    []string
}

// RootCause is an incident's probable root cause.
type RootCause struct {
	Candidates []Candidate // best first
	// Confidence is the best score's share of the best two (1 with one candidate): 0.5 is a
	// toss-up between two nodes.
	Confidence float64
	Evidence   []Evidence
}

// Rank scores every alerting node of inc as its root cause.
func Rank(inc *Incident, g *topology.Graph, set Settings) RootCause {
	nodes, start, strength := inc.nodes()
	first := slices.MinFunc(nodes, func(a, b string) int { return start[a].Compare(start[b]) })
	cands := make([]Candidate, 0, len(nodes))
	for _, c := range nodes {
		cand := Candidate{Node: c, Strength: strength[c], Healthy: 1}
		for _, s := range nodes {
			if g.DependsOn(s, c, set.MaxHops) {
				cand.Explains++
			}
			if s != c && g.DependsOn(c, s, set.MaxHops) {
				cand.Healthy = 0
			}
		}
		cand.Explains /= float64(len(nodes))
		cand.Onset = onset(start[c].Sub(start[first]), set.Window)
		cand.Score = 0.4*cand.Explains + 0.3*cand.Healthy + 0.2*cand.Onset + 0.1*cand.Strength
		cands = append(cands, cand)
	}
	slices.SortFunc(cands, func(a, b Candidate) int {
		if a.Score != b.Score {
			return cmp.Compare(b.Score, a.Score)
		}
		if c := start[a.Node].Compare(start[b.Node]); c != 0 {
			return c
		}
		return cmp.Compare(a.Node, b.Node)
	})
	return RootCause{Candidates: cands, Confidence: confidence(cands), Evidence: evidence(nodes, cands[0].Node, g, set)}
}

// nodes are the incident's alerting nodes (sorted), each node's earliest start and its
// strongest alert.
func (inc *Incident) nodes() ([]string, map[string]time.Time, map[string]float64) {
	start, strength := map[string]time.Time{}, map[string]float64{}
	for _, m := range inc.Members {
		if t, seen := start[m.Node]; !seen || m.StartedAt.Before(t) {
			start[m.Node] = m.StartedAt
		}
		strength[m.Node] = math.Max(strength[m.Node], m.Strength)
	}
	nodes := make([]string, 0, len(start))
	for n := range start {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	return nodes, start, strength
}

func onset(after, window time.Duration) float64 {
	if window <= 0 {
		return 1
	}
	return math.Max(0, 1-float64(after)/float64(window))
}

func confidence(cands []Candidate) float64 {
	if len(cands) == 1 || cands[0].Score+cands[1].Score == 0 {
		return 1
	}
	return cands[0].Score / (cands[0].Score + cands[1].Score)
}

// evidence is the path from each other alerting node to the cause.
func evidence(nodes []string, cause string, g *topology.Graph, set Settings) []Evidence {
	var out []Evidence
	for _, s := range nodes {
		if s != cause {
			out = append(out, Evidence{Symptom: s, Path: g.Path(s, cause, set.MaxHops)})
		}
	}
	return out
}
