package notify

import (
	"maps"
	"strconv"
	"time"

	"github.com/eventops/eventops-engine/engine/amalert"
)

// Route is one node of the routing tree, with what it inherits from its parents resolved:
// Alertmanager's route semantics.
type Route struct {
	// ID names the route by its place in the tree ("0" the root, "0.1" its second child),
	// which group keys carry.
	ID       string
	Receiver string
	// GroupBy lists the labels that split the route's alerts into groups; GroupByAll
	// groups by every label ("..." in the configuration).
	GroupBy        []string
	GroupByAll     bool
	GroupWait      time.Duration
	GroupInterval  time.Duration
	RepeatInterval time.Duration
	Matchers       Matchers
	Continue       bool
	Routes         []*Route
	// Mute and Active are the route's mute_time_intervals and active_time_intervals.
	Mute, Active []timeInterval
}

// Muted says whether the route sends nothing at now: in a mute interval, or outside every
// active interval it has.
func (r *Route) Muted(now time.Time) bool {
	for _, ti := range r.Mute {
		if ti.Contains(now) {
			return true
		}
	}
	if len(r.Active) == 0 {
		return false
	}
	for _, ti := range r.Active {
		if ti.Contains(now) {
			return false
		}
	}
	return true
}

// Match returns the routes an alert with labels is notified through: the deepest routes
// that match it, in tree order. A route whose children match none of the alert is itself a
// match; a matching child without continue ends the search among its siblings. The root
// matches every alert.
func (r *Route) Match(labels map[string]string) []*Route {
	if !r.Matchers.Matches(labels) {
		return nil
	}
	var out []*Route
	for _, child := range r.Routes {
		matched := child.Match(labels)
		out = append(out, matched...)
		if len(matched) > 0 && !child.Continue {
			break
		}
	}
	if len(out) == 0 {
		out = []*Route{r}
	}
	return out
}

// groupLabels are the labels of an alert that name its group on the route.
func (r *Route) groupLabels(labels map[string]string) map[string]string {
	if r.GroupByAll {
		return maps.Clone(labels)
	}
	out := map[string]string{}
	for _, name := range r.GroupBy {
		if v, ok := labels[name]; ok {
			out[name] = v
		}
	}
	return out
}

// groupKey names a group: its route and its labels, as Alertmanager writes it.
func (r *Route) groupKey(group map[string]string) string {
	return r.ID + ":" + amalert.LabelSetString(group)
}

// Walk calls fn for r and each route below it, parents first.
func (r *Route) Walk(fn func(*Route)) {
	fn(r)
	for _, c := range r.Routes {
		c.Walk(fn)
	}
}

// childID is the ID of the i-th child of the route with id.
func childID(id string, i int) string { return id + "." + strconv.Itoa(i) }
