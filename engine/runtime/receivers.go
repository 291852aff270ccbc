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
	"github.com/eventops/eventops-engine/engine/otlpinput"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// receivers are the pipeline's http, prometheus_remote_write and otlp inputs: each stores
// what it receives in its stream's topic, which the stream reads like any other
// (engine/httpinput, engine/otlpinput).
type receivers struct {
	byStream map[string]receiver
	outputs  []*broker.Output
}

// receiver is a listening receiver of any protocol.
type receiver interface {
	Start() error
	Addr() string
	Shutdown(ctx context.Context) error
}

// startReceivers opens a producer and a listener for every receiver of every stream (http,
// prometheus_remote_write, otlp). On an error, what was started is stopped again.
func (p *Plan) startReceivers(b *broker.Broker, m *telemetry.Metrics, log *slog.Logger) (*receivers, error) {
	rs := &receivers{byStream: map[string]receiver{}}
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
func (rs *receivers) start(b *broker.Broker, sp *StreamPlan, key string, h config.HTTPInput, m *telemetry.Metrics, log *slog.Logger) (receiver, error) {
	topic := sp.Config.Input.Topic
	out, err := broker.NewOutput(b, broker.OutputConfig{Stream: sp.Name, Topic: topic, DeliveryTimeout: h.Timeout.D()})
	if err != nil {
		return nil, err
	}
	rs.outputs = append(rs.outputs, out)
	cfg := httpinput.Config{
		Stream: sp.Name, Topic: topic, Listen: h.Listen,
		MaxBodyBytes: int64(h.MaxBodyBytes), MaxRecordBytes: b.MaxRecordBytes(),
		Timeout: h.Timeout.D(), MaxInFlight: h.MaxInFlight,
	}
	log = log.With("component", key+" input")
	metrics := httpinput.Metrics{
		Requests: func(code string) { m.HTTPInputRequests.WithLabelValues(sp.Name, key, code).Inc() },
		Records:  func(n int) { m.HTTPInputRecords.WithLabelValues(sp.Name, key).Add(float64(n)) },
		Rejected: func(n int64) { m.HTTPInputRejected.WithLabelValues(sp.Name, key).Add(float64(n)) },
	}
	r := newReceiver(sp.Config.Input, key, cfg, httpinput.New(cfg, routes(sp.Config.Input, key, h), out, log, metrics), metrics, log)
	if err := r.Start(); err != nil {
		return nil, err
	}
	log.Info(key+" input listening", "stream", sp.Name, "addr", r.Addr(), "path", h.Path, "topic", topic)
	return r, nil
}

// newReceiver is the receiver of key: core itself, serving its routes over HTTP, or an
// OTLP/gRPC server storing through core.
func newReceiver(in config.Input, key string, cfg httpinput.Config, core *httpinput.Receiver, m httpinput.Metrics, log *slog.Logger) receiver {
	if key == config.OTLPGRPC {
		return otlpinput.NewGRPC(core, cfg, in.OTLP.Signals, m.Requests, log)
	}
	return core
}

// routes are what receiver key of input in takes, by path.
func routes(in config.Input, key string, h config.HTTPInput) httpinput.Routes {
	switch key {
	case "http":
		return httpinput.Routes{h.Path: httpinput.JSON}
	case "prometheus_remote_write":
		return httpinput.Routes{h.Path: httpinput.RemoteWrite}
	case config.OTLPHTTP:
		return otlpinput.Routes(in.OTLP.Signals)
	}
	return nil
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

// ReceiverAddr is the address stream's receiver key (http, prometheus_remote_write,
// otlp.http, otlp.grpc) listens on ("" if it has none).
func (r *Running) ReceiverAddr(stream, key string) string {
	if rec := r.live.receivers.byStream[stream+"/"+key]; rec != nil {
		return rec.Addr()
	}
	return ""
}
