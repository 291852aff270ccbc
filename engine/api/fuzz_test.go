package api

import (
	"io"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
)

// FuzzLastEventID: any Last-Event-ID is either refused or a position that prints back as the
// same pairs.
func FuzzLastEventID(f *testing.F) {
	for _, seed := range []string{"", "0:1", "0:1,1:17", "garbage", "0:-1", "7:0,", " 0:3 ", "2147483648:1", "0:9223372036854775807"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, id string) {
		pos, err := parsePosition(id)
		if err != nil || pos == nil {
			return
		}
		again, err := parsePosition(pos.String())
		if err != nil || again.String() != pos.String() {
			t.Errorf("%q read as %q, which reads back as %q (%v)", id, pos.String(), again.String(), err)
		}
	})
}

// FuzzTimeParam: a from or to is a time, or a 400 that names it; never a panic.
func FuzzTimeParam(f *testing.F) {
	for _, seed := range []string{"now", "-1h", "-7d", "-0s", "--1h", "2025-10-16T09:00:00Z", "2025-10-16T09:00:00+02:00", "yesterday", "-9999999999999h"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if _, err := timeParam("from", v, fixedNow); err != nil && !strings.Contains(err.Error(), "from ") {
			t.Errorf("%q: the error does not name the parameter: %v", v, err)
		}
	})
}

// fuzzServer is a server with auth and the tenant-isolation routes, served in process.
func fuzzServer(f *testing.F) *Server {
	routes := []config.Route{
		{Path: "/by-query", Table: "metrics", Where: config.Fields{expr("tenant", "query.tenant", 3)}},
		{Path: "/everything", Table: "metrics"},
		{Path: "/t/:tenant/rows", Table: "metrics", Where: config.Fields{expr("tenant", "path.tenant", 3)}},
		{Path: "/latest", Table: "metrics", LatestBy: "source_id"},
	}
	srv, err := New(&config.API{Auth: testAuth(), Routes: routes}, Deps{Stores: storeOf{"metrics": metricsStore()}.stores(), Clock: fixedClock(fixedNow)})
	if err != nil {
		f.Fatal(err)
	}
	return srv
}

// FuzzTenantIsolation: whatever path, query and Authorization header a client sends with
// tenant acme's token, the answer is never another tenant's row, and never a 500.
func FuzzTenantIsolation(f *testing.F) {
	srv := fuzzServer(f)
	for _, seed := range [][2]string{{"/by-query?tenant=other", ""}, {"/everything?from=-1d", ""}, {"/t/other/rows", ""}, {"/latest?tenant=acme&tenant=other", ""},
		{"/by-query?tenant=acme", "Bearer " + readerToken}, {"/everything", "bearer  " + acmeToken + " "}, {"/%2e%2e/everything", ""}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, target, authorization string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t#") {
			return
		}
		if _, err := url.ParseRequestURI(target); err != nil {
			return // not a request target a client can send
		}
		req := httptest.NewRequest("GET", "http://engine"+target, nil)
		req.Header.Set("Authorization", "Bearer "+acmeToken)
		if authorization != "" && !strings.ContainsAny(authorization, "\r\n") {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := srv.app.Test(req, -1)
		if err != nil {
			return // not a request fasthttp parses
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 500 {
			t.Fatalf("%s: %d %s", target, resp.StatusCode, body)
		}
		unbound := strings.Contains(authorization, readerToken) || strings.Contains(authorization, operatorToken)
		if resp.StatusCode == 200 && !unbound && strings.Contains(string(body), `"tenant":"other"`) {
			t.Fatalf("%s with %q returned another tenant's rows: %s", target, authorization, body)
		}
	})
}

var fixedNow = time.Date(2025, 10, 16, 9, 3, 30, 0, time.UTC)
