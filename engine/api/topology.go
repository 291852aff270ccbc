package api

import (
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/topology"
)

// topologyRoute serves a lookup table of nodes and their depends_on column as a dependency
// graph, read again on each request (a lookup file that changed is reloaded).
type topologyRoute struct {
	srv    *Server
	lookup string
}

type topologyNode struct {
	Name       string   `json:"name"`
	DependsOn  []string `json:"depends_on"`
	Dependents []string `json:"dependents"`
}

type topologyEdge struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Source string `json:"source"`
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
		edges = append(edges, topologyEdge{From: e.From, To: e.To, Source: e.Source})
	}
	return c.JSON(fiber.Map{"nodes": nodes, "edges": edges})
}

// graph is the lookup's graph now.
func (t *topologyRoute) graph() (*topology.Graph, error) {
	if t.srv.deps.Lookups == nil {
		return nil, fmt.Errorf("no lookup tables are loaded")
	}
	table, ok := t.srv.deps.Lookups().Lookup(t.lookup)
	if !ok {
		return nil, fmt.Errorf("lookup %q is not loaded", t.lookup)
	}
	it, ok := table.(engine.IterableLookup)
	if !ok {
		return nil, fmt.Errorf("lookup %q cannot be read whole", t.lookup)
	}
	g := topology.New()
	g.DeclareLookup(it, "depends_on")
	return g, nil
}
