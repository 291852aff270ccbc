package storetest

import (
	"fmt"
	"time"

	"github.com/eventops/eventops-engine/engine"
)

// metricRow is one metric envelope of the fixture and the row a store must return for it.
type metricRow struct {
	id, tenant, host, metric string // host "": the record has no source
	value                    float64
	ts                       string // ts_event as sent; "": the record has none
	bare                     bool   // no unit and no tags
}

// metricsBatch1 is written and flushed, metricsBatch2 written after it and not flushed,
// so the routes read rows from both sides of a flush.
var (
	metricsBatch1 = []metricRow{
		{id: "m01", tenant: "acme", host: "host-a", metric: "cpu_load", value: 92, ts: "2025-10-16T09:03:00Z"},
		{id: "m02", tenant: "acme", host: "host-a", metric: "cpu_load", value: 40.5, ts: "2025-10-16T09:01:00Z"},
		{id: "m03", tenant: "acme", host: "host-b", metric: "cpu_load", value: 77, ts: "2025-10-16T09:02:00Z"},
		{id: "m04", tenant: "acme", host: "host-a", metric: "mem_used", value: 63, ts: "2025-10-16T09:04:00Z"},
		{id: "m05", tenant: "globex", host: "host-a", metric: "cpu_load", value: 12, ts: "2025-10-16T09:05:00Z"},
		// Another zone and a fraction: stored as 09:00:00.25 UTC.
		{id: "m06", tenant: "acme", host: "host-a", metric: "cpu_load", value: 7.25, ts: "2025-10-16T11:00:00.25+02:00"},
		// The 16th in its own zone, the 15th in UTC: a store partitioned by date must find it
		// on the UTC date.
		{id: "m14", tenant: "acme", host: "host-a", metric: "cpu_load", value: 55, ts: "2025-10-16T01:30:00+02:00"},
	}
	metricsBatch2 = []metricRow{
		{id: "m07", tenant: "acme", host: "host-a", metric: "cpu_load", value: 88, ts: "2025-10-16T09:02:30Z"},
		{id: "m08", tenant: "acme", host: "host-a", metric: "cpu_load", value: 95, ts: "2025-10-16T09:06:00Z"},
		{id: "m09", tenant: "acme", host: "host-b", metric: "cpu_load", value: 50, ts: "2025-10-16T09:07:00Z"},
		{id: "m10", tenant: "globex", host: "host-b", metric: "cpu_load", value: 33, ts: "2025-10-16T09:08:00Z"},
		{id: "m11", tenant: "acme", metric: "cpu_load", value: 61, ts: "2025-10-16T09:05:30Z", bare: true},
		{id: "m12", tenant: "acme", host: "host-c", metric: "cpu_load", value: 10},
		{id: "m13", tenant: "acme", host: "host-c", metric: "cpu_load", value: 20, ts: "2025-10-16T09:09:00Z"},
	}
)

func (m metricRow) record(offset int64) *engine.Record {
	v := map[string]any{
		"event_id":  m.id,
		"tenant_id": m.tenant,
		"metric":    m.metric,
		"value":     m.value,
	}
	if m.host != "" {
		v["source"] = map[string]any{"type": "host", "source_id": m.host}
	}
	if m.ts != "" {
		v["ts_event"] = m.ts
	}
	if !m.bare {
		v["unit"] = "percent"
		v["tags"] = map[string]any{"env": "prod", "rack": "r" + m.id[1:]}
	}
	return record(v, m.host, offset)
}

// want is the row a store returns for m.
func (m metricRow) want() map[string]any {
	row := map[string]any{
		"event_id": m.id, "tenant": m.tenant, "metric": m.metric, "value": m.value,
		"source_id": nil, "ts": nil, "unit": nil, "tags": nil,
	}
	if m.host != "" {
		row["source_id"] = m.host
	}
	if m.ts != "" {
		row["ts"] = utc(m.ts)
	}
	if !m.bare {
		row["unit"] = "percent"
		row["tags"] = map[string]any{"env": "prod", "rack": "r" + m.id[1:]}
	}
	return row
}

// alertRow is one alert record of the fixture, shaped like the threshold processor's.
type alertRow struct {
	id, tenant, fp, state, severity string
	ts                              string // minute of 2025-10-16T09, e.g. "09:05"
}

// alertsBatch1 is written and flushed, alertsBatch2 written after it and not flushed.
// fa fires then resolves; fb fires; fc fires, resolves and fires again; fd fires at 09:10
// and an older pending row of it (09:06) arrives later; fe is another tenant's.
var (
	alertsBatch1 = []alertRow{
		{"a01", "acme", "fa", "firing", "critical", "09:00"},
		{"b01", "acme", "fb", "firing", "warning", "09:01"},
		{"c01", "acme", "fc", "firing", "critical", "09:02"},
		{"c02", "acme", "fc", "resolved", "critical", "09:03"},
		{"d01", "acme", "fd", "firing", "warning", "09:10"},
	}
	alertsBatch2 = []alertRow{
		{"a02", "acme", "fa", "resolved", "critical", "09:05"},
		{"c03", "acme", "fc", "firing", "critical", "09:04"},
		{"d00", "acme", "fd", "pending", "warning", "09:06"},
		{"e01", "globex", "fe", "firing", "critical", "09:07"},
	}
)

func (a alertRow) time() string { return "2025-10-16T" + a.ts + ":00Z" }

func (a alertRow) record(offset int64) *engine.Record {
	v := map[string]any{
		"event_id":    a.id,
		"fingerprint": a.fp,
		"rule":        "cpu_high",
		"state":       a.state,
		"severity":    a.severity,
		"ts":          a.time(),
		"started_at":  "2025-10-16T08:59:30Z",
		"message":     fmt.Sprintf("cpu_load %s on host-%s", a.state, a.fp),
		"labels":      map[string]any{"host": "host-" + a.fp, "cpu": 92.5},
		"annotations": map[string]any{"runbook": "https://runbooks/cpu?host=host-" + a.fp},
		"series":      map[string]any{"value": 92.5},
		"tenant_id":   a.tenant,
		"metric":      "cpu_load",
		"value":       92.5,
		"tags":        map[string]any{"env": "prod"},
		"source_id":   "host-" + a.fp,
	}
	if a.state != "pending" {
		v["fired_at"] = "2025-10-16T09:00:00.5Z"
	}
	if a.state == "resolved" {
		v["resolved_at"] = a.time()
		v["reason"] = "cleared"
	}
	return record(v, a.fp, offset)
}

// want is the row a store returns for a.
func (a alertRow) want() map[string]any {
	row := map[string]any{
		"event_id": a.id, "ts": a.time(), "tenant": a.tenant, "source_id": "host-" + a.fp,
		"metric": "cpu_load", "severity": a.severity, "rule": "cpu_high", "value": 92.5,
		"message": fmt.Sprintf("cpu_load %s on host-%s", a.state, a.fp), "tags": map[string]any{"env": "prod"},
		"fingerprint": a.fp, "state": a.state, "started_at": "2025-10-16T08:59:30Z",
		"resolved_at": nil, "labels": map[string]any{"host": "host-" + a.fp, "cpu": 92.5},
		"previous_severity": nil, "reason": nil, "fired_at": nil,
		"annotations": map[string]any{"runbook": "https://runbooks/cpu?host=host-" + a.fp},
	}
	if a.state != "pending" {
		row["fired_at"] = "2025-10-16T09:00:00.5Z"
	}
	if a.state == "resolved" {
		row["resolved_at"] = a.time()
		row["reason"] = "cleared"
	}
	return row
}

func metricRecords(rows []metricRow, offset int64) []*engine.Record {
	out := make([]*engine.Record, len(rows))
	for i, m := range rows {
		out[i] = m.record(offset + int64(i))
	}
	return out
}

func alertRecords(rows []alertRow, offset int64) []*engine.Record {
	out := make([]*engine.Record, len(rows))
	for i, a := range rows {
		out[i] = a.record(offset + int64(i))
	}
	return out
}

// utc is an RFC 3339 time as a store returns it: in UTC, with its fraction if any.
func utc(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC().Format(time.RFC3339Nano)
}
