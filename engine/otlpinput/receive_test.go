package otlpinput

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/enginetest"
	"github.com/eventops/eventops-engine/engine/httpinput"
)

// memStore keeps what it stores, or fails every Write with fail.
type memStore struct {
	mu     sync.Mutex
	stored [][]byte
	fail   error
}

func (s *memStore) Write(_ context.Context, batch []*engine.Record, _ *engine.Rejects) error {
	if s.fail != nil {
		return s.fail
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range batch {
		s.stored = append(s.stored, r.Raw)
	}
	return nil
}

func (s *memStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.stored)
}

var quiet = slog.New(slog.DiscardHandler)

func testConfig(maxRecordBytes int) httpinput.Config {
	return httpinput.Config{Stream: "s", Topic: "otel", Listen: "127.0.0.1:0", MaxBodyBytes: 1 << 20, MaxRecordBytes: maxRecordBytes, Timeout: time.Second, MaxInFlight: 4}
}

func postOTLP(t *testing.T, r *httpinput.Receiver, path, ctype string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

// OTLP/HTTP in protobuf and in JSON: the request is stored, then answered 200 with an export
// response in the request's own encoding.
func TestOTLPHTTPStoresThenAnswersInTheRequestsEncoding(t *testing.T) {
	store := &memStore{}
	r := httpinput.New(testConfig(0), Routes(nil), store, quiet, httpinput.Metrics{})
	metrics, _ := pmetricotlp.NewExportRequestFromMetrics(everyMetricType()).MarshalProto()
	w := postOTLP(t, r, "/v1/metrics", "application/x-protobuf", metrics)
	if w.Code != 200 || w.Header().Get("Content-Type") != protobufType {
		t.Fatalf("metrics: %d %s %q", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	resp := pmetricotlp.NewExportResponse()
	if err := resp.UnmarshalProto(w.Body.Bytes()); err != nil || resp.PartialSuccess().RejectedDataPoints() != 0 {
		t.Errorf("metrics answer %q: %v, rejected %d", w.Body, err, resp.PartialSuccess().RejectedDataPoints())
	}
	logs, _ := plogotlp.NewExportRequestFromLogs(someLogs()).MarshalJSON()
	w = postOTLP(t, r, "/v1/logs", "application/json; charset=utf-8", logs)
	if w.Code != 200 || w.Header().Get("Content-Type") != jsonType {
		t.Fatalf("logs: %d %s %q", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	spans, _ := ptraceotlp.NewExportRequestFromTraces(someSpans()).MarshalProto()
	if w = postOTLP(t, r, "/v1/traces", "application/x-protobuf", spans); w.Code != 200 {
		t.Fatalf("traces: %d %q", w.Code, w.Body)
	}
	if got := store.count(); got != 7+2+2 {
		t.Errorf("stored %d records, want 11 (7 data points, 2 log records, 2 spans)", got)
	}
}

// OTLP/HTTP's failures: each is answered with the status the spec gives it and a
// google.rpc.Status saying why; a store that cannot take the records asks for a retry.
func TestOTLPHTTPFailuresSayWhy(t *testing.T) {
	logs, _ := plogotlp.NewExportRequestFromLogs(someLogs()).MarshalProto()
	for _, tc := range []struct {
		name, path, ctype string
		body              []byte
		fail              error
		code              int
		rpc               codes.Code
		says              string
	}{
		{"an unknown content type", "/v1/logs", "text/plain", logs, nil, 415, codes.InvalidArgument, `content type "text/plain": OTLP/HTTP sends application/x-protobuf or application/json`},
		{"not protobuf", "/v1/logs", "application/x-protobuf", []byte("\xff\xff\xff"), nil, 400, codes.InvalidArgument, "the body is not an OTLP export request in application/x-protobuf"},
		{"not JSON", "/v1/logs", "application/json", []byte(`{"resourceLogs": [`), nil, 400, codes.InvalidArgument, "the body is not an OTLP export request in application/json"},
		{"the store fails", "/v1/logs", "application/x-protobuf", logs, errors.New("broker gone"), 429, codes.ResourceExhausted, "topic otel did not take the records"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httpinput.New(testConfig(0), Routes(nil), &memStore{fail: tc.fail}, quiet, httpinput.Metrics{})
			w := postOTLP(t, r, tc.path, tc.ctype, tc.body)
			st := &statuspb.Status{}
			if w.Code != tc.code {
				t.Fatalf("answered %d %q, want %d", w.Code, w.Body, tc.code)
			}
			if tc.ctype != "application/json" {
				if err := proto.Unmarshal(w.Body.Bytes(), st); err != nil {
					t.Fatalf("answer %q is not a google.rpc.Status: %v", w.Body, err)
				}
			}
			if tc.ctype != "application/json" && (codes.Code(st.Code) != tc.rpc || !strings.Contains(st.Message, tc.says)) {
				t.Errorf("status %v %q, want %v saying %q", codes.Code(st.Code), st.Message, tc.rpc, tc.says)
			}
			if tc.ctype == "application/json" && !strings.Contains(w.Body.String(), tc.says) {
				t.Errorf("answer %q does not say %q", w.Body, tc.says)
			}
			if tc.code == 429 && w.Header().Get("Retry-After") == "" {
				t.Error("429 without Retry-After: exporters would not know when to send again")
			}
		})
	}
}

// A signal the input does not take is not found; the others are.
func TestOTLPHTTPTakesOnlyItsSignals(t *testing.T) {
	r := httpinput.New(testConfig(0), Routes([]string{Metrics}), &memStore{}, quiet, httpinput.Metrics{})
	logs, _ := plogotlp.NewExportRequestFromLogs(someLogs()).MarshalProto()
	if w := postOTLP(t, r, "/v1/logs", protobufType, logs); w.Code != 404 || !strings.Contains(w.Body.String(), "/v1/metrics") {
		t.Errorf("logs to a metrics-only input: %d %q, want 404 naming /v1/metrics", w.Code, w.Body)
	}
}

// A log record too large for the broker is left out; the rest is stored and the answer says
// so (partial success), so the exporter logs it and does not send the request again.
func TestOTLPHTTPPartialSuccess(t *testing.T) {
	store := &memStore{}
	var rejected int64
	r := httpinput.New(testConfig(1000), Routes(nil), store, quiet, httpinput.Metrics{Rejected: func(n int64) { rejected += n }})
	ld := someLogs()
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty().Body().SetStr(strings.Repeat("x", 5000))
	body, _ := plogotlp.NewExportRequestFromLogs(ld).MarshalJSON()
	w := postOTLP(t, r, "/v1/logs", jsonType, body)
	resp := plogotlp.NewExportResponse()
	if err := resp.UnmarshalJSON(w.Body.Bytes()); w.Code != 200 || err != nil {
		t.Fatalf("%d %q: %v", w.Code, w.Body, err)
	}
	ps := resp.PartialSuccess()
	if ps.RejectedLogRecords() != 1 || !strings.Contains(ps.ErrorMessage(), "over the broker's max_record_bytes (1000)") {
		t.Errorf("partial success %d %q, want 1 rejected saying why", ps.RejectedLogRecords(), ps.ErrorMessage())
	}
	if store.count() != 2 || rejected != 1 {
		t.Errorf("stored %d, counted %d rejected: want the 2 others stored and 1 counted", store.count(), rejected)
	}
}

// startGRPC serves OTLP/gRPC over store and returns a connection to it.
func startGRPC(t *testing.T, store httpinput.Store, maxRecordBytes int, signals ...string) *grpc.ClientConn {
	t.Helper()
	cfg := testConfig(maxRecordBytes)
	cfg.Listen = enginetest.FreeAddr(t)
	g := NewGRPC(httpinput.New(cfg, nil, store, quiet, httpinput.Metrics{}), cfg, signals, nil, quiet)
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Shutdown(context.Background()) })
	conn, err := grpc.NewClient(g.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// OTLP/gRPC: an Export returns OK once its records are stored; one the store cannot take
// is RESOURCE_EXHAUSTED with a RetryInfo (without one, exporters do not retry that code).
func TestOTLPGRPCStoresOrAsksForARetry(t *testing.T) {
	store := &memStore{}
	conn := startGRPC(t, store, 0)
	ctx := t.Context()
	if _, err := pmetricotlp.NewGRPCClient(conn).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(everyMetricType())); err != nil {
		t.Fatal(err)
	}
	if _, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(someSpans())); err != nil {
		t.Fatal(err)
	}
	if store.count() != 7+2 {
		t.Errorf("stored %d records, want 9 (7 data points, 2 spans)", store.count())
	}
	failing := startGRPC(t, &memStore{fail: errors.New("broker gone")}, 0)
	_, err := plogotlp.NewGRPCClient(failing).Export(ctx, plogotlp.NewExportRequestFromLogs(someLogs()))
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || !hasRetryInfo(st) {
		t.Errorf("store failing: %v with details %v, want RESOURCE_EXHAUSTED with RetryInfo", st.Code(), st.Details())
	}
}

func hasRetryInfo(st *status.Status) bool {
	for _, d := range st.Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			return true
		}
	}
	return false
}

// Over gRPC too, a record too large is left out and reported, and a signal not taken is
// UNIMPLEMENTED.
func TestOTLPGRPCPartialSuccessAndSignals(t *testing.T) {
	store := &memStore{}
	conn := startGRPC(t, store, 1000, Logs)
	ld := someLogs()
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty().Body().SetStr(strings.Repeat("x", 5000))
	resp, err := plogotlp.NewGRPCClient(conn).Export(t.Context(), plogotlp.NewExportRequestFromLogs(ld))
	if err != nil || resp.PartialSuccess().RejectedLogRecords() != 1 || store.count() != 2 {
		t.Errorf("err %v, rejected %d, stored %d: want OK, 1 rejected, 2 stored", err, resp.PartialSuccess().RejectedLogRecords(), store.count())
	}
	_, err = pmetricotlp.NewGRPCClient(conn).Export(t.Context(), pmetricotlp.NewExportRequestFromMetrics(everyMetricType()))
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("metrics to a logs-only input: %v, want UNIMPLEMENTED", err)
	}
}
