package topology

import (
	"slices"
	"testing"
	"time"
)

// web → api → {db, cache}; worker → db.
func shop() *Graph {
	g := New()
	g.Declare("web", "api")
	g.Declare("api", "db")
	g.Declare("api", "cache")
	g.Declare("worker", "db")
	return g
}

// Paths follow dependencies (toward causes), within the hops.
func TestPaths(t *testing.T) {
	g := shop()
	for _, tc := range []struct {
		from, to string
		hops     int
		path     []string
	}{
		{"web", "db", 2, []string{"web", "api", "db"}},
		{"web", "db", 1, nil},
		{"db", "web", 5, nil}, // db does not depend on web
		{"api", "api", 0, []string{"api"}},
	} {
		if got := g.Path(tc.from, tc.to, tc.hops); !slices.Equal(got, tc.path) {
			t.Errorf("Path(%s, %s, %d) = %v, want %v", tc.from, tc.to, tc.hops, got, tc.path)
		}
	}
}

type rows map[string]map[string]any

func (r rows) Get(k string) (map[string]any, bool) { v, ok := r[k]; return v, ok }
func (r rows) Columns() []string                   { return nil }
func (r rows) Each(fn func(string, map[string]any)) {
	for k, v := range r {
		fn(k, v)
	}
}

// Learned edges join the declared ones with what spans showed of them; one not seen for
// maxAge before the newest is left out, and a row that is no edge is ignored.
func TestLearnedEdgesAgeOut(t *testing.T) {
	g := New()
	g.Declare("web", "api")
	g.LearnLookup(rows{
		"web->api":  {"from": "web", "to": "api", "last_seen": "2026-12-07T10:00:00Z", "calls": 12.0, "errors": 3.0, "error_rate": 0.25},
		"api->db":   {"from": "api", "to": "db", "last_seen": "2026-12-07T09:30:00Z"},
		"api->old":  {"from": "api", "to": "old", "last_seen": "2026-12-07T08:59:59Z"},
		"garbled":   {"from": "api"},
		"bad-times": {"from": "a", "to": "b", "last_seen": "yesterday"},
	}, time.Hour)
	edges := g.Edges()
	if len(edges) != 2 {
		t.Fatalf("edges %v, want web→api and api→db (api→old is over an hour older than the newest)", edges)
	}
	if e := edges[1]; e.From != "web" || e.Source != "declared+learned" || e.Calls != 12 || e.Errors != 3 || e.ErrorRate != 0.25 {
		t.Errorf("web→api %+v, want declared+learned with its counts", e)
	}
	if !g.DependsOn("web", "db", 2) {
		t.Error("web does not depend on db through the learned api→db")
	}
}
