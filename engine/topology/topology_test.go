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

// Paths follow dependencies (toward causes); distances ignore direction, within the hops.
func TestPathsAndDistances(t *testing.T) {
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
	if d := g.Distance("worker", "web", 5); d != 3 { // worker → db ← api ← web
		t.Errorf("Distance(worker, web) = %d, want 3", d)
	}
	if d := g.Distance("worker", "web", 2); d != -1 {
		t.Errorf("Distance(worker, web) within 2 = %d, want -1", d)
	}
}

// Calls seen in spans make edges, counted; a learned edge unseen since the cutoff goes, a
// declared one stays.
func TestLearnedEdgesAgeOut(t *testing.T) {
	g := shop()
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	g.SeeCall("api", "payments", t0, false)
	g.SeeCall("api", "payments", t0.Add(time.Minute), true)
	g.SeeCall("web", "api", t0, false) // a declared edge seen in calls too
	edges := g.Edges()
	i := slices.IndexFunc(edges, func(e Edge) bool { return e.To == "payments" })
	if i < 0 || edges[i].Calls != 2 || edges[i].Errors != 1 || edges[i].Source != "spans" || !edges[i].LastSeen.Equal(t0.Add(time.Minute)) {
		t.Fatalf("learned edge: %+v", edges)
	}
	g.Age(t0.Add(time.Hour))
	if g.DependsOn("api", "payments", 1) || !g.DependsOn("web", "api", 1) {
		t.Errorf("after aging: api→payments %v (want gone), web→api %v (declared: kept)", g.DependsOn("api", "payments", 1), g.DependsOn("web", "api", 1))
	}
}
