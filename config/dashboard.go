package config

import (
	"fmt"
	"strings"
)

// Validate reports a panel that is not exactly one kind.
func (p Panel) Validate() error {
	switch kinds := p.kinds(); len(kinds) {
	case 0:
		return fmt.Errorf("set one of %s", strings.Join(panelKinds, ", "))
	case 1:
		return nil
	default:
		return fmt.Errorf("set exactly one of %s, not %s", strings.Join(panelKinds, ", "), strings.Join(kinds, " and "))
	}
}

var panelKinds = []string{"timeseries", "stat", "firing", "history", "incidents", "silences"}

func (p Panel) kinds() []string {
	return setOnes(option{"timeseries", p.Timeseries != nil}, option{"stat", p.Stat != nil}, option{"firing", p.Firing != nil},
		option{"history", p.History != nil}, option{"incidents", p.Incidents != nil}, option{"silences", p.Silences != nil})
}

// Kind names the panel's kind ("" when it is not exactly one).
func (p Panel) Kind() string {
	if kinds := p.kinds(); len(kinds) == 1 {
		return kinds[0]
	}
	return ""
}

// Validate reports an incidents panel with nothing to read.
func (p IncidentsPanel) Validate() error {
	if p.Route == "" && p.Stream == "" {
		return fmt.Errorf("set route (a table route over the incidents), stream (a stream route of their topic) or both")
	}
	return nil
}

// panelRoute is a route a panel reads, the kind of route it must be, and where it is
// written.
type panelRoute struct {
	path, kind, at string
}

// routes lists the routes panel p (at path) reads.
func (p Panel) routes(path string) []panelRoute {
	var out []panelRoute
	add := func(route, kind, field string) {
		if route != "" {
			out = append(out, panelRoute{route, kind, path + "." + field})
		}
	}
	switch {
	case p.Timeseries != nil:
		add(p.Timeseries.Route, "table", "timeseries.route")
	case p.Stat != nil:
		add(p.Stat.Route, "table", "stat.route")
	case p.Firing != nil:
		add(p.Firing.Route, "table", "firing.route")
		add(p.Firing.Stream, "stream", "firing.stream")
	case p.History != nil:
		add(p.History.Route, "table", "history.route")
	case p.Incidents != nil:
		add(p.Incidents.Route, "table", "incidents.route")
		add(p.Incidents.Stream, "stream", "incidents.stream")
	}
	return out
}

// checkDashboard reports panels that read routes the API does not declare, or declares as
// another kind, and a firing panel's chart that names no timeseries panel.
func (l *loader) checkDashboard(a *API) {
	kindOf := map[string]string{}
	var declared []string
	for _, r := range a.Routes {
		if kinds := routeKinds(r); len(kinds) == 1 {
			kindOf[r.Path] = kinds[0]
			declared = append(declared, r.Path)
		}
	}
	charts := map[string]bool{}
	for _, p := range a.Dashboard.Panels {
		if p.Timeseries != nil && p.Timeseries.Title != "" {
			charts[p.Timeseries.Title] = true
		}
	}
	for i, p := range a.Dashboard.Panels {
		path := indexPath("api.dashboard.panels", i)
		for _, r := range p.routes(path) {
			l.checkPanelRoute(r, kindOf, declared)
		}
		if f := p.Firing; f != nil && f.Chart != "" && !charts[f.Chart] {
			l.errs.Add(l.posOf(path+".firing.chart"), path+".firing.chart", "no timeseries panel is titled %q", f.Chart)
		}
	}
}

func (l *loader) checkPanelRoute(r panelRoute, kindOf map[string]string, declared []string) {
	switch kind, ok := kindOf[r.path]; {
	case !ok:
		l.errs.Add(l.posOf(r.at), r.at, "route %q is not declared under api.routes%s", r.path, suggestion(r.path, declared))
	case kind != r.kind:
		l.errs.Add(l.posOf(r.at), r.at, "route %q is a %s route; this panel reads a %s route here", r.path, kind, r.kind)
	}
}
