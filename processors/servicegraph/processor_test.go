package servicegraph

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/enginetest"
)

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

func testProcessor(t testing.TB) *Processor {
	t.Helper()
	p, err := build(&Config{Interval: config1m, MaxAge: config10m}, engine.BuildEnv{})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Processor)
}

const (
	config1m  = 60e9
	config10m = 600e9
)

// span is a span record as the otlp input writes it: a client span when peer is set.
func span(service, peer, status string, at time.Time, partition int32) *engine.Record {
	v := map[string]any{"signal": "span", "service": service, "kind": "server", "status": status, "ts": at.Format(time.RFC3339Nano)}
	if peer != "" {
		v["kind"], v["peer"] = "client", peer
	}
	return &engine.Record{Value: v, Source: engine.Source{Topic: "otel.spans", Partition: partition}}
}

func process(t *testing.T, p *Processor, batch ...*engine.Record) ([]map[string]any, *engine.Rejects) {
	t.Helper()
	rejects := &engine.Rejects{}
	out, err := p.Process(context.Background(), batch, rejects)
	if err != nil {
		t.Fatal(err)
	}
	var vs []map[string]any
	for _, r := range out {
		if string(r.Key) != r.Value["edge"] {
			t.Errorf("record key %q, want its edge %q", r.Key, r.Value["edge"])
		}
		vs = append(vs, r.Value)
	}
	return vs, rejects
}

// A client span of A calling B is a call on A → B. Each batch writes the count so far of
// the interval of each edge it called (incomplete), and a span of a later interval writes
// the closed interval of every edge with calls in it (complete), then counts from zero.
func TestCallsBecomeEdgesWithTheirCounts(t *testing.T) {
	p := testProcessor(t)
	out, _ := process(t, p,
		span("checkout", "payments", "ok", t0, 0),
		span("checkout", "payments", "error", t0.Add(10*time.Second), 0),
		span("payments", "", "ok", t0.Add(11*time.Second), 0), // a server span: not a call
		span("checkout", "payments", "unset", t0.Add(20*time.Second), 0),
		span("payments", "db", "ok", t0.Add(30*time.Second), 0),
	)
	if len(out) != 2 || out[0]["edge"] != "checkout->payments" || out[1]["edge"] != "payments->db" {
		t.Fatalf("edges written %v, want checkout->payments then payments->db", out)
	}
	cp := out[0]
	if cp["calls"] != 3.0 || cp["errors"] != 1.0 || cp["error_rate"] != 1.0/3 || cp["calls_per_s"] != 3.0/30 || cp["complete"] != false {
		t.Errorf("checkout->payments so far: %v, want 3 calls, 1 failed, in the 30 s of the interval seen", cp)
	}
	if cp["first_seen"] != t0.Format(time.RFC3339Nano) || cp["last_seen"] != t0.Add(20*time.Second).Format(time.RFC3339Nano) || cp["interval_start"] != t0.Format(time.RFC3339Nano) {
		t.Errorf("checkout->payments first seen %v, last seen %v, interval %v", cp["first_seen"], cp["last_seen"], cp["interval_start"])
	}
	out, _ = process(t, p, span("checkout", "payments", "ok", t0.Add(70*time.Second), 0))
	if len(out) != 3 || out[0]["complete"] != true || out[1]["complete"] != true || out[2]["complete"] != false {
		t.Fatalf("a span of the next minute wrote %v, want the first minute of both edges, then checkout->payments so far", out)
	}
	if cp := out[0]; cp["edge"] != "checkout->payments" || cp["calls"] != 3.0 || cp["calls_per_s"] != 3.0/60 {
		t.Errorf("checkout->payments for the first minute: %v, want 3 calls in 60 s", cp)
	}
	if now := out[2]; now["edge"] != "checkout->payments" || now["calls"] != 1.0 || now["errors"] != 0.0 || now["interval_start"] != t0.Add(time.Minute).Format(time.RFC3339Nano) {
		t.Errorf("checkout->payments in the second minute: %v, want 1 call", now)
	}
	// payments->db had no call in the second minute: the third closes only checkout->payments.
	out, _ = process(t, p, span("web", "checkout", "ok", t0.Add(130*time.Second), 0))
	if len(out) != 2 || out[0]["edge"] != "checkout->payments" || out[0]["complete"] != true || out[1]["edge"] != "web->checkout" {
		t.Errorf("third minute: %v, want checkout->payments's second minute, then web->checkout so far", out)
	}
}

// Edges unseen for max_age are forgotten, and written as new when they come back.
func TestEdgesUnseenForMaxAgeAreForgotten(t *testing.T) {
	p := testProcessor(t)
	process(t, p, span("a", "b", "ok", t0, 0), span("c", "d", "ok", t0, 0))
	for m := 1; m <= 10; m++ {
		process(t, p, span("a", "b", "ok", t0.Add(time.Duration(m)*time.Minute), 0))
	}
	process(t, p, span("a", "b", "ok", t0.Add(11*time.Minute), 0))
	if _, kept := p.parts[0].edges["c->d"]; kept {
		t.Error("c->d, unseen for 11 minutes with max_age 10m, is still kept")
	}
	if _, kept := p.parts[0].edges["a->b"]; !kept {
		t.Error("a->b, seen every minute, was forgotten")
	}
	out, _ := process(t, p, span("c", "d", "ok", t0.Add(11*time.Minute), 0))
	if len(out) != 1 || out[0]["first_seen"] != t0.Add(11*time.Minute).Format(time.RFC3339Nano) || out[0]["calls"] != 1.0 {
		t.Errorf("c->d coming back wrote %v, want it as a new edge", out)
	}
}

// A call span whose time cannot be read is rejected with the reason; it is not lost.
func TestASpanWithoutATimeIsRejected(t *testing.T) {
	p := testProcessor(t)
	bad := span("a", "b", "ok", t0, 0)
	delete(bad.Value, "ts")
	_, rejects := process(t, p, bad)
	if len(rejects.Items) != 1 || !strings.Contains(rejects.Items[0].Err.Error(), "the span has no ts") {
		t.Errorf("rejects %v, want the span with its reason", rejects.Items)
	}
}

// TestCheckpointConformance runs the shared checkpoint suite: restored at every step, the
// processor writes exactly the edges of one that never stopped; forgotten edges leave the
// changelog.
func TestCheckpointConformance(t *testing.T) {
	setup := func(t testing.TB, _ engine.Clock) enginetest.StatefulProcessor { return testProcessor(t) }
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	script := enginetest.Script{Start: t0, MaxEntries: 4, Steps: []enginetest.Step{
		{Batch: []*engine.Record{span("web", "api", "ok", at(0), 0), span("api", "db", "error", at(time.Second), 1)}},
		{Batch: []*engine.Record{span("web", "api", "error", at(30*time.Second), 0), span("api", "cache", "ok", at(40*time.Second), 1)}},
		{Batch: []*engine.Record{span("web", "api", "ok", at(90*time.Second), 0), span("api", "db", "ok", at(100*time.Second), 1)}},
		{Batch: []*engine.Record{span("web", "api", "ok", at(15*time.Minute), 0), span("api", "db", "ok", at(15*time.Minute), 1)}},
	}}
	enginetest.TestStateful(t, setup, script)
}
