package broker

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

func TestInputBoundsBatchesAndReportsLag(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	ensure(t, b, map[string]config.Topic{"in": {}})
	recs := make([]*kgo.Record, 20)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "in", Value: []byte{byte(i)}}
	}
	produceSync(t, b, recs...)

	m := telemetry.New()
	in, err := NewInput(b, InputConfig{Stream: "normalize", Topic: "in", Group: "g", BatchSize: 5, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ctx := testCtx(t)
	batch, err := in.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) == 0 || len(batch) > 5 {
		t.Fatalf("Read returned %d records, want 1..5 (batch size 5)", len(batch))
	}
	lag := gauge(t, m, "eventops_consumer_lag_records", map[string]string{"stream": "normalize", "topic": "in", "partition": "0"})
	if want := float64(20 - len(batch)); lag != want {
		t.Errorf("consumer lag = %v, want %v", lag, want)
	}
	if err := in.Ack(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := in.Ack(ctx, batch); err == nil {
		t.Error("a second Ack of the same batch was accepted")
	}
}

func TestInputRejectsBadStart(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	if _, err := NewInput(b, InputConfig{Topic: "in", Group: "g", Start: "middle"}); err == nil {
		t.Fatal("start: middle was accepted")
	}
	in, err := NewInput(b, InputConfig{Topic: "in", Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	in.Close()
	if _, err := in.Read(context.Background()); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("Read after Close = %v, want a closed error", err)
	}
}

// gauge reads one gauge from the registry, as the /-/metrics endpoint would show it.
func gauge(t *testing.T, m *telemetry.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			return mt.GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s%v in the registry", name, labels)
	return 0
}
