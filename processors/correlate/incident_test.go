package correlate

import (
	"slices"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine/topology"
)

var t0 = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

// web → api → {db, cache}; worker → db; payments stands alone.
func shop() *topology.Graph {
	g := topology.New()
	g.Declare("web", "api")
	g.Declare("api", "db")
	g.Declare("api", "cache")
	g.Declare("worker", "db")
	return g
}

var settings = Settings{Window: 2 * time.Minute, MaxHops: 3}

func firing(node string, after time.Duration) Alert {
	return Alert{Fingerprint: "fp-" + node, Tenant: "acme", Node: node, Rule: "errors", Severity: "critical", Firing: true, At: t0.Add(after), Strength: 1}
}

func resolved(node string, after time.Duration) Alert {
	a := firing(node, after)
	a.Firing = false
	return a
}

func kinds(changes []Change) []string {
	var out []string
	for _, c := range changes {
		out = append(out, c.Kind)
	}
	return out
}

// A database failure and its symptoms upstream are one incident naming the database, with
// the path from each symptom; it resolves when the last of them does.
func TestADependencyFailureIsOneIncidentNamingIt(t *testing.T) {
	g, st := shop(), &State{}
	var log []string
	for _, a := range []Alert{firing("db", 0), firing("api", 20*time.Second), firing("worker", 30*time.Second), firing("web", 40*time.Second)} {
		log = append(log, kinds(Evaluate(st, a, g, settings))...)
	}
	if !slices.Equal(log, []string{"opened", "updated", "updated", "updated"}) || len(st.Open) != 1 {
		t.Fatalf("changes %v, %d open incidents: want one incident, opened then updated", log, len(st.Open))
	}
	rc := Rank(only(st), g, settings)
	if rc.Candidates[0].Node != "db" || rc.Candidates[0].Explains != 1 || rc.Confidence <= 0.5 {
		t.Errorf("root cause %+v (confidence %.2f), want db explaining every symptom", rc.Candidates[0], rc.Confidence)
	}
	want := map[string][]string{"api": {"api", "db"}, "web": {"web", "api", "db"}, "worker": {"worker", "db"}}
	for _, e := range rc.Evidence {
		if !slices.Equal(e.Path, want[e.Symptom]) {
			t.Errorf("evidence for %s: %v, want %v", e.Symptom, e.Path, want[e.Symptom])
		}
	}
	for _, a := range []Alert{resolved("web", 3*time.Minute), resolved("api", 4*time.Minute), resolved("worker", 4*time.Minute)} {
		if got := kinds(Evaluate(st, a, g, settings)); !slices.Equal(got, []string{"updated"}) {
			t.Fatalf("%s resolving: %v, want updated", a.Node, got)
		}
	}
	changes := Evaluate(st, resolved("db", 5*time.Minute), g, settings)
	if !slices.Equal(kinds(changes), []string{"resolved"}) || !changes[0].Incident.ResolvedAt.Equal(t0.Add(5*time.Minute)) || len(st.Open) != 0 {
		t.Errorf("the last member resolving: %v, resolved at %v, %d open", kinds(changes), changes[0].Incident.ResolvedAt, len(st.Open))
	}
}

// Failures that cannot explain each other are kept apart: two dependencies of one service,
// a service outside the graph, the same node after the window, another tenant.
func TestUnrelatedFailuresAreNotMerged(t *testing.T) {
	for name, second := range map[string]Alert{
		"a sibling dependency": firing("cache", 10*time.Second),
		"a node outside":       firing("payments", 10*time.Second),
		"after the window":     firing("api", 3*time.Minute),
		"another tenant":       func() Alert { a := firing("api", 10*time.Second); a.Tenant = "globex"; return a }(),
	} {
		g, st := shop(), &State{}
		Evaluate(st, firing("db", 0), g, settings)
		if got := kinds(Evaluate(st, second, g, settings)); !slices.Equal(got, []string{"opened"}) || len(st.Open) != 2 {
			t.Errorf("%s: %v with %d open, want a second incident", name, got, len(st.Open))
		}
	}
}

// An alert that could cause members of two open incidents is their common cause: it merges
// them, the older taking the other's members. One that only follows from both (a service
// using two failing dependencies) joins the older and merges nothing.
func TestACommonCauseMergesIncidentsASharedSymptomDoesNot(t *testing.T) {
	g, st := shop(), &State{}
	Evaluate(st, firing("web", 0), g, settings)
	Evaluate(st, firing("worker", 5*time.Second), g, settings) // apart: neither depends on the other
	changes := Evaluate(st, firing("db", 10*time.Second), g, settings)
	if !slices.Equal(kinds(changes), []string{"updated", "merged"}) || len(st.Open) != 1 {
		t.Fatalf("db (both depend on it): %v with %d open, want updated + merged into one", kinds(changes), len(st.Open))
	}
	if changes[1].MergedInto != changes[0].Incident.ID || len(changes[0].Incident.Members) != 3 {
		t.Errorf("merged into %s, survivor %s with %d members", changes[1].MergedInto, changes[0].Incident.ID, len(changes[0].Incident.Members))
	}

	g, st = shop(), &State{}
	Evaluate(st, firing("db", 0), g, settings)
	Evaluate(st, firing("cache", 5*time.Second), g, settings) // apart: siblings
	if got := kinds(Evaluate(st, firing("api", 10*time.Second), g, settings)); !slices.Equal(got, []string{"updated"}) || len(st.Open) != 2 {
		t.Errorf("api (a symptom of both): %v with %d open, want it to join one and leave two incidents", got, len(st.Open))
	}
}

// A redelivered alert changes nothing and the incident's id is the same for the same alert.
func TestRedeliveryIsANoOp(t *testing.T) {
	g, st := shop(), &State{}
	first := Evaluate(st, firing("db", 0), g, settings)
	if again := Evaluate(st, firing("db", 0), g, settings); len(again) != 0 {
		t.Errorf("the same alert again: %v", kinds(again))
	}
	if id := incidentID(firing("db", 0)); first[0].Incident.ID != id {
		t.Errorf("incident id %s, want %s (a hash of the alert)", first[0].Incident.ID, id)
	}
}

// only is the one open incident of st.
func only(st *State) *Incident {
	for _, inc := range st.Open {
		return inc
	}
	return nil
}
