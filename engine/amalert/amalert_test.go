package amalert

import (
	"maps"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine/eval"
)

func TestLabelNamesOfSeriesExpressions(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"tenant_id", "tenant_id"},
		{"source.source_id", "source_id"},
		{"tags?.env", "tags__env"},
		{`lower(host)`, "lower_host_"},
		{"1x", "_1x"},
	} {
		if got := seriesLabelName(tt.src, map[string]string{}); got != tt.want {
			t.Errorf("seriesLabelName(%q) = %q, want %q", tt.src, got, tt.want)
		}
	}
	if got := seriesLabelName("b.id", map[string]string{"id": "x"}); got != "b_id" {
		t.Errorf("a taken name: got %q, want b_id", got)
	}
}

// An incident record (the correlate processor's) is one alert: alertname incident, labelled
// with its id and root cause, firing while open and resolved once merged or resolved; critical
// when it holds several alerts, else its one alert's severity; the evidence as an annotation.
func TestIncidentRecordsAreAlerts(t *testing.T) {
	incident := func(state string, severities ...string) map[string]any {
		var members []any
		for _, s := range severities {
			members = append(members, map[string]any{"severity": s})
		}
		return map[string]any{"incident_id": "inc-1", "state": state, "root_cause": "db", "tenant_id": "acme", "title": "db: 2 alerts on 2 nodes",
			"opened_at": "2026-12-07T09:00:00Z", "updated_at": "2026-12-07T09:05:00Z", "members": members,
			"evidence": []any{map[string]any{"symptom": "web", "path": []any{"web", "api", "db"}}}}
	}
	a, err := Of(incident("open", "warning", "warning"), nil, eval.Env{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"alertname": "incident", "incident_id": "inc-1", "root_cause": "db", "source_id": "db", "tenant_id": "acme", "severity": "critical"}
	if a.Status != StatusFiring || a.Fingerprint != "inc-1" || !maps.Equal(a.Labels, want) || a.Annotations["evidence"] != "web: web → api → db" || a.Annotations["summary"] != "db: 2 alerts on 2 nodes" {
		t.Errorf("open incident: %+v", a)
	}
	if a, _ := Of(incident("open", "warning"), nil, eval.Env{}); a.Labels["severity"] != "warning" {
		t.Errorf("a lone warning's incident has severity %q, want warning", a.Labels["severity"])
	}
	for _, state := range []string{"merged", "resolved"} {
		a, err := Of(incident(state, "critical"), nil, eval.Env{})
		if err != nil || a.Status != StatusResolved || !a.EndsAt.Equal(time.Date(2026, 12, 7, 9, 5, 0, 0, time.UTC)) {
			t.Errorf("%s incident: %+v, %v; want resolved at its last update", state, a, err)
		}
	}
}
