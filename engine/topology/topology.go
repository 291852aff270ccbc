// Package topology is the service dependency graph that correlation reads: which service
// depends on (calls) which. A graph is built from declared edges: a lookup table's
// depends_on column (the CMDB), the pipeline's topology: block, a processor's edges, and
// edges learned from the calls spans show (a lookup kept in the topic a service_graph
// processor writes).
//
// An edge A → B reads "A depends on B": a failure of B shows as symptoms on A and on what
// depends on A, so a root cause lies downstream of its symptoms, along the edges.
package topology

import (
	"cmp"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/engine"
)

// Edge is one dependency.
type Edge struct {
	From, To string
	// Source says where the edge comes from: "declared" (a lookup, the topology: block, a
	// processor's edges), "learned" (calls seen in spans: a service_graph processor's edge
	// records) or "declared+learned".
	Source string
	// What the spans showed of a learned edge: when it was last seen, and the calls and
	// failed calls of the latest interval the service_graph processor reported.
	LastSeen          time.Time
	Calls, Errors     int64
	ErrorRate, PerSec float64
}

// Graph is a dependency graph. The zero value is empty; it is not safe for concurrent
// writes (its owner, one processor instance, serializes them).
type Graph struct {
	deps       map[string]map[string]*Edge // from → to
	dependents map[string]map[string]bool  // to → from
}

// New returns an empty graph.
func New() *Graph {
	return &Graph{deps: map[string]map[string]*Edge{}, dependents: map[string]map[string]bool{}}
}

// Declare adds from → to as a declared edge (a CMDB row, the topology: block).
func (g *Graph) Declare(from, to string) {
	e := g.edge(from, to)
	e.Source = joinSource(e.Source, "declared")
}

// Learn adds from → to as an edge seen in spans, with what they showed of it.
func (g *Graph) Learn(seen Edge) {
	e := g.edge(seen.From, seen.To)
	e.Source = joinSource(e.Source, "learned")
	e.LastSeen, e.Calls, e.Errors, e.ErrorRate, e.PerSec = seen.LastSeen, seen.Calls, seen.Errors, seen.ErrorRate, seen.PerSec
}

func joinSource(had, source string) string {
	if had == "" || had == source {
		return source
	}
	return "declared+learned"
}

// LearnLookup adds the edges of a table of learned edges (a lookup kept in the topic a
// service_graph processor writes): rows with from, to and last_seen, and optionally calls,
// errors, error_rate and calls_per_s. An edge not seen for maxAge before the newest one
// was is left out (aged out: the call stopped); 0 keeps every edge.
func (g *Graph) LearnLookup(t engine.IterableLookup, maxAge time.Duration) {
	var seen []Edge
	var newest time.Time
	t.Each(func(_ string, row map[string]any) {
		if e, ok := learnedEdge(row); ok {
			seen = append(seen, e)
			if e.LastSeen.After(newest) {
				newest = e.LastSeen
			}
		}
	})
	for _, e := range seen {
		if maxAge == 0 || !e.LastSeen.Before(newest.Add(-maxAge)) {
			g.Learn(e)
		}
	}
}

func learnedEdge(row map[string]any) (Edge, bool) {
	from, _ := row["from"].(string)
	to, _ := row["to"].(string)
	last, _ := row["last_seen"].(string)
	at, err := time.Parse(time.RFC3339Nano, last)
	if from == "" || to == "" || err != nil {
		return Edge{}, false
	}
	e := Edge{From: from, To: to, LastSeen: at}
	e.Calls, e.Errors = int64(number(row["calls"])), int64(number(row["errors"]))
	e.ErrorRate, e.PerSec = number(row["error_rate"]), number(row["calls_per_s"])
	return e, true
}

func number(v any) float64 {
	f, _ := v.(float64)
	return f
}

func (g *Graph) edge(from, to string) *Edge {
	if g.deps[from] == nil {
		g.deps[from] = map[string]*Edge{}
	}
	e := g.deps[from][to]
	if e == nil {
		e = &Edge{From: from, To: to}
		g.deps[from][to] = e
		if g.dependents[to] == nil {
			g.dependents[to] = map[string]bool{}
		}
		g.dependents[to][from] = true
	}
	return e
}

// Edges are the graph's edges, sorted by From then To.
func (g *Graph) Edges() []Edge {
	var out []Edge
	for _, tos := range g.deps {
		for _, e := range tos {
			out = append(out, *e)
		}
	}
	slices.SortFunc(out, func(a, b Edge) int {
		if a.From != b.From {
			return cmp.Compare(a.From, b.From)
		}
		return cmp.Compare(a.To, b.To)
	})
	return out
}

// DependsOn says whether from depends on to within maxHops edges (0: from is to).
func (g *Graph) DependsOn(from, to string, maxHops int) bool {
	return g.Path(from, to, maxHops) != nil
}

// Path is the shortest chain of dependencies from → … → to within maxHops edges, both ends
// included; nil when there is none. Path(x, x) is [x].
func (g *Graph) Path(from, to string, maxHops int) []string {
	return g.bfs(from, to, maxHops)
}

// bfs is the shortest path from → to along dependencies, within maxHops edges.
func (g *Graph) bfs(from, to string, maxHops int) []string {
	if from == to {
		return []string{from}
	}
	prev := map[string]string{from: ""}
	frontier := []string{from}
	for hop := 0; hop < maxHops && len(frontier) > 0; hop++ {
		var nextFrontier []string
		for _, n := range frontier {
			for _, m := range keys(g.deps[n]) {
				if _, seen := prev[m]; seen {
					continue
				}
				prev[m] = n
				if m == to {
					return walkBack(prev, from, to)
				}
				nextFrontier = append(nextFrontier, m)
			}
		}
		frontier = nextFrontier
	}
	return nil
}

func walkBack(prev map[string]string, from, to string) []string {
	path := []string{to}
	for n := to; n != from; {
		n = prev[n]
		path = append(path, n)
	}
	slices.Reverse(path)
	return path
}

func keys(m map[string]*Edge) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out) // a deterministic shortest path when there are several
	return out
}

func setKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// DeclareLookup declares the edges of a lookup table: each row is a node (its key), and its
// column lists what it depends on (Dependencies).
func (g *Graph) DeclareLookup(t engine.IterableLookup, column string) {
	t.Each(func(node string, row map[string]any) {
		g.node(node)
		for _, to := range Dependencies(row[column]) {
			g.Declare(node, to)
		}
	})
}

// node makes sure n is a node of the graph even without edges.
func (g *Graph) node(n string) {
	if g.deps[n] == nil {
		g.deps[n] = map[string]*Edge{}
	}
}

// Nodes are every node of the graph (with or without edges), sorted.
func (g *Graph) Nodes() []string {
	seen := map[string]bool{}
	for from, tos := range g.deps {
		seen[from] = true
		for to := range tos {
			seen[to] = true
		}
	}
	return setKeys(seen)
}

// DependsOnNodes are what n depends on directly, sorted.
func (g *Graph) DependsOnNodes(n string) []string { return keys(g.deps[n]) }

// Dependents are the nodes that depend on n directly, sorted.
func (g *Graph) Dependents(n string) []string { return setKeys(g.dependents[n]) }

var separators = regexp.MustCompile(`[\s,;]+`)

// Dependencies reads a depends_on cell: names separated by spaces, commas or semicolons, a
// JSON list in a string, or a list.
func Dependencies(v any) []string {
	switch x := v.(type) {
	case []any:
		var out []string
		for _, item := range x {
			if s, ok := item.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	case string:
		if strings.HasPrefix(strings.TrimSpace(x), "[") {
			var list []any
			if json.Unmarshal([]byte(x), &list) == nil {
				return Dependencies(list)
			}
		}
		return slices.DeleteFunc(separators.Split(strings.TrimSpace(x), -1), func(s string) bool { return s == "" })
	}
	return nil
}
