package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/broker"
	"github.com/eventops/eventops-engine/engine/httpinput"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// receivers are the pipeline's http and prometheus_remote_write inputs: each stores what it receives in its stream's
// topic, which the stream reads like any other (engine/httpinput).
type receivers struct {
	byStream map[string]*httpinput.Receiver
	outputs  []*broker.Output
}

// formats are the receivers' formats, by config key (config.Input.Receivers).
var formats = map[string]httpinput.Format{"http": httpinput.JSON, "prometheus_remote_write": httpinput.RemoteWrite}

// startReceivers opens a producer and a listener for every receiver of every stream (http,
// prometheus_remote_write). On an error, what was started is stopped again.
func (p *Plan) startReceivers(b *broker.Broker, m *telemetry.Metrics, log *slog.Logger) (*receivers, error) {
	rs := &receivers{byStream: map[string]*httpinput.Receiver{}}
	for _, sp := range p.Streams {
		specs := sp.Config.Input.Receivers()
		for _, key := range slices.Sorted(maps.Keys(specs)) {
			r, err := rs.start(b, sp, key, specs[key], m, log)
			if err != nil {
				rs.stop(context.Background())
				return nil, fmt.Errorf("stream %s: %s input: %w", sp.Name, key, err)
			}
			rs.byStream[sp.Name+"/"+key] = r
		}
	}
	return rs, nil
}

// start opens the producer and the listener of stream sp's receiver key.
func (rs *receivers) start(b *broker.Broker, sp *StreamPlan, key string, h config.HTTPInput, m *telemetry.Metrics, log *slog.Logger) (*httpinput.Receiver, error) {
	topic := sp.Config.Input.Topic
	out, err := broker.NewOutput(b, broker.OutputConfig{Stream: sp.Name, Topic: topic, DeliveryTimeout: h.Timeout.D()})
	if err != nil {
		return nil, err
	}
	rs.outputs = append(rs.outputs, out)
	r := httpinput.New(httpinput.Config{
		Stream: sp.Name, Topic: topic, Listen: h.Listen, Path: h.Path,
		MaxBodyBytes: int64(h.MaxBodyBytes), MaxRecordBytes: b.MaxRecordBytes(),
		Timeout: h.Timeout.D(), MaxInFlight: h.MaxInFlight,
	}, formats[key], out, log.With("stream", sp.Name, "component", key+" input"), httpinput.Metrics{
		Requests: func(code string) { m.HTTPInputRequests.WithLabelValues(sp.Name, key, code).Inc() },
		Records:  func(n int) { m.HTTPInputRecords.WithLabelValues(sp.Name, key).Add(float64(n)) },
	})
	if err := r.Start(); err != nil {
		return nil, err
	}
	log.Info(key+" input listening", "stream", sp.Name, "addr", r.Addr(), "path", h.Path, "topic", topic)
	return r, nil
}

// stop stops taking requests, waits up to 5 s (or ctx) for those being stored, and closes
// the producers.
func (rs *receivers) stop(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	// Errors are not reported: a request cut short by either is answered nothing (or 429),
	// and its client sends it again.
	for _, r := range rs.byStream {
		_ = r.Shutdown(ctx)
	}
	for _, o := range rs.outputs {
		_ = o.Close()
	}
	rs.byStream, rs.outputs = nil, nil
}

// ReceiverAddr is the address stream's receiver key (http, prometheus_remote_write) listens
// on ("" if it has none).
func (r *Running) ReceiverAddr(stream, key string) string {
	if rec := r.live.receivers.byStream[stream+"/"+key]; rec != nil {
		return rec.Addr()
	}
	return ""
}
