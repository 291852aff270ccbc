package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/store"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

const (
	readerToken   = "reader-0123456789abcdef"
	operatorToken = "operator-0123456789abcdef"
	acmeToken     = "acme-0123456789abcdef"
)

func testAuth() *config.APIAuth {
	return &config.APIAuth{Metrics: "read", Tokens: []config.APIToken{
		{Name: "reader", Token: readerToken, Scopes: []string{"read"}},
		{Name: "operator", Token: operatorToken, Scopes: []string{"admin"}},
		{Name: "acme-dashboard", Token: acmeToken, Scopes: []string{"read"}, Tenant: "acme"},
	}}
}

// syncBuffer is a log destination tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// call makes one request with headers and returns the status, the body and the response.
func call(t *testing.T, method, url string, headers map[string]string) (int, string, *http.Response) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// With auth, nothing but health and the dashboard page is served without a valid token;
// reading needs scope read, reloading scope admin. A refusal says why (401 with
// WWW-Authenticate, or 403), is counted, and is logged without the token.
func TestWithAuthNothingButHealthIsServedWithoutAToken(t *testing.T) {
	var reloads atomic.Int32
	logs := &syncBuffer{}
	metrics := telemetry.New()
	deps := Deps{
		Stores:       storeOf{"metrics": metricsStore()}.stores(),
		Metrics:      metrics,
		Logger:       slog.New(slog.NewTextHandler(logs, nil)),
		Reload:       func(context.Context, string) any { reloads.Add(1); return map[string]string{"outcome": "applied"} },
		ReloadStatus: func() any { return map[string]string{"outcome": "none"} },
	}
	_, base := startServer(t, &config.API{Auth: testAuth(), Routes: []config.Route{cpuRoute()}}, deps)
	const route = "/metrics/cpu?tenant=acme&host=host-a"
	for _, tc := range []struct {
		name, method, path string
		headers            map[string]string
		want               int
	}{
		{"health", "GET", "/-/healthy", nil, 200},
		{"readiness", "GET", "/-/ready", nil, 200},
		{"the dashboard page", "GET", "/", nil, 200},
		{"a route without a token", "GET", route, nil, 401},
		{"routes list without a token", "GET", "/-/routes", nil, 401},
		{"metrics without a token", "GET", "/-/metrics", nil, 401},
		{"reload status without a token", "GET", "/-/reload", nil, 401},
		{"reload without a token", "POST", "/-/reload", nil, 401},
		{"alerts API without a token", "GET", "/api/v2/alerts", nil, 401},
		{"a route with an unknown token", "GET", route, bearer("not-a-token-at-all-0000"), 401},
		{"a route with a Basic header", "GET", route, map[string]string{"Authorization": "Basic " + readerToken}, 401},
		{"a route with a read token", "GET", route, bearer(readerToken), 200},
		{"a route with X-API-Key", "GET", route, map[string]string{"X-API-Key": readerToken}, 200},
		{"metrics with a read token", "GET", "/-/metrics", bearer(readerToken), 200},
		{"reload with a read token", "POST", "/-/reload", bearer(readerToken), 403},
		{"silences with a read token", "POST", "/api/v2/silences", bearer(readerToken), 403},
		{"reload with an admin token", "POST", "/-/reload", bearer(operatorToken), 200},
		{"a route with an admin token", "GET", route, bearer(operatorToken), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, resp := call(t, tc.method, base+tc.path, tc.headers)
			if code != tc.want {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, code, body, tc.want)
			}
			if code == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="eventops"`) {
				t.Errorf("401 without WWW-Authenticate: %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	if n := reloads.Load(); n != 1 {
		t.Errorf("the pipeline was reloaded %d times, want once (by the admin token)", n)
	}
	for reason, want := range map[string]float64{"missing": 6, "invalid": 2, "scope": 2} {
		if got := testutil.ToFloat64(metrics.APIAuthFailures.WithLabelValues(reason)); got != want {
			t.Errorf("eventops_api_auth_failures_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	for _, secret := range []string{readerToken, operatorToken, "not-a-token-at-all-0000"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds a token: %s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), `token=reader`) {
		t.Errorf("a refusal of a known token is logged without its name: %s", logs.String())
	}
}

// /-/metrics can be left open for a Prometheus that scrapes without a token.
func TestMetricsCanBeOpen(t *testing.T) {
	auth := testAuth()
	auth.Metrics = "open"
	_, base := startServer(t, &config.API{Auth: auth}, Deps{})
	if code, _, _ := call(t, "GET", base+"/-/metrics", nil); code != 200 {
		t.Errorf("/-/metrics with metrics: open: %d, want 200", code)
	}
	if code, _, _ := call(t, "GET", base+"/-/routes", nil); code != 401 {
		t.Errorf("/-/routes: %d, want 401", code)
	}
}

// A page of another site cannot make the engine change anything, with or without auth:
// neither a form's text/plain POST nor a fetch with its Origin reaches /-/reload.
func TestCrossSiteStateChangesAreRefused(t *testing.T) {
	var reloads atomic.Int32
	deps := Deps{Reload: func(context.Context, string) any { reloads.Add(1); return map[string]string{} }}
	_, base := startServer(t, &config.API{}, deps)
	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    int
	}{
		{"a form on another site", map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, 403},
		{"an old browser's Origin", map[string]string{"Origin": "http://evil.example"}, 403},
		{"a site on this machine's other port", map[string]string{"Origin": "http://127.0.0.1:1"}, 403},
		{"same site", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"the dashboard itself", map[string]string{"Sec-Fetch-Site": "same-origin"}, 200},
		{"curl", nil, 200},
	} {
		code, body, _ := call(t, "POST", base+"/-/reload", tc.headers)
		if code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
	if n := reloads.Load(); n != 2 {
		t.Errorf("reloaded %d times, want 2 (the dashboard and curl)", n)
	}
}

// CORS is off by default; an allowed origin may read with a token, and its preflight is
// answered.
func TestCORSOnlyForAllowedOrigins(t *testing.T) {
	_, base := startServer(t, &config.API{Auth: testAuth(), AllowOrigins: []string{"https://ops.example.com"}}, Deps{})
	h := bearer(readerToken)
	h["Origin"] = "https://ops.example.com"
	_, _, resp := call(t, "GET", base+"/-/routes", h)
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://ops.example.com" {
		t.Errorf("allowed origin: Access-Control-Allow-Origin %q", resp.Header.Get("Access-Control-Allow-Origin"))
	}
	h["Origin"] = "https://evil.example"
	if _, _, resp := call(t, "GET", base+"/-/routes", h); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("another origin got Access-Control-Allow-Origin %q", resp.Header.Get("Access-Control-Allow-Origin"))
	}
	code, _, resp := call(t, "OPTIONS", base+"/-/routes", map[string]string{"Origin": "https://ops.example.com", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"})
	if code != 204 || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %d, allow headers %q", code, resp.Header.Get("Access-Control-Allow-Headers"))
	}
}

// Without auth the API serves only this machine, unless insecure says otherwise.
func TestNoAuthOnlyOnLoopback(t *testing.T) {
	for _, tc := range []struct {
		listen  string
		cfg     config.API
		refused bool
	}{
		{"127.0.0.1:0", config.API{}, false},
		{"[::1]:0", config.API{}, false},
		{"localhost:0", config.API{}, false},
		{":0", config.API{}, true},
		{"0.0.0.0:0", config.API{}, true},
		{":0", config.API{Insecure: true}, false},
		{":0", config.API{Auth: testAuth()}, false},
	} {
		err := exposedWithoutAuth(tc.listen, &tc.cfg)
		if (err != nil) != tc.refused {
			t.Errorf("%s %+v: %v, want refused %v", tc.listen, tc.cfg, err, tc.refused)
		}
	}
}

// storeOf is a store by table name, for Deps.Stores.
type storeOf map[string]*fakeStore

func (s storeOf) stores() map[string]store.Store {
	out := map[string]store.Store{}
	for k, v := range s {
		out[k] = v
	}
	return out
}

// alertsDispatcher holds alerts of two tenants and a silence of each.
type alertsDispatcher struct{ fakeDispatcher }

func (*alertsDispatcher) DispatchedAlerts() []engine.DispatchedAlert {
	return []engine.DispatchedAlert{
		{Fingerprint: "a", Labels: map[string]string{"alertname": "cpu", "tenant_id": "acme"}},
		{Fingerprint: "o", Labels: map[string]string{"alertname": "cpu", "tenant_id": "other"}},
	}
}

// A tenant-bound token never sees another tenant's records: every table route (its tenant
// from the query, from the path, from nothing; latest_by; columns without tenant), with
// every tenant parameter a client could send, answers only the token's tenant's rows or
// refuses; the alerts and silences of the Alertmanager API and the live streams hold only
// its tenant's.
func TestATenantTokenNeverSeesAnotherTenant(t *testing.T) {
	tenantOf := func(rows []map[string]any) []string {
		var out []string
		for _, r := range rows {
			out = append(out, fmt.Sprint(r["tenant"]))
		}
		return out
	}
	metrics := metricsStore()
	noTenant := &fakeStore{cols: []string{"ts", "name"}, rows: []map[string]any{{"ts": "x", "name": "shared"}}}
	routes := []config.Route{
		{Path: "/by-query", Table: "metrics", Where: config.Fields{expr("tenant", "query.tenant", 3)}},
		{Path: "/optional", Table: "metrics", Where: config.Fields{expr("tenant", "query.tenant ?? nil", 3)}},
		{Path: "/everything", Table: "metrics"},
		{Path: "/fixed-other", Table: "metrics", Where: config.Fields{expr("tenant", `"other"`, 3)}},
		{Path: "/t/:tenant/rows", Table: "metrics", Where: config.Fields{expr("tenant", "path.tenant", 3)}},
		{Path: "/latest", Table: "metrics", LatestBy: "source_id"},
		{Path: "/columns", Table: "metrics", Columns: []string{"value"}},
		{Path: "/no-tenant", Table: "shared"},
	}
	silences := map[string]engine.Silence{
		"s-acme":  {ID: "s-acme", Matchers: []engine.SilenceMatcher{{Name: "tenant_id", Value: "acme", IsEqual: true}}},
		"s-other": {ID: "s-other", Matchers: []engine.SilenceMatcher{{Name: "tenant_id", Value: "other", IsEqual: true}}},
		"s-regex": {ID: "s-regex", Matchers: []engine.SilenceMatcher{{Name: "tenant_id", Value: "acme|other", IsEqual: true, IsRegex: true}}},
	}
	d := &alertsDispatcher{fakeDispatcher{silences: silences}}
	deps := Deps{
		Stores:      storeOf{"metrics": metrics, "shared": noTenant}.stores(),
		Dispatchers: func() ([]engine.AlertDispatcher, error) { return []engine.AlertDispatcher{d}, nil },
	}
	_, base := startServer(t, &config.API{Auth: testAuth(), Routes: routes}, deps)
	queries := []string{"", "?tenant=acme", "?tenant=other", "?tenant=ACME", "?tenant=acme&tenant=other", "?tenant=other&tenant=acme", "?tenant=", "?tenant=%61cme", "?Tenant=other", "?tenant[]=other"}
	paths := []string{"/by-query", "/optional", "/everything", "/fixed-other", "/t/acme/rows", "/t/other/rows", "/latest", "/columns", "/no-tenant"}
	for _, path := range paths {
		for _, q := range queries {
			code, body, _ := call(t, "GET", base+path+q, bearer(acmeToken))
			switch code {
			case 200:
				var rows []map[string]any
				if err := json.Unmarshal([]byte(body), &rows); err != nil {
					t.Fatalf("%s%s: %v", path, q, err)
				}
				if path == "/columns" {
					if len(rows) != 4 {
						t.Errorf("%s%s: %d rows, want acme's 4", path, q, len(rows))
					}
					continue
				}
				for _, tenant := range tenantOf(rows) {
					if tenant != "acme" {
						t.Errorf("%s%s with acme's token returned a row of tenant %q: %s", path, q, tenant, body)
					}
				}
			case 400, 403:
				if strings.Contains(body, `"other"`) || !strings.HasPrefix(body, `{"error":`) {
					t.Errorf("%s%s refused with %d, and the body holds more than the error: %s", path, q, code, body)
				}
			default:
				t.Errorf("%s%s: %d %s", path, q, code, body)
			}
		}
	}
	// The same routes with an unbound token see both tenants: the test above can fail.
	if code, body, _ := call(t, "GET", base+"/everything", bearer(readerToken)); code != 200 || !strings.Contains(body, `"other"`) {
		t.Errorf("/everything with an unbound token: %d %s", code, body)
	}
	if code, _, _ := call(t, "GET", base+"/by-query?tenant=other", bearer(acmeToken)); code != 403 {
		t.Errorf("asking for another tenant: %d, want 403", code)
	}
	if code, body, _ := call(t, "GET", base+"/by-query", bearer(acmeToken)); code != 200 || !strings.Contains(body, `"acme"`) {
		t.Errorf("no tenant parameter: %d %s, want acme's rows", code, body)
	}

	_, body, _ := call(t, "GET", base+"/api/v2/alerts", bearer(acmeToken))
	if strings.Contains(body, `"other"`) || !strings.Contains(body, `"acme"`) {
		t.Errorf("/api/v2/alerts with acme's token: %s", body)
	}
	_, body, _ = call(t, "GET", base+"/api/v2/silences", bearer(acmeToken))
	if !strings.Contains(body, "s-acme") || strings.Contains(body, "s-other") || strings.Contains(body, "s-regex") {
		t.Errorf("/api/v2/silences with acme's token: %s", body)
	}
	for _, id := range []string{"s-other", "s-regex"} {
		if code, _, _ := call(t, "GET", base+"/api/v2/silence/"+id, bearer(acmeToken)); code != 404 {
			t.Errorf("silence %s with acme's token: %d, want 404", id, code)
		}
	}
}

// A live stream sends a tenant-bound client only its tenant's records (and an unbound one
// every record), and its resume position passes over the others.
func TestATenantTokenStreamsOnlyItsTenant(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, alertTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	producer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	cfg := &config.API{Auth: testAuth(), Routes: []config.Route{{Path: "/alerts/stream", Stream: alertTopic}}}
	_, base := startServer(t, cfg, Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}})

	acme := connectSSEWith(t, base+"/alerts/stream", bearer(acmeToken))
	all := connectSSEWith(t, base+"/alerts/stream", bearer(readerToken))
	for _, v := range []string{`{"tenant_id":"other","n":1}`, `{"tenant_id":"acme","n":2}`, `not json`, `{"n":3}`, `{"tenant_id":"other","n":4}`, `{"tenant_id":"acme","n":5}`} {
		if err := producer.ProduceSync(context.Background(), &kgo.Record{Topic: alertTopic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{`{"tenant_id":"acme","n":2}`, `{"tenant_id":"acme","n":5}`} {
		if ev := acme.next(t); ev.data != want {
			t.Fatalf("acme's stream sent %s, want %s", ev.data, want)
		}
	}
	for i := 0; i < 6; i++ {
		all.next(t) // every record reaches an unbound client
	}
	if code, _, _ := call(t, "GET", base+"/alerts/stream", nil); code != 401 {
		t.Errorf("a stream without a token: %d, want 401", code)
	}
}

// connectSSEWith is connectSSE with request headers.
func connectSSEWith(t *testing.T, url string, headers map[string]string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		cancel()
		t.Fatalf("GET %s: %v %v", url, err, resp)
	}
	s := &sseStream{lines: make(chan string, 1024), resp: resp}
	go func() {
		defer close(s.lines)
		buf := make([]byte, 0, 4096)
		for {
			b := make([]byte, 4096)
			n, err := resp.Body.Read(b)
			buf = append(buf, b[:n]...)
			for {
				i := bytes.IndexByte(buf, '\n')
				if i < 0 {
					break
				}
				s.lines <- string(buf[:i])
				buf = buf[i+1:]
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	s.waitLine(t, ": connected")
	return s
}

// The dashboard page loads nothing from elsewhere and cannot be framed by another site (its
// token box would be a clickjacking target).
func TestTheDashboardKeepsToItself(t *testing.T) {
	_, base := startServer(t, &config.API{Auth: testAuth()}, Deps{})
	_, body, resp := call(t, "GET", base+"/", nil)
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %s", csp, want)
		}
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(body, "API token") {
		t.Errorf("headers %v, or the page has no token box", resp.Header)
	}
	// Its files hold no data and are open; what it shows comes from guarded calls.
	for _, open := range []string{"/-/ui/app.js", "/-/ui/app.css", "/favicon.ico"} {
		if code, _, _ := call(t, "GET", base+open, nil); code != 200 {
			t.Errorf("GET %s without a token: %d, want 200", open, code)
		}
	}
	if code, _, _ := call(t, "GET", base+"/-/dashboard", nil); code != 401 {
		t.Errorf("GET /-/dashboard without a token: %d, want 401", code)
	}
	if code, _, _ := call(t, "GET", base+"/-/dashboard", bearer(readerToken)); code != 200 {
		t.Errorf("GET /-/dashboard with a read token: %d, want 200", code)
	}
}

// Without the dashboard, "/" can be a declared route: it is guarded like any other.
func TestARouteAtTheRootNeedsAToken(t *testing.T) {
	off := false
	route := cpuRoute()
	route.Path = "/"
	_, base := startServer(t, &config.API{Auth: testAuth(), Dashboard: config.Dashboard{Enabled: &off}, Routes: []config.Route{route}}, Deps{Stores: storeOf{"metrics": metricsStore()}.stores()})
	if code, body, _ := call(t, "GET", base+"/?tenant=acme&host=host-a", nil); code != 401 {
		t.Errorf("a table route at / without a token: %d %s, want 401", code, body)
	}
	if code, _, _ := call(t, "GET", base+"/?tenant=acme&host=host-a", bearer(readerToken)); code != 200 {
		t.Errorf("with a read token: %d, want 200", code)
	}
}
