package topology

import (
	"slices"
	"testing"
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
