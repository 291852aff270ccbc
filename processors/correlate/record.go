package correlate

import (
	"cmp"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/topology"
	"github.com/eventops/eventops-engine/engine/types"
)

// incidentRecord is the record of change c, made while reading rec.
func incidentRecord(rec *engine.Record, c Change, g *topology.Graph, set Settings) *engine.Record {
	inc := c.Incident
	rc := Rank(inc, g, set)
	v := map[string]any{
		"incident_id": inc.ID, "tenant_id": inc.Tenant, "state": state(c), "change": c.Kind,
		"opened_at": fmtTime(inc.OpenedAt), "updated_at": fmtTime(inc.UpdatedAt), "ts": fmtTime(inc.UpdatedAt),
		"root_cause": rc.Candidates[0].Node, "confidence": round(rc.Confidence),
		"candidates": candidateValues(rc), "evidence": evidenceValue(rc), "members": memberValues(inc),
		"size": float64(len(inc.Members)), "firing": float64(inc.firing()),
		"title": fmt.Sprintf("%s: %s on %s", rc.Candidates[0].Node, plural(len(inc.Members), "alert"), plural(len(rc.Candidates), "node")),
	}
	if !inc.ResolvedAt.IsZero() {
		v["resolved_at"] = fmtTime(inc.ResolvedAt)
	}
	if c.MergedInto != "" {
		v["merged_into"] = c.MergedInto
	}
	v["event_id"] = eventID(inc.ID, c.Kind, inc.UpdatedAt, len(inc.Members), inc.firing())
	return &engine.Record{Key: []byte(inc.ID), Value: v, Source: rec.Source}
}

// state is the incident's state after c: open, merged or resolved.
func state(c Change) string {
	switch c.Kind {
	case "merged", "resolved":
		return c.Kind
	}
	return "open"
}

func candidateValues(rc RootCause) []any {
	var out []any
	for _, c := range rc.Candidates[:min(3, len(rc.Candidates))] {
		out = append(out, map[string]any{"node": c.Node, "score": round(c.Score), "explains": round(c.Explains), "healthy": c.Healthy, "onset": round(c.Onset), "strength": round(c.Strength)})
	}
	return out
}

func evidenceValue(rc RootCause) []any {
	out := []any{}
	for _, e := range rc.Evidence {
		path := make([]any, len(e.Path))
		for i, n := range e.Path {
			path[i] = n
		}
		out = append(out, map[string]any{"symptom": e.Symptom, "path": path})
	}
	return out
}

func memberValues(inc *Incident) []any {
	ms := make([]*Member, 0, len(inc.Members))
	for _, m := range inc.Members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *Member) int {
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.Fingerprint, b.Fingerprint)
	})
	out := make([]any, len(ms))
	for i, m := range ms {
		mv := map[string]any{"fingerprint": m.Fingerprint, "node": m.Node, "rule": m.Rule, "severity": m.Severity, "started_at": fmtTime(m.StartedAt), "state": "firing"}
		if !m.ResolvedAt.IsZero() {
			mv["state"], mv["resolved_at"] = "resolved", fmtTime(m.ResolvedAt)
		}
		out[i] = mv
	}
	return out
}

// eventID is the same for the same change read again.
func eventID(id, kind string, at time.Time, size, firing int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%s|%d|%d", id, kind, at.UTC().Format(time.RFC3339Nano), size, firing))
	u, _ := uuid.FromBytes(h[:16])
	return u.String()
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func round(f float64) float64 { return float64(int(f*1000+0.5)) / 1000 }

var incidentType = types.ObjectOf("the correlate processor's incident records", map[string]*types.Type{
	"incident_id": types.TStr, "tenant_id": types.TStr, "state": types.TStr, "change": types.TStr,
	"opened_at": types.TStr, "updated_at": types.TStr, "resolved_at": types.TStr, "ts": types.TStr,
	"merged_into": types.TStr, "root_cause": types.TStr, "confidence": types.TFloat, "title": types.TStr,
	"size": types.TFloat, "firing": types.TFloat, "event_id": types.TStr,
	"candidates": types.Any, "evidence": types.Any, "members": types.Any,
})

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
