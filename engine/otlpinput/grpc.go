package otlpinput

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // exporters configured with compression: gzip
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/eventops/eventops-engine/engine/httpinput"
	"github.com/eventops/eventops-engine/engine/netguard"
)

// GRPC serves OTLP/gRPC: the Export calls of the metrics, logs and trace services, each
// admitted and stored by an httpinput.Receiver (the same max_in_flight, timeout and
// durable-before-OK as OTLP/HTTP).
type GRPC struct {
	core           *httpinput.Receiver
	stream, listen string
	maxRecordBytes int
	count          func(code string)
	log            *slog.Logger
	srv            *grpc.Server
	ln             net.Listener
}

// NewGRPC returns an OTLP/gRPC server for the given signals (all three when none are given)
// that stores through core; maxMessageBytes bounds a request. count, if not nil, counts each
// call by its gRPC code.
func NewGRPC(core *httpinput.Receiver, cfg httpinput.Config, names []string, count func(code string), log *slog.Logger) *GRPC {
	g := &GRPC{core: core, stream: cfg.Stream, listen: cfg.Listen, maxRecordBytes: cfg.MaxRecordBytes, count: count, log: log}
	g.srv = grpc.NewServer(grpc.MaxRecvMsgSize(int(cfg.MaxBodyBytes)))
	want := func(name string) bool { return len(names) == 0 || slices.Contains(names, name) }
	if want(Metrics) {
		pmetricotlp.RegisterGRPCServer(g.srv, &metricsService{g: g})
	}
	if want(Logs) {
		plogotlp.RegisterGRPCServer(g.srv, &logsService{g: g})
	}
	if want(Traces) {
		ptraceotlp.RegisterGRPCServer(g.srv, &tracesService{g: g})
	}
	return g
}

// Start listens and serves until Shutdown.
func (g *GRPC) Start() error {
	ln, err := netguard.Serve(g.listen, netguard.Options{Name: "otlp grpc input " + g.stream, Logger: g.log}, g.srv.Serve, grpc.ErrServerStopped)
	if err != nil {
		return fmt.Errorf("otlp grpc input of stream %s: %w", g.stream, err)
	}
	g.ln = ln
	return nil
}

// Addr is the address the server listens on.
func (g *GRPC) Addr() string { return g.ln.Addr().String() }

// Shutdown stops taking calls and waits (until ctx ends) for those being stored; then it
// cuts the rest off (their exporters send them again).
func (g *GRPC) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		g.srv.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		g.srv.Stop()
		return ctx.Err()
	}
}

// export admits one call, maps its request to records and stores them; the error is the
// gRPC status to answer with.
func (g *GRPC) export(ctx context.Context, records func(maxRecordBytes int) httpinput.Decoded) (httpinput.Decoded, error) {
	release, err := g.core.Admit()
	if err != nil {
		return httpinput.Decoded{}, g.answer(err)
	}
	d := records(g.maxRecordBytes)
	return d, g.answer(g.core.Store(ctx, d, release))
}

// answer is the gRPC status of err, counted. A request to send again is RESOURCE_EXHAUSTED
// with a RetryInfo: OTLP exporters retry that code only when it carries one.
func (g *GRPC) answer(err error) error {
	var st *status.Status
	switch {
	case err == nil:
		st = status.New(codes.OK, "")
	case errors.Is(err, httpinput.ErrBusy), errors.Is(err, httpinput.ErrNotStored):
		st = retryLater(err)
	default:
		st = status.New(codes.InvalidArgument, err.Error())
	}
	if g.count != nil {
		g.count(st.Code().String())
	}
	return st.Err()
}

func retryLater(err error) *status.Status {
	st := status.New(codes.ResourceExhausted, err.Error())
	if withInfo, e := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)}); e == nil {
		return withInfo
	}
	return st
}

type metricsService struct {
	pmetricotlp.UnimplementedGRPCServer
	g *GRPC
}

func (s *metricsService) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	d, err := s.g.export(ctx, func(max int) httpinput.Decoded { return MetricRecords(req.Metrics(), max) })
	return signals[Metrics].response(d.Rejected, d.Reason).(pmetricotlp.ExportResponse), err
}

type logsService struct {
	plogotlp.UnimplementedGRPCServer
	g *GRPC
}

func (s *logsService) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	d, err := s.g.export(ctx, func(max int) httpinput.Decoded { return LogRecords(req.Logs(), max) })
	return signals[Logs].response(d.Rejected, d.Reason).(plogotlp.ExportResponse), err
}

type tracesService struct {
	ptraceotlp.UnimplementedGRPCServer
	g *GRPC
}

func (s *tracesService) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	d, err := s.g.export(ctx, func(max int) httpinput.Decoded { return SpanRecords(req.Traces(), max) })
	return signals[Traces].response(d.Rejected, d.Reason).(ptraceotlp.ExportResponse), err
}
