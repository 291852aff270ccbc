package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/eventops/eventops-engine/engine/broker"
	"github.com/eventops/eventops-engine/engine/httpinput"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// receivers are the pipeline's http inputs: each stores what it receives in its stream's
// topic, which the stream reads like any other (engine/httpinput).
type receivers struct {
	byStream map[string]*httpinput.Receiver
	outputs  []*broker.Output
}

// startReceivers opens a producer and a listener for every stream with an http input. On
// an error, what was started is stopped again.
func (p *Plan) startReceivers(b *broker.Broker, m *telemetry.Metrics, log *slog.Logger) (*receivers, error) {
	rs := &receivers{byStream: map[string]*httpinput.Receiver{}}
	for _, sp := range p.Streams {
		h := sp.Config.Input.HTTP
		if h == nil {
			continue
		}
		out, err := broker.NewOutput(b, broker.OutputConfig{Stream: sp.Name, Topic: sp.Config.Input.Topic, DeliveryTimeout: h.Timeout.D()})
		if err != nil {
			rs.stop(context.Background())
			return nil, fmt.Errorf("stream %s: http input: %w", sp.Name, err)
		}
		rs.outputs = append(rs.outputs, out)
		r := httpinput.New(httpinput.Config{
			Stream: sp.Name, Topic: sp.Config.Input.Topic, Listen: h.Listen, Path: h.Path,
			MaxBodyBytes: int64(h.MaxBodyBytes), MaxRecordBytes: b.MaxRecordBytes(),
			Timeout: h.Timeout.D(), MaxInFlight: h.MaxInFlight,
		}, out, log.With("stream", sp.Name, "component", "http input"), httpinput.Metrics{
			Requests: func(stream, code string) { m.HTTPInputRequests.WithLabelValues(stream, code).Inc() },
			Records:  func(stream string, n int) { m.HTTPInputRecords.WithLabelValues(stream).Add(float64(n)) },
		})
		if err := r.Start(); err != nil {
			rs.stop(context.Background())
			return nil, err
		}
		rs.byStream[sp.Name] = r
		log.Info("http input listening", "stream", sp.Name, "addr", r.Addr(), "path", h.Path, "topic", sp.Config.Input.Topic)
	}
	return rs, nil
}

// stop stops taking requests, waits up to 5 s (or ctx) for those being stored, and closes
// the producers.
func (rs *receivers) stop(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var errs []error
	for _, r := range rs.byStream {
		errs = append(errs, r.Shutdown(ctx))
	}
	for _, o := range rs.outputs {
		errs = append(errs, o.Close())
	}
	rs.byStream, rs.outputs = nil, nil
	_ = errors.Join(errs...) // a request cut short was answered nothing: its client sends again
}

// HTTPInputAddr is the address the http input of stream listens on ("" if it has none).
func (r *Running) HTTPInputAddr(stream string) string {
	if rec := r.live.receivers.byStream[stream]; rec != nil {
		return rec.Addr()
	}
	return ""
}
