package httpinput

import (
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"
)

// A WriteRequest as remote_write 1.0 lays it out, built field by field (the test's own
// encoder: the engine only decodes).
type label struct{ name, value string }

func encodeLabel(l label) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendString(b, l.name)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendString(b, l.value)
}

func encodeSample(v float64, ts int64) []byte {
	b := protowire.AppendTag(nil, 1, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(v))
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(ts))
}

func encodeSeries(labels []label, samples [][]byte, extra ...[]byte) []byte {
	var b []byte
	for _, l := range labels {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, encodeLabel(l))
	}
	for _, s := range samples {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, s)
	}
	for _, e := range extra {
		b = append(b, e...)
	}
	return b
}

func writeRequest(series ...[]byte) []byte {
	var b []byte
	for _, s := range series {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, s)
	}
	return snappy.Encode(nil, b)
}

func postRemoteWrite(store Store, body []byte) *httptest.ResponseRecorder {
	r := New(Config{Stream: "s", Topic: "t", MaxBodyBytes: 1 << 20, MaxRecordBytes: 1 << 20, Timeout: 1e9, MaxInFlight: 2},
		Routes{"/api/v1/write": RemoteWrite}, store, slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics{})
	req := httptest.NewRequest(http.MethodPost, "/api/v1/write", strings.NewReader(string(body)))
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

// Each sample is one record with the series' name and labels; values JSON cannot hold are
// written as Prometheus's API writes them, and the staleness marker says so.
func TestRemoteWriteSamplesBecomeRecords(t *testing.T) {
	exemplar := protowire.AppendTag(nil, 3, protowire.BytesType)
	exemplar = protowire.AppendBytes(exemplar, append(append(protowire.AppendTag(nil, 1, protowire.BytesType),
		protowire.AppendBytes(nil, encodeLabel(label{"trace_id", "abc"}))...), append(protowire.AppendTag(nil, 2, protowire.Fixed64Type), protowire.AppendFixed64(nil, math.Float64bits(0.5))...)...))
	body := writeRequest(
		encodeSeries([]label{{"__name__", "up"}, {"instance", "h:9090"}, {"job", "prometheus"}},
			[][]byte{encodeSample(1, 1765123200123), encodeSample(0, 1765123201123)}),
		encodeSeries([]label{{"__name__", "odd"}},
			[][]byte{encodeSample(math.Inf(1), 1765123200000), encodeSample(math.Float64frombits(staleNaN), 1765123200000), encodeSample(math.NaN(), 1765123200000)}, exemplar),
	)
	store := &memStore{}
	w := postRemoteWrite(store, body)
	if w.Code != http.StatusNoContent {
		t.Fatalf("answer %d %s, want 204", w.Code, w.Body)
	}
	want := []string{
		`{"labels":{"instance":"h:9090","job":"prometheus"},"metric":"up","ts":"2025-12-07T16:00:00.123Z","value":1}`,
		`{"labels":{"instance":"h:9090","job":"prometheus"},"metric":"up","ts":"2025-12-07T16:00:01.123Z","value":0}`,
		`{"exemplars":[{"labels":{"trace_id":"abc"},"ts":"1970-01-01T00:00:00.000Z","value":0.5}],"labels":{},"metric":"odd","ts":"2025-12-07T16:00:00.000Z","value":"+Inf"}`,
		`{"labels":{},"metric":"odd","stale":true,"ts":"2025-12-07T16:00:00.000Z","value":"NaN"}`,
		`{"labels":{},"metric":"odd","ts":"2025-12-07T16:00:00.000Z","value":"NaN"}`,
	}
	if strings.Join(store.stored, "\n") != strings.Join(want, "\n") {
		t.Errorf("stored:\n%s\nwant:\n%s", strings.Join(store.stored, "\n"), strings.Join(want, "\n"))
	}
}

// What remote_write cannot take is refused with 400 (Prometheus does not send it again) and
// stores nothing; a broker that does not take the samples in time gets 429.
func TestRemoteWriteRefusals(t *testing.T) {
	// Spans of 3 buckets, counts of 1.
	short := nativeHistogramField(encodeNativeHistogram(0, []byte{}, nil, encodeSpans([2]int{0, 3}), []int64{1}))
	for name, tc := range map[string]struct {
		body []byte
		code int
		says string
	}{
		"not snappy":                         {[]byte("plain"), 400, "not snappy-compressed"},
		"not protobuf":                       {snappy.Encode(nil, []byte{0xff, 0xff, 0xff}), 400, "malformed protobuf"},
		"no samples":                         {writeRequest(), 400, "holds no samples"},
		"a native histogram short of counts": {writeRequest(encodeSeries([]label{{"__name__", "h"}}, nil, short)), 400, "fewer bucket counts than its spans say"},
		// 2 MiB of zeros compress to about 100 KB: within max_body_bytes sent, over it undone.
		"over max_body_bytes uncompressed": {snappy.Encode(nil, make([]byte, 2<<20)), 413, "once uncompressed, over max_body_bytes (1048576)"},
	} {
		store := &memStore{}
		w := postRemoteWrite(store, tc.body)
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.says) || len(store.stored) != 0 {
			t.Errorf("%s: %d %s (stored %d), want %d saying %q", name, w.Code, w.Body, len(store.stored), tc.code, tc.says)
		}
	}
	w := postRemoteWrite(&memStore{fail: io.ErrClosedPipe}, writeRequest(encodeSeries([]label{{"__name__", "up"}}, [][]byte{encodeSample(1, 0)})))
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Errorf("broker refusing: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
}

func FuzzRemoteWrite(f *testing.F) {
	f.Add(writeRequest(encodeSeries([]label{{"__name__", "up"}, {"a", "b"}}, [][]byte{encodeSample(1, 5)})))
	f.Add([]byte{0x00})
	f.Fuzz(func(t *testing.T, body []byte) {
		records, err := decodeRemoteWrite(body, Limits{MaxBodyBytes: 1 << 20, MaxRecordBytes: 1 << 20})
		if err != nil {
			return
		}
		for _, rec := range records {
			if recs, err := Split(rec, 0); err != nil || len(recs) != 1 {
				t.Fatalf("record %q is not one JSON object: %v", rec, err)
			}
		}
	})
}

// encodeNativeHistogram is a prometheus.Histogram of integer counts: count, sum 12.5, the given
// schema, negative and positive spans (already encoded) and deltas, reset hint "no", ts 1000.
func encodeNativeHistogram(schema int32, negSpans []byte, negDeltas []int64, posSpans []byte, posDeltas []int64) []byte {
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 7)
	b = protowire.AppendTag(b, 3, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(12.5))
	b = protowire.AppendTag(b, 4, protowire.VarintType)
	b = protowire.AppendVarint(b, protowire.EncodeZigZag(int64(schema)))
	b = protowire.AppendTag(b, 5, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(0.001))
	b = append(b, negSpans...) // field 8, as encodeSpans wrote it for the positive side
	if len(negSpans) > 0 {
		b = renumber(b, len(b)-len(negSpans), 11, 8)
	}
	b = appendDeltas(b, 9, negDeltas)
	b = append(b, posSpans...)
	b = appendDeltas(b, 12, posDeltas)
	b = protowire.AppendTag(b, 14, protowire.VarintType)
	b = protowire.AppendVarint(b, 2)
	b = protowire.AppendTag(b, 15, protowire.VarintType)
	return protowire.AppendVarint(b, 1000)
}

// encodeSpans is BucketSpan fields (number 11, the positive side's) of {offset, length} pairs.
func encodeSpans(spans ...[2]int) []byte {
	var b []byte
	for _, sp := range spans {
		m := protowire.AppendTag(nil, 1, protowire.VarintType)
		m = protowire.AppendVarint(m, protowire.EncodeZigZag(int64(sp[0])))
		m = protowire.AppendTag(m, 2, protowire.VarintType)
		m = protowire.AppendVarint(m, uint64(sp[1]))
		b = protowire.AppendTag(b, 11, protowire.BytesType)
		b = protowire.AppendBytes(b, m)
	}
	return b
}

// renumber rewrites the one-byte tags of field from (bytes type) in b[start:] as field to.
func renumber(b []byte, start int, from, to protowire.Number) []byte {
	old, repl := protowire.EncodeTag(from, protowire.BytesType), protowire.EncodeTag(to, protowire.BytesType)
	for i := start; i < len(b); {
		if b[i] != byte(old) {
			break
		}
		b[i] = byte(repl)
		_, l := protowire.ConsumeBytes(b[i+1:])
		i += 1 + l
	}
	return b
}

func appendDeltas(b []byte, num protowire.Number, deltas []int64) []byte {
	if len(deltas) == 0 {
		return b
	}
	var packed []byte
	for _, d := range deltas {
		packed = protowire.AppendVarint(packed, protowire.EncodeZigZag(d))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, packed)
}

func nativeHistogramField(h []byte) []byte {
	b := protowire.AppendTag(nil, 4, protowire.BytesType)
	return protowire.AppendBytes(b, h)
}

// A native histogram sample is one record: its buckets in ascending order with their bounds
// (schema 0: powers of 2) and absolute counts (the deltas summed), the zero bucket, the
// reset hint.
func TestRemoteWriteNativeHistogram(t *testing.T) {
	h := encodeNativeHistogram(0, encodeSpans([2]int{0, 1}), []int64{1}, encodeSpans([2]int{0, 2}, [2]int{1, 1}), []int64{2, 1, -2})
	store := &memStore{}
	w := postRemoteWrite(store, writeRequest(encodeSeries([]label{{"__name__", "rpc_seconds"}, {"job", "api"}}, nil, nativeHistogramField(h))))
	if w.Code != 204 || len(store.stored) != 1 {
		t.Fatalf("%d %s, stored %d", w.Code, w.Body, len(store.stored))
	}
	want := `{"buckets":[{"count":1,"lower":-1,"upper":-0.5},{"count":2,"lower":0.5,"upper":1},{"count":3,"lower":1,"upper":2},{"count":1,"lower":4,"upper":8}],` +
		`"count":7,"labels":{"job":"api"},"metric":"rpc_seconds","metric_type":"native_histogram","reset_hint":"no","schema":0,"sum":12.5,"ts":"1970-01-01T00:00:01.000Z","zero_count":0,"zero_threshold":0.001}`
	if store.stored[0] != want {
		t.Errorf("stored\n%s\nwant\n%s", store.stored[0], want)
	}
}
