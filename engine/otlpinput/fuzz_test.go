package otlpinput

import (
	"encoding/json"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/eventops/eventops-engine/engine/httpinput"
)

// Whatever a client sends, in either encoding, is refused with an error or becomes records
// that are each one JSON object within the record limit: never a panic, never a record the
// stream could not decode.
func FuzzOTLPRequest(f *testing.F) {
	m, _ := pmetricotlp.NewExportRequestFromMetrics(everyMetricType()).MarshalProto()
	l, _ := plogotlp.NewExportRequestFromLogs(someLogs()).MarshalJSON()
	s, _ := ptraceotlp.NewExportRequestFromTraces(someSpans()).MarshalProto()
	f.Add(Metrics, false, m)
	f.Add(Logs, true, l)
	f.Add(Traces, false, s)
	f.Fuzz(func(t *testing.T, name string, asJSON bool, body []byte) {
		sig, ok := signals[name]
		if !ok {
			return
		}
		ctype := protobufType
		if asJSON {
			ctype = jsonType
		}
		d, err := sig.decode(httpinput.Request{Body: body, ContentType: ctype}, httpinput.Limits{MaxRecordBytes: 4096})
		if err != nil {
			return
		}
		for _, rec := range d.Records {
			var obj map[string]any
			if err := json.Unmarshal(rec, &obj); err != nil || len(rec) > 4096 {
				t.Fatalf("record %q (%d bytes) is not one JSON object within the limit: %v", rec, len(rec), err)
			}
		}
	})
}
