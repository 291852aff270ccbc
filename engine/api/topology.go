package api

import (
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/topology"
)

// topologyRoute serves a lookup table of nodes and their depends_on column as a dependency
// graph, read again on each request (a lookup file that changed is reloaded).
type topologyRoute struct {
	srv     *Server
	lookup  string // declared edges ("" for none)
	learned string // learned edges ("" for none)
	maxAge  time.Duration
}

type topologyNode struct {
	Name       string   `json:"name"`
	DependsOn  []string `json:"depends_on"`
	Dependents []string `json:"dependents"`
}

type topologyEdge struct {
	From      string     `json:"from"`
	To        string     `json:"to"`
	Source    string     `json:"source"`
	LastSeen  *time.Time `json:"last_seen,omitempty"`
	Calls     *int64     `json:"calls,omitempty"`
	Errors    *int64     `json:"errors,omitempty"`
	ErrorRate *float64   `json:"error_rate,omitempty"`
	PerSec    *float64   `json:"calls_per_s,omitempty"`
}

func edgeOf(e topology.Edge) topologyEdge {
	out := topologyEdge{From: e.From, To: e.To, Source: e.Source}
	if !e.LastSeen.IsZero() {
		out.LastSeen, out.Calls, out.Errors, out.ErrorRate, out.PerSec = &e.LastSeen, &e.Calls, &e.Errors, &e.ErrorRate, &e.PerSec
	}
	return out
}

func (t *topologyRoute) serve(c *fiber.Ctx) error {
	g, err := t.graph()
	if err != nil {
		return fiber.NewError(fiber.StatusServiceUnavailable, err.Error())
	}
	nodes := []topologyNode{}
	for _, n := range g.Nodes() {
		nodes = append(nodes, topologyNode{Name: n, DependsOn: nonNil(g.DependsOnNodes(n)), Dependents: nonNil(g.Dependents(n))})
	}
	edges := []topologyEdge{}
	for _, e := range g.Edges() {
		edges = append(edges, edgeOf(e))
	}
	return c.JSON(fiber.Map{"nodes": nodes, "edges": edges})
}

// graph is the lookups' graph now.
func (t *topologyRoute) graph() (*topology.Graph, error) {
	g := topology.New()
	if t.lookup != "" {
		it, err := t.table(t.lookup)
		if err != nil {
			return nil, err
		}
		g.DeclareLookup(it, "depends_on")
	}
	if t.learned != "" {
		it, err := t.table(t.learned)
		if err != nil {
			return nil, err
		}
		g.LearnLookup(it, t.maxAge)
	}
	return g, nil
}

func (t *topologyRoute) table(name string) (engine.IterableLookup, error) {
	if t.srv.deps.Lookups == nil {
		return nil, fmt.Errorf("no lookup tables are loaded")
	}
	table, ok := t.srv.deps.Lookups().Lookup(name)
	if !ok {
		return nil, fmt.Errorf("lookup %q is not loaded", name)
	}
	it, ok := table.(engine.IterableLookup)
	if !ok {
		return nil, fmt.Errorf("lookup %q cannot be read whole", name)
	}
	return it, nil
}
