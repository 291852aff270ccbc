package notify

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/lookup"
)

type lookups map[string]engine.LookupTable

func (l lookups) Lookup(name string) (engine.LookupTable, bool) { t, ok := l[name]; return t, ok }

// incidentRow is an incident record as correlate writes it (decoded from JSON), with its
// members' fingerprints and nodes.
func incidentRow(id, state, cause string, members ...[2]string) map[string]any {
	var ms []any
	for _, m := range members {
		ms = append(ms, map[string]any{"fingerprint": m[0], "node": m[1], "state": "firing"})
	}
	return map[string]any{"incident_id": id, "state": state, "root_cause": cause, "members": ms}
}

// With inhibit_symptoms, an alert that correlate put in an open incident whose root cause is
// another node is muted (inhibited by the incident); the cause's own alert, an alert of a
// resolved incident and a lone alert's incident are notified.
func TestSymptomsOfAnOpenIncidentAreMuted(t *testing.T) {
	table := lookup.New("incidents", lookup.Rows{
		"inc-1": incidentRow("inc-1", "open", "db", [2]string{"errors/db", "db"}, [2]string{"errors/api", "api"}, [2]string{"errors/web", "web"}),
		"inc-2": incidentRow("inc-2", "resolved", "cache", [2]string{"errors/cache", "cache"}, [2]string{"errors/worker", "worker"}),
		"inc-3": incidentRow("inc-3", "open", "payments", [2]string{"errors/payments", "payments"}),
	})
	c := &Config{
		Route:           RouteConfig{Receiver: "team", GroupBy: []string{"source_id"}, GroupWait: dur(30 * time.Second), GroupInterval: dur(5 * time.Minute), RepeatInterval: dur(4 * time.Hour)},
		Receivers:       []ReceiverConfig{{Name: "team"}},
		InhibitSymptoms: "incidents",
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	clock := &stepClock{now: t0}
	built, err := build(c, engine.BuildEnv{Clock: clock, Lookups: lookups{"incidents": table}})
	if err != nil {
		t.Fatal(err)
	}
	p := built.(*Processor)
	var batch []*engine.Record
	for _, host := range []string{"db", "api", "web", "worker", "payments"} {
		batch = append(batch, alertRecord("errors", host, "critical", "firing", t0, t0, 0))
	}
	if _, err := p.Process(context.Background(), batch, &engine.Rejects{}); err != nil {
		t.Fatal(err)
	}
	clock.now = t0.Add(30 * time.Second)
	out, err := p.Tick(context.Background(), clock.now, &engine.Rejects{})
	if err != nil {
		t.Fatal(err)
	}
	var notified []string
	for _, n := range out {
		notified = append(notified, n.Value["groupLabels"].(map[string]any)["source_id"].(string))
	}
	slices.Sort(notified)
	if want := []string{"db", "payments", "worker"}; !slices.Equal(notified, want) {
		t.Errorf("notified %v, want %v: api and web are symptoms of open incident inc-1", notified, want)
	}
	for _, a := range p.DispatchedAlerts() {
		if a.Labels["source_id"] == "api" && !slices.Contains(a.InhibitedBy, "inc-1") {
			t.Errorf("the API shows api's alert inhibited by %v, want the incident inc-1", a.InhibitedBy)
		}
	}
}
