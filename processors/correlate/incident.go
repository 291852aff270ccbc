// Package correlate is the correlate processor (issue 21, in progress): it groups alerts into
// incidents over a service topology (engine/topology) and time, and names each incident's
// probable root cause. This file is its core: incidents as plain data, changed by one pure
// function of (state, alert, graph, settings), in event time, as the threshold processor's
// alert states are.
package correlate

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"

	"github.com/eventops/eventops-engine/engine/topology"
)

// Alert is what correlation reads of an alert record.
type Alert struct {
	Fingerprint, Tenant, Node, Rule, Severity string
	// Firing is true for a firing alert, false for a resolved one.
	Firing bool
	// At is when it started (firing) or resolved, in event time.
	At time.Time
	// Strength is how strong the alert is, 0 to 1 (severity, or an anomaly's score).
	Strength float64
}

// Member is an alert of an incident.
type Member struct {
	Fingerprint, Node, Rule, Severity string
	StartedAt, ResolvedAt             time.Time // ResolvedAt zero while firing
	Strength                          float64
}

// Incident is a group of alerts on connected nodes that started close together.
type Incident struct {
	ID, Tenant                      string
	OpenedAt, UpdatedAt, ResolvedAt time.Time
	Members                         map[string]*Member // by fingerprint
}

// State is the open incidents of one input partition.
type State struct {
	Open map[string]*Incident // by ID
}

// Settings are the processor's grouping rules.
type Settings struct {
	// Window is how far apart (in event time) two alerts' starts may be to join.
	Window time.Duration
	// MaxHops is how many dependency edges may lie between two alerts' nodes.
	MaxHops int
}

// Change is what happened to an incident: Kind is opened, updated, merged (into MergedInto:
// an alert joined it to an older incident) or resolved.
type Change struct {
	Kind       string
	Incident   *Incident
	MergedInto string
}

// Evaluate applies alert a to st and says which incidents changed.
func Evaluate(st *State, a Alert, g *topology.Graph, set Settings) []Change {
	if st.Open == nil {
		st.Open = map[string]*Incident{}
	}
	if inc, m := st.find(a.Fingerprint); inc != nil {
		return st.update(inc, m, a)
	}
	if !a.Firing {
		return nil // the end of an alert no incident holds (it started before this state)
	}
	joined := st.joinable(a, g, set)
	if len(joined) == 0 {
		inc := &Incident{ID: incidentID(a), Tenant: a.Tenant, OpenedAt: a.At, UpdatedAt: a.At, Members: map[string]*Member{}}
		inc.add(a)
		st.Open[inc.ID] = inc
		return []Change{{Kind: "opened", Incident: inc}}
	}
	into, merging := joinPlan(joined)
	into.add(a)
	into.UpdatedAt = later(into.UpdatedAt, a.At)
	changes := []Change{{Kind: "updated", Incident: into}}
	for _, other := range merging {
		for fp, m := range other.Members {
			into.Members[fp] = m
		}
		delete(st.Open, other.ID)
		other.UpdatedAt = a.At
		changes = append(changes, Change{Kind: "merged", Incident: other, MergedInto: into.ID})
	}
	return changes
}

// joinPlan picks the incident an alert joins and those it merges into it. An alert that could
// cause members of several incidents (they depend on its node) is their common cause: it
// merges them, into the oldest. An alert that is only a symptom of several (its node depends
// on theirs) does not: two failures behind one service are two incidents, and the symptom
// joins the oldest.
func joinPlan(joined []joinable) (*Incident, []*Incident) {
	var causes []*Incident
	for _, j := range joined {
		if j.causes {
			causes = append(causes, j.inc)
		}
	}
	if len(causes) == 0 {
		return joined[0].inc, nil
	}
	return causes[0], causes[1:]
}

// update applies a's new state to its member m of inc.
func (st *State) update(inc *Incident, m *Member, a Alert) []Change {
	switch {
	case a.Firing && !m.ResolvedAt.IsZero(): // firing again
		m.ResolvedAt = time.Time{}
	case !a.Firing && m.ResolvedAt.IsZero():
		m.ResolvedAt = a.At
	default:
		return nil // no news (a severity change: the member is the same)
	}
	inc.UpdatedAt = later(inc.UpdatedAt, a.At)
	if inc.firing() == 0 {
		inc.ResolvedAt = inc.UpdatedAt
		delete(st.Open, inc.ID)
		return []Change{{Kind: "resolved", Incident: inc}}
	}
	return []Change{{Kind: "updated", Incident: inc}}
}

// find is the open incident holding fingerprint, and its member.
func (st *State) find(fingerprint string) (*Incident, *Member) {
	for _, inc := range st.Open {
		if m := inc.Members[fingerprint]; m != nil {
			return inc, m
		}
	}
	return nil, nil
}

// joinable is an open incident an alert may join, and whether the alert could cause some of
// its members (they depend on the alert's node) rather than only follow from them.
type joinable struct {
	inc    *Incident
	causes bool
}

// joinable are the open incidents of a's tenant with a firing member that started within
// Window of a, on a node that a's depends on or that depends on a's (within MaxHops), oldest
// first. Sharing a dependency is not enough: in a tiered system nearly every two services
// share one a few hops down, and a shared cause that alerts itself joins both anyway (an
// alert on it merges their incidents).
func (st *State) joinable(a Alert, g *topology.Graph, set Settings) []joinable {
	var out []joinable
	for _, inc := range st.Open {
		if inc.Tenant != a.Tenant {
			continue
		}
		j := joinable{inc: inc}
		related := false
		for _, m := range inc.Members {
			if !m.ResolvedAt.IsZero() || absDuration(a.At.Sub(m.StartedAt)) > set.Window {
				continue
			}
			causes := g.DependsOn(m.Node, a.Node, set.MaxHops)
			if causes || g.DependsOn(a.Node, m.Node, set.MaxHops) {
				related, j.causes = true, j.causes || causes
			}
		}
		if related {
			out = append(out, j)
		}
	}
	slices.SortFunc(out, func(x, y joinable) int {
		if c := x.inc.OpenedAt.Compare(y.inc.OpenedAt); c != 0 {
			return c
		}
		return cmp.Compare(x.inc.ID, y.inc.ID)
	})
	return out
}

func (inc *Incident) add(a Alert) {
	inc.Members[a.Fingerprint] = &Member{Fingerprint: a.Fingerprint, Node: a.Node, Rule: a.Rule, Severity: a.Severity, StartedAt: a.At, Strength: a.Strength}
}

func (inc *Incident) firing() int {
	n := 0
	for _, m := range inc.Members {
		if m.ResolvedAt.IsZero() {
			n++
		}
	}
	return n
}

// incidentID is the same for a redelivered alert: a hash of its tenant, fingerprint and start.
func incidentID(a Alert) string {
	h := sha256.Sum256([]byte(a.Tenant + "\x00" + a.Fingerprint + "\x00" + a.At.UTC().Format(time.RFC3339Nano)))
	return hex.EncodeToString(h[:16])
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
