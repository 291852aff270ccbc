package api

import (
	"embed"
	"io/fs"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/eventops/eventops-engine/config"
)

// dashboardFiles are the dashboard's page, script, styles and icon, and the charting library
// (uPlot, vendor/uplot): all served from the binary, so the page loads nothing from
// elsewhere and works offline. No build step: plain HTML, CSS and JavaScript.
//
//go:embed dashboard
var dashboardFiles embed.FS

// dashboardPolicy keeps the page to itself: it loads only its own files, talks to this API
// only, and no other site may frame it (its token box would be a clickjacking target).
const dashboardPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// uiPrefix is where the dashboard's files are served; like the page, they hold no data and
// are open to anyone while the dashboard is served.
const uiPrefix = "/-/ui/"

var uiTypes = map[string]string{
	".html": fiber.MIMETextHTMLCharsetUTF8,
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

func (s *Server) serveDashboard() {
	s.app.Get("/", func(c *fiber.Ctx) error { return sendUIFile(c, "index.html") })
	s.app.Get("/favicon.ico", func(c *fiber.Ctx) error { return sendUIFile(c, "favicon.svg") })
	s.app.Get(uiPrefix+"*", func(c *fiber.Ctx) error { return sendUIFile(c, c.Params("*")) })
	s.app.Get("/-/dashboard", func(c *fiber.Ctx) error {
		view := s.routes.Load().dashboard
		view.Notify = s.notifyRuns()
		return c.JSON(view)
	})
}

// sendUIFile answers one of the dashboard's files, or 404.
func sendUIFile(c *fiber.Ctx, name string) error {
	name = path.Clean("/" + name)[1:]
	typ, known := uiTypes[path.Ext(name)]
	data, err := fs.ReadFile(dashboardFiles, "dashboard/"+name)
	if err != nil || !known {
		return fiber.NewError(fiber.StatusNotFound, "no such file")
	}
	c.Set(fiber.HeaderContentType, typ)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderContentSecurityPolicy, dashboardPolicy)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	return c.Send(data)
}

// dashboardView is what /-/dashboard answers: everything the page needs to draw itself.
type dashboardView struct {
	Title  string            `json:"title"`
	Params map[string]string `json:"params"`
	Panels []panelView       `json:"panels"`
	// Overview says the panels are the default overview, made from the routes because
	// none were declared.
	Overview bool        `json:"overview"`
	Routes   []routeInfo `json:"routes"`
	// Notify says a notify processor runs: /api/v2 answers its alerts and silences (the
	// page offers to silence an alert only then).
	Notify bool `json:"notify"`
}

// panelView is one panel as the page reads it: its kind and the settings of that kind.
type panelView struct {
	Kind       string          `json:"kind"`
	Title      string          `json:"title"`
	Width      string          `json:"width"`
	Route      string          `json:"route,omitempty"`
	Stream     string          `json:"stream,omitempty"`
	Time       string          `json:"time,omitempty"`
	Value      string          `json:"value,omitempty"`
	Series     string          `json:"series,omitempty"`
	Unit       string          `json:"unit,omitempty"`
	Band       string          `json:"band,omitempty"`
	Thresholds []thresholdView `json:"thresholds,omitempty"`
	Reduce     string          `json:"reduce,omitempty"`
	Warning    *float64        `json:"warning,omitempty"`
	Critical   *float64        `json:"critical,omitempty"`
	Chart      string          `json:"chart,omitempty"`
}

type thresholdView struct {
	Value    float64 `json:"value"`
	Label    string  `json:"label,omitempty"`
	Severity string  `json:"severity"`
}

// dashboardFor is the page's view of cfg's dashboard over routes: its declared panels, or
// the default overview.
func dashboardFor(d *config.Dashboard, routes []routeInfo) dashboardView {
	v := dashboardView{Title: d.Title, Params: d.Params, Routes: routes, Panels: []panelView{}}
	if v.Title == "" {
		v.Title = "EventOps"
	}
	if v.Params == nil {
		v.Params = map[string]string{}
	}
	for _, p := range d.Panels {
		v.Panels = append(v.Panels, viewOf(p))
	}
	if len(v.Panels) == 0 {
		v.Panels, v.Overview = overview(routes), true
	}
	return v
}

// viewOf flattens a declared panel, with its default title.
func viewOf(p config.Panel) panelView {
	switch {
	case p.Timeseries != nil:
		t := p.Timeseries
		v := panelView{Kind: "timeseries", Route: t.Route, Time: t.Time, Value: t.Value, Series: t.Series, Unit: t.Unit, Band: t.Band}
		for _, th := range t.Thresholds {
			v.Thresholds = append(v.Thresholds, thresholdView(th))
		}
		return v.common(t.PanelCommon, defaultTitle(t.Value, t.Series))
	case p.Stat != nil:
		st := p.Stat
		v := panelView{Kind: "stat", Route: st.Route, Value: st.Value, Reduce: st.Reduce, Unit: st.Unit, Warning: st.Warning, Critical: st.Critical}
		return v.common(st.PanelCommon, st.Reduce+" "+st.Value)
	case p.Firing != nil:
		v := panelView{Kind: "firing", Route: p.Firing.Route, Stream: p.Firing.Stream, Chart: p.Firing.Chart}
		return v.common(p.Firing.PanelCommon, "Firing now")
	case p.History != nil:
		v := panelView{Kind: "history", Route: p.History.Route}
		return v.common(p.History.PanelCommon, "Alert history")
	case p.Incidents != nil:
		v := panelView{Kind: "incidents", Route: p.Incidents.Route, Stream: p.Incidents.Stream}
		return v.common(p.Incidents.PanelCommon, "Incidents")
	case p.Silences != nil:
		return panelView{Kind: "silences"}.common(p.Silences.PanelCommon, "Silences")
	}
	return panelView{}
}

func (v panelView) common(c config.PanelCommon, title string) panelView {
	v.Title, v.Width = c.Title, c.Width
	if v.Title == "" {
		v.Title = title
	}
	if v.Width == "" {
		v.Width = "half"
	}
	return v
}

func defaultTitle(value, series string) string {
	if series == "" {
		return value
	}
	return value + " by " + series
}

// overview is the dashboard of a pipeline that declares no panels: what fires now (a route
// with latest_by, kept live by the first stream route), a chart of each route over the
// metrics table (a line per source), and the history of each other route over the alerts
// table.
func overview(routes []routeInfo) []panelView {
	var out []panelView
	stream := ""
	for _, r := range routes {
		if r.Kind == "stream" {
			stream = r.Path
			break
		}
	}
	for _, r := range routes {
		switch {
		case r.Kind == "table" && r.LatestBy != "":
			out = append(out, panelView{Kind: "firing", Title: "Firing now", Width: "half", Route: r.Path, Stream: stream})
		case r.Kind == "table" && r.Table == "alerts":
			out = append(out, panelView{Kind: "history", Title: "Alert history (" + r.Path + ")", Width: "half", Route: r.Path})
		case r.Kind == "table" && r.Table == "metrics":
			out = append(out, panelView{Kind: "timeseries", Title: strings.TrimPrefix(r.Path, "/"), Width: "full", Route: r.Path, Time: "ts", Value: "value", Series: "source_id"})
		}
	}
	return out
}

// notifyRuns reports whether a notify processor runs now (or is being reloaded).
func (s *Server) notifyRuns() bool {
	if s.deps.Dispatchers == nil {
		return false
	}
	ds, err := s.deps.Dispatchers()
	return err != nil || len(ds) > 0
}
