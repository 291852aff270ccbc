package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/store"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// fakeStore is an in-memory store.Store over one table.
type fakeStore struct {
	cols []string
	rows []map[string]any
	err  error
}

func (f *fakeStore) Columns(_ context.Context, table string) ([]string, error) {
	if f.cols == nil {
		return nil, fmt.Errorf("table %s does not exist", table)
	}
	return f.cols, nil
}

func (f *fakeStore) Query(_ context.Context, q store.Query) ([]map[string]any, error) {
	if f.err != nil {
		return nil, f.err
	}
	var out []map[string]any
rows:
	for _, r := range f.rows {
		for _, c := range q.Where {
			if fmt.Sprint(r[c.Column]) != fmt.Sprint(c.Value) {
				continue rows
			}
		}
		if q.Range != nil {
			ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(r[q.Range.Column]))
			if err != nil || !q.Range.Holds(ts) {
				continue rows
			}
		}
		out = append(out, r)
	}
	if q.OrderBy != "" {
		slices.SortStableFunc(out, func(a, b map[string]any) int {
			c := cmp.Compare(fmt.Sprint(a[q.OrderBy]), fmt.Sprint(b[q.OrderBy]))
			if q.Desc {
				return -c
			}
			return c
		})
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	if len(q.Columns) > 0 {
		for i, r := range out {
			p := map[string]any{}
			for _, c := range q.Columns {
				p[c] = r[c]
			}
			out[i] = p
		}
	}
	return out, nil
}

func metricsStore() *fakeStore {
	row := func(ts, tenant, host string, v float64) map[string]any {
		return map[string]any{"ts": ts, "tenant": tenant, "source_id": host, "metric": "cpu_load", "value": v}
	}
	return &fakeStore{
		cols: []string{"ts", "tenant", "source_id", "metric", "value"},
		rows: []map[string]any{
			row("2025-10-16T09:00:00Z", "acme", "host-a", 91),
			row("2025-10-16T09:02:00Z", "acme", "host-a", 95),
			row("2025-10-16T09:01:00Z", "acme", "host-a", 93),
			row("2025-10-16T09:03:00Z", "acme", "host-b", 10),
			row("2025-10-16T09:04:00Z", "other", "host-a", 50),
		},
	}
}

// expr parses src as a where expression written at line 10, column 20.
func expr(name, src string, line int) config.Field {
	return config.Field{Name: name, Pos: config.Pos{File: "p.yaml", Line: line, Col: 7},
		Expr: &config.Expr{Src: src, Pos: config.Pos{File: "p.yaml", Line: line, Col: 20}, Path: "api.routes[0].where." + name}}
}

func cpuRoute() config.Route {
	return config.Route{
		Path:  "/metrics/cpu",
		Table: "metrics",
		Where: config.Fields{
			expr("tenant", "query.tenant", 3),
			expr("source_id", "query.host", 4),
			expr("metric", `"cpu_load"`, 5),
		},
		Order: "ts desc",
		Limit: 2,
	}
}

// startServer starts a server on a random loopback port and stops it with the test.
func startServer(t *testing.T, cfg *config.API, deps Deps) (*Server, string) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	srv, err := New(cfg, deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return srv, "http://" + srv.Addr()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func TestTableRoute(t *testing.T) {
	tests := []struct {
		name     string
		query    string
		storeErr error
		wantCode int
		wantTS   []string // ts of the returned rows, in order
		wantErr  string   // exact error message in the JSON body
	}{
		{name: "filters, newest first, route limit", query: "?tenant=acme&host=host-a", wantCode: 200,
			wantTS: []string{"2025-10-16T09:02:00Z", "2025-10-16T09:01:00Z"}},
		{name: "request lowers the limit", query: "?tenant=acme&host=host-a&limit=1", wantCode: 200,
			wantTS: []string{"2025-10-16T09:02:00Z"}},
		{name: "no matching rows is an empty array", query: "?tenant=acme&host=nope", wantCode: 200, wantTS: []string{}},
		{name: "missing parameter names it", query: "?tenant=acme", wantCode: 400,
			wantErr: `missing required query parameter "host"`},
		{name: "empty parameter is a value, not missing", query: "?tenant=acme&host=", wantCode: 200, wantTS: []string{}},
		{name: "limit not a number", query: "?tenant=acme&host=host-a&limit=ten", wantCode: 400,
			wantErr: `limit must be an integer between 1 and 2, got "ten"`},
		{name: "limit above the route's", query: "?tenant=acme&host=host-a&limit=3", wantCode: 400,
			wantErr: `limit must be an integer between 1 and 2, got "3"`},
		{name: "limit zero", query: "?tenant=acme&host=host-a&limit=0", wantCode: 400,
			wantErr: `limit must be an integer between 1 and 2, got "0"`},
		{name: "a value the column cannot hold is the client's mistake: 400 with the reason", query: "?tenant=acme&host=host-a",
			storeErr: fmt.Errorf("%w: where value: cannot parse \"high\" as a number", store.ErrBadQuery),
			wantCode: 400, wantErr: `bad query: where value: cannot parse "high" as a number`},
		{name: "store failure is a 500 without internals", query: "?tenant=acme&host=host-a", storeErr: errors.New("connection refused to 10.0.0.5"),
			wantCode: 500, wantErr: "query on table metrics failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := metricsStore()
			st.err = tt.storeErr
			_, base := startServer(t, &config.API{Routes: []config.Route{cpuRoute()}}, Deps{Stores: map[string]store.Store{"metrics": st}})
			code, body := get(t, base+"/metrics/cpu"+tt.query)
			if code != tt.wantCode {
				t.Fatalf("status %d, want %d; body %s", code, tt.wantCode, body)
			}
			if tt.wantErr != "" {
				var e struct{ Error string }
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != tt.wantErr {
					t.Fatalf("body %s, want error %q", body, tt.wantErr)
				}
				return
			}
			var rows []map[string]any
			if err := json.Unmarshal([]byte(body), &rows); err != nil {
				t.Fatalf("body %s is not a JSON array: %v", body, err)
			}
			got := []string{}
			for _, r := range rows {
				got = append(got, r["ts"].(string))
				if r["tenant"] != "acme" || r["metric"] != "cpu_load" {
					t.Errorf("row %v does not match the filters", r)
				}
			}
			if !slices.Equal(got, tt.wantTS) {
				t.Fatalf("rows ts %v, want %v", got, tt.wantTS)
			}
		})
	}
}

func TestPathParameters(t *testing.T) {
	route := config.Route{Path: "/metrics/:host", Table: "metrics", Where: config.Fields{expr("source_id", "path.host", 3)}, Order: "ts", Columns: []string{"ts", "value"}}
	_, base := startServer(t, &config.API{Routes: []config.Route{route}}, Deps{Stores: map[string]store.Store{"metrics": metricsStore()}})
	code, body := get(t, base+"/metrics/host-b")
	if code != 200 || body != `[{"ts":"2025-10-16T09:03:00Z","value":10}]` {
		t.Fatalf("got %d %s", code, body)
	}
}

func TestNewRejectsBadRoutes(t *testing.T) {
	routePos := config.Pos{File: "p.yaml", Line: 2, Col: 7}
	tablePos := config.Pos{File: "p.yaml", Line: 2, Col: 30}
	tests := []struct {
		name    string
		route   func(*config.Route)
		stores  map[string]store.Store
		wantPos config.Pos
		wantMsg string
	}{
		{name: "unknown column in where", route: func(r *config.Route) { r.Where = append(r.Where, expr("hostname", "query.host", 9)) },
			wantPos: config.Pos{File: "p.yaml", Line: 9, Col: 7}, wantMsg: `api.routes[0].where.hostname: table "metrics" has no column "hostname"`},
		{name: "expression does not compile", route: func(r *config.Route) { r.Where[0] = expr("tenant", "query.tenant ==", 3) },
			wantPos: config.Pos{File: "p.yaml", Line: 3, Col: 34}, wantMsg: `api.routes[0].where.tenant: expression "query.tenant =="`},
		{name: "table no store holds", route: func(r *config.Route) { r.Table = "alerts" },
			wantPos: tablePos, wantMsg: `api.routes[0].table: no sink or output writes table "alerts"`},
		{name: "order by unknown column", route: func(r *config.Route) { r.Order = "time desc" },
			wantPos: routePos, wantMsg: `api.routes[0].order: table "metrics" has no column "time"`},
		{name: "order with a bad direction", route: func(r *config.Route) { r.Order = "ts sideways" },
			wantPos: routePos, wantMsg: `api.routes[0].order: order must be a column optionally followed by asc or desc`},
		{name: "neither table nor stream", route: func(r *config.Route) { r.Table = "" },
			wantPos: routePos, wantMsg: `api.routes[0]: a route needs table or stream`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cpuRoute()
			tt.route(&r)
			_, err := New(&config.API{Routes: []config.Route{r}}, Deps{
				Stores: map[string]store.Store{"metrics": metricsStore()},
				Pos:    map[string]config.Pos{"api.routes[0]": routePos, "api.routes[0].table": tablePos},
			})
			var errs config.Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("New error %v, want exactly one config error", err)
			}
			if errs[0].Pos != tt.wantPos {
				t.Errorf("error at %+v, want %+v", errs[0].Pos, tt.wantPos)
			}
			if msg := errs[0].Error(); !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("error %q, want it to contain %q", msg, tt.wantMsg)
			}
		})
	}
}

func TestOperationalEndpoints(t *testing.T) {
	notReady := errors.New("stream rules: consumer not assigned")
	tests := []struct {
		name     string
		ready    func() error
		path     string
		wantCode int
		wantBody string
	}{
		{name: "healthy", path: "/-/healthy", wantCode: 200, wantBody: "OK"},
		{name: "ready", ready: func() error { return nil }, path: "/-/ready", wantCode: 200, wantBody: "OK"},
		{name: "not ready says why", ready: func() error { return notReady }, path: "/-/ready", wantCode: 503, wantBody: notReady.Error()},
		{name: "metrics in Prometheus text", path: "/-/metrics", wantCode: 200, wantBody: "# TYPE go_goroutines gauge"},
		{name: "routes for the dashboard", path: "/-/routes", wantCode: 200,
			wantBody: `[{"path":"/metrics/cpu","kind":"table","table":"metrics","params":["tenant","host"],"limit":2}]`},
		{name: "dashboard", path: "/", wantCode: 200, wantBody: `<script src="/-/ui/app.js">`},
		{name: "the dashboard's script", path: "/-/ui/app.js", wantCode: 200, wantBody: "/-/dashboard"},
		{name: "the charting library, from the binary", path: "/-/ui/vendor/uplot/uPlot.iife.min.js", wantCode: 200, wantBody: "uPlot"},
		{name: "favicon", path: "/favicon.ico", wantCode: 200, wantBody: "<svg"},
		{name: "no file outside the dashboard's", path: "/-/ui/../dashboard.go", wantCode: 404},
		{name: "the default overview", path: "/-/dashboard", wantCode: 200,
			wantBody: `"panels":[{"kind":"timeseries","title":"metrics/cpu","width":"full","route":"/metrics/cpu","time":"ts","value":"value","series":"source_id"}],"overview":true`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, base := startServer(t, &config.API{Routes: []config.Route{cpuRoute()}},
				Deps{Stores: map[string]store.Store{"metrics": metricsStore()}, Ready: tt.ready, Metrics: telemetry.New()})
			code, body := get(t, base+tt.path)
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Fatalf("GET %s: %d %q, want %d containing %q", tt.path, code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestDashboardCanBeTurnedOff(t *testing.T) {
	off := false
	_, base := startServer(t, &config.API{Dashboard: config.Dashboard{Enabled: &off}}, Deps{})
	if code, _ := get(t, base+"/"); code != 404 {
		t.Fatalf("GET / with dashboard: false: %d, want 404", code)
	}
}

// A reload's routes replace the running ones at once: a new route answers, a removed one is
// 404, and a route set with a mistake is refused without touching what serves.
func TestRoutesReplacedByAReload(t *testing.T) {
	stores := map[string]store.Store{"metrics": metricsStore()}
	srv, base := startServer(t, &config.API{Routes: []config.Route{cpuRoute()}}, Deps{Stores: stores})
	if code, _ := get(t, base+"/metrics/cpu?tenant=acme&host=host-a"); code != 200 {
		t.Fatalf("declared route: %d", code)
	}
	byHost := config.Route{Path: "/hosts/:host", Table: "metrics", Where: config.Fields{expr("source_id", "path.host", 3)}, Order: "ts", Columns: []string{"ts", "value"}}
	if _, err := srv.RoutesFor(&config.API{Routes: []config.Route{{Path: "/x", Table: "nope"}}}, stores, nil); err == nil {
		t.Fatal("a route on a table no store holds was accepted")
	}
	if code, _ := get(t, base+"/metrics/cpu?tenant=acme&host=host-a"); code != 200 {
		t.Fatalf("after a refused route set, the declared route answers %d", code)
	}
	rs, err := srv.RoutesFor(&config.API{Routes: []config.Route{byHost}}, stores, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.UseRoutes(rs)
	if code, body := get(t, base+"/hosts/host-b"); code != 200 || body != `[{"ts":"2025-10-16T09:03:00Z","value":10}]` {
		t.Fatalf("new route: %d %s", code, body)
	}
	if code, _ := get(t, base+"/metrics/cpu?tenant=acme&host=host-a"); code != 404 {
		t.Fatalf("removed route answers %d, want 404", code)
	}
	if code, _ := get(t, base+"/-/healthy"); code != 200 {
		t.Fatalf("/-/healthy after the reload: %d", code)
	}
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// from and to bound a table route's time column: RFC 3339 times, now, or durations before
// now on the engine's clock; a bad value, an empty range or a route without a time column is
// a 400 saying so.
func TestTimeRanges(t *testing.T) {
	now := time.Date(2025, 10, 16, 9, 3, 30, 0, time.UTC)
	route := cpuRoute()
	route.Limit = 100
	noTime := config.Route{Path: "/hosts", Table: "hosts"}
	stores := storeOf{"metrics": metricsStore(), "hosts": {cols: []string{"name"}, rows: []map[string]any{{"name": "host-a"}}}}.stores()
	_, base := startServer(t, &config.API{Routes: []config.Route{route, noTime}}, Deps{Stores: stores, Clock: fixedClock(now)})
	for _, tc := range []struct {
		query   string
		wantTS  []string
		wantErr string
	}{
		{query: "&from=2025-10-16T09:01:00Z&to=2025-10-16T09:02:00Z", wantTS: []string{"2025-10-16T09:01:00Z"}},
		{query: "&from=2025-10-16T11:01:00%2B02:00", wantTS: []string{"2025-10-16T09:02:00Z", "2025-10-16T09:01:00Z"}},
		{query: "&to=2025-10-16T09:01:00Z", wantTS: []string{"2025-10-16T09:00:00Z"}},
		{query: "&from=-2m", wantTS: []string{"2025-10-16T09:02:00Z"}},
		{query: "&from=-1d&to=now", wantTS: []string{"2025-10-16T09:02:00Z", "2025-10-16T09:01:00Z", "2025-10-16T09:00:00Z"}},
		{query: "&from=yesterday", wantErr: `from \"yesterday\" is neither an RFC 3339 time`},
		{query: "&to=-0s", wantErr: `to \"-0s\" is neither`},
		{query: "&from=2025-10-16T09:02:00Z&to=2025-10-16T09:02:00Z", wantErr: "must be before to"},
	} {
		code, body := get(t, base+"/metrics/cpu?tenant=acme&host=host-a"+tc.query)
		if tc.wantErr != "" {
			if code != 400 || !strings.Contains(body, tc.wantErr) {
				t.Errorf("%s: %d %s, want 400 saying %q", tc.query, code, body, tc.wantErr)
			}
			continue
		}
		var rows []map[string]any
		if err := json.Unmarshal([]byte(body), &rows); err != nil || code != 200 {
			t.Fatalf("%s: %d %s", tc.query, code, body)
		}
		var ts []string
		for _, r := range rows {
			ts = append(ts, r["ts"].(string))
		}
		if !slices.Equal(ts, tc.wantTS) {
			t.Errorf("%s: ts %v, want %v", tc.query, ts, tc.wantTS)
		}
	}
	if code, body := get(t, base+"/hosts?from=-1h"); code != 400 || !strings.Contains(body, "no time column") {
		t.Errorf("a route without a time column: %d %s", code, body)
	}
}

// /-/dashboard gives the page the declared panels, each with its kind's settings and a title
// when none was written, the starting parameters and the routes.
func TestDashboardPanels(t *testing.T) {
	warn := 80.0
	dash := config.Dashboard{Title: "Ops", Params: map[string]string{"tenant": "acme"}, Panels: []config.Panel{
		{Timeseries: &config.TimeseriesPanel{PanelCommon: config.PanelCommon{Width: "full"}, Route: "/metrics/cpu", Time: "ts", Value: "value", Series: "source_id", Unit: "percent",
			Thresholds: []config.PanelThreshold{{Value: 90, Label: "critical", Severity: "critical"}}}},
		{Stat: &config.StatPanel{PanelCommon: config.PanelCommon{Title: "Peak"}, Route: "/metrics/cpu", Value: "value", Reduce: "max", Warning: &warn}},
		{Silences: &config.SilencesPanel{}},
	}}
	_, base := startServer(t, &config.API{Routes: []config.Route{cpuRoute()}, Dashboard: dash}, Deps{Stores: map[string]store.Store{"metrics": metricsStore()}})
	code, body := get(t, base+"/-/dashboard")
	var got dashboardView
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil {
		t.Fatalf("GET /-/dashboard: %d %s (%v)", code, body, err)
	}
	want := []panelView{
		{Kind: "timeseries", Title: "value by source_id", Width: "full", Route: "/metrics/cpu", Time: "ts", Value: "value", Series: "source_id", Unit: "percent",
			Thresholds: []thresholdView{{Value: 90, Label: "critical", Severity: "critical"}}},
		{Kind: "stat", Title: "Peak", Width: "half", Route: "/metrics/cpu", Value: "value", Reduce: "max", Warning: &warn},
		{Kind: "silences", Title: "Silences", Width: "half"},
	}
	if !reflect.DeepEqual(got.Panels, want) || got.Title != "Ops" || got.Params["tenant"] != "acme" || got.Overview || len(got.Routes) != 1 {
		t.Errorf("GET /-/dashboard: %+v\nwant panels %+v", got, want)
	}
}
