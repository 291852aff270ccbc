package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"time"

	"github.com/klauspost/compress/snappy"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/eventops/eventops-engine/engine/httpinput"
	"github.com/eventops/eventops-engine/engine/otlpinput"
)

type receiverAddrs struct{ http, otlp, grpc, remoteWrite string }

// contender is one receiver under measure: send stores one request of batch records, stored
// are the records the engine stores for it (what the ceiling produces).
type contender struct {
	name   string
	send   func() error
	stored [][]byte
}

func newContender(name string, addrs receiverAddrs, batch int) (contender, error) {
	switch name {
	case "http":
		body := requestBody(batch)
		return contender{name: "http input, NDJSON (answered 200)", stored: bytes.Split(bytes.TrimSpace(body), []byte("\n")),
			send: func() error { return post("http://"+addrs.http+"/ingest", "application/x-ndjson", body, "") }}, nil
	case "otlp":
		req := pmetricotlp.NewExportRequestFromMetrics(gauges(batch))
		body, err := req.MarshalProto()
		return contender{name: "otlp input, OTLP/HTTP protobuf metrics (200)", stored: otlpinput.MetricRecords(req.Metrics(), 0).Records,
			send: func() error { return post("http://"+addrs.otlp+"/v1/metrics", "application/x-protobuf", body, "") }}, err
	case "otlp-grpc":
		return grpcContender(addrs.grpc, batch)
	case "remote_write":
		body := snappy.Encode(nil, writeRequest(batch))
		d, err := httpinput.RemoteWrite.Decode(httpinput.Request{Body: body}, httpinput.Limits{})
		return contender{name: "prometheus_remote_write input (204)", stored: d.Records,
			send: func() error {
				return post("http://"+addrs.remoteWrite+"/api/v1/write", "application/x-protobuf", body, "snappy")
			}}, err
	}
	return contender{}, fmt.Errorf("unknown format %q: http, otlp, otlp-grpc or remote_write", name)
}

func grpcContender(addr string, batch int) (contender, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return contender{}, err
	}
	client := pmetricotlp.NewGRPCClient(conn)
	req := pmetricotlp.NewExportRequestFromMetrics(gauges(batch))
	return contender{name: "otlp input, OTLP/gRPC metrics (OK)", stored: otlpinput.MetricRecords(req.Metrics(), 0).Records,
		send: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := client.Export(ctx, req)
			return err
		}}, nil
}

// gauges is n gauge data points of a host agent's kind: 1000 hosts, one resource each.
func gauges(n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	now := pcommon.NewTimestampFromTime(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	for i := range n {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "node-agent")
		rm.Resource().Attributes().PutStr("host.name", fmt.Sprintf("host-%03d", i%1000))
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("system.cpu.utilization")
		m.SetUnit("1")
		p := m.SetEmptyGauge().DataPoints().AppendEmpty()
		p.SetTimestamp(now + pcommon.Timestamp(i))
		p.SetDoubleValue(float64(i%100) / 100)
		p.Attributes().PutStr("state", "user")
	}
	return md
}

// writeRequest is a remote_write 1.0 WriteRequest of n series with one sample each.
func writeRequest(n int) []byte {
	var req []byte
	ts := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC).UnixMilli()
	for i := range n {
		var series []byte
		for _, l := range [][2]string{{"__name__", "node_load1"}, {"instance", fmt.Sprintf("host-%03d:9100", i%1000)}, {"job", "node"}} {
			var label []byte
			label = protowire.AppendTag(label, 1, protowire.BytesType)
			label = protowire.AppendString(label, l[0])
			label = protowire.AppendTag(label, 2, protowire.BytesType)
			label = protowire.AppendString(label, l[1])
			series = protowire.AppendTag(series, 1, protowire.BytesType)
			series = protowire.AppendBytes(series, label)
		}
		var sample []byte
		sample = protowire.AppendTag(sample, 1, protowire.Fixed64Type)
		sample = protowire.AppendFixed64(sample, math.Float64bits(float64(i%100)/10))
		sample = protowire.AppendTag(sample, 2, protowire.VarintType)
		sample = protowire.AppendVarint(sample, uint64(ts+int64(i)))
		series = protowire.AppendTag(series, 2, protowire.BytesType)
		series = protowire.AppendBytes(series, sample)
		req = protowire.AppendTag(req, 1, protowire.BytesType)
		req = protowire.AppendBytes(req, series)
	}
	return req
}
