package otlpinput

import (
	"fmt"
	"mime"
	"net/http"
	"slices"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/eventops/eventops-engine/engine/httpinput"
)

// The signals an otlp input takes, as its config names them.
const (
	Metrics = "metrics"
	Logs    = "logs"
	Traces  = "traces"
)

// Paths are the OTLP/HTTP paths of the signals, as exporters append them to their endpoint.
var Paths = map[string]string{Metrics: "/v1/metrics", Logs: "/v1/logs", Traces: "/v1/traces"}

const (
	protobufType = "application/x-protobuf"
	jsonType     = "application/json"
)

// message is an OTLP export request or response, in either of OTLP/HTTP's encodings.
type message interface {
	UnmarshalProto([]byte) error
	UnmarshalJSON([]byte) error
	MarshalProto() ([]byte, error)
	MarshalJSON() ([]byte, error)
}

// signal is how one signal's requests become records, and its answer is written.
type signal struct {
	request func() message
	records func(req message, maxRecordBytes int) httpinput.Decoded
	// response is the answer to a request stored but for rejected items.
	response func(rejected int64, reason string) message
}

var signals = map[string]signal{
	Metrics: {
		request: func() message { return pmetricotlp.NewExportRequest() },
		records: func(req message, max int) httpinput.Decoded {
			return MetricRecords(req.(pmetricotlp.ExportRequest).Metrics(), max)
		},
		response: func(rejected int64, reason string) message {
			r := pmetricotlp.NewExportResponse()
			if rejected > 0 {
				r.PartialSuccess().SetRejectedDataPoints(rejected)
				r.PartialSuccess().SetErrorMessage(reason)
			}
			return r
		},
	},
	Logs: {
		request: func() message { return plogotlp.NewExportRequest() },
		records: func(req message, max int) httpinput.Decoded {
			return LogRecords(req.(plogotlp.ExportRequest).Logs(), max)
		},
		response: func(rejected int64, reason string) message {
			r := plogotlp.NewExportResponse()
			if rejected > 0 {
				r.PartialSuccess().SetRejectedLogRecords(rejected)
				r.PartialSuccess().SetErrorMessage(reason)
			}
			return r
		},
	},
	Traces: {
		request: func() message { return ptraceotlp.NewExportRequest() },
		records: func(req message, max int) httpinput.Decoded {
			return SpanRecords(req.(ptraceotlp.ExportRequest).Traces(), max)
		},
		response: func(rejected int64, reason string) message {
			r := ptraceotlp.NewExportResponse()
			if rejected > 0 {
				r.PartialSuccess().SetRejectedSpans(rejected)
				r.PartialSuccess().SetErrorMessage(reason)
			}
			return r
		},
	},
}

// Routes are the OTLP/HTTP routes of the given signals (all three when none are given).
func Routes(names []string) httpinput.Routes {
	routes := httpinput.Routes{}
	for name, sig := range signals {
		if len(names) == 0 || slices.Contains(names, name) {
			routes[Paths[name]] = sig.format()
		}
	}
	return routes
}

func (sig signal) format() httpinput.Format {
	return httpinput.Format{Decode: sig.decode, Stored: sig.stored, Failed: failed}
}

// decode reads an export request in the encoding its Content-Type names.
func (sig signal) decode(req httpinput.Request, lim httpinput.Limits) (httpinput.Decoded, error) {
	msg := sig.request()
	var err error
	switch mediaType(req.ContentType) {
	case protobufType:
		err = msg.UnmarshalProto(req.Body)
	case jsonType:
		err = msg.UnmarshalJSON(req.Body)
	default:
		return httpinput.Decoded{}, fmt.Errorf("content type %q: OTLP/HTTP sends %s or %s: %w", req.ContentType, protobufType, jsonType, httpinput.ErrMediaType)
	}
	if err != nil {
		return httpinput.Decoded{}, fmt.Errorf("the body is not an OTLP export request in %s: %w", mediaType(req.ContentType), err)
	}
	return sig.records(msg, lim.MaxRecordBytes), nil
}

// stored answers 200 with the export response, in the request's encoding: empty, or saying
// which items were left out (partial success).
func (sig signal) stored(req httpinput.Request, d httpinput.Decoded) httpinput.Answer {
	msg := sig.response(d.Rejected, d.Reason)
	ctype, body, err := encode(req, msg.MarshalProto, msg.MarshalJSON)
	if err != nil {
		return httpinput.Answer{Code: http.StatusInternalServerError, ContentType: "text/plain", Body: []byte(err.Error())}
	}
	return httpinput.Answer{Code: http.StatusOK, ContentType: ctype, Body: body}
}

// failed answers code with a google.rpc.Status saying why, in the request's encoding, as
// OTLP/HTTP asks.
func failed(req httpinput.Request, code int, err error) httpinput.Answer {
	st := &statuspb.Status{Code: int32(grpcCode(code)), Message: err.Error()}
	ctype, body, encErr := encode(req,
		func() ([]byte, error) { return proto.Marshal(st) },
		func() ([]byte, error) { return protojson.Marshal(st) })
	if encErr != nil {
		return httpinput.Answer{Code: code, ContentType: "text/plain", Body: []byte(err.Error())}
	}
	return httpinput.Answer{Code: code, ContentType: ctype, Body: body}
}

// encode writes an answer as JSON to a JSON request, and as protobuf to any other.
func encode(req httpinput.Request, asProto, asJSON func() ([]byte, error)) (string, []byte, error) {
	if mediaType(req.ContentType) == jsonType {
		b, err := asJSON()
		return jsonType, b, err
	}
	b, err := asProto()
	return protobufType, b, err
}

func mediaType(contentType string) string {
	t, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return contentType
	}
	return t
}

// grpcCode is the gRPC code of an HTTP status, for the Status an OTLP/HTTP error carries.
func grpcCode(httpStatus int) codes.Code {
	switch httpStatus {
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusRequestEntityTooLarge, http.StatusBadRequest, http.StatusUnsupportedMediaType, http.StatusMethodNotAllowed:
		return codes.InvalidArgument
	}
	return codes.Internal
}
