package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// The bodies each format sends, against golden files (go test -update rewrites them): the
// threshold processor's real alert records, as a sink reads them from ops.alert.v1.
func TestPayloadsMatchGoldenFiles(t *testing.T) {
	alerts := thresholdAlerts(t) // a fires, b fires, c fires, a resolves
	metric := metricEvent("a", 0, 95)
	metric.Value["event_id"] = "ev-json-1"
	tests := []struct {
		name     string
		settings string
		batch    []*engine.Record
	}{
		{"alertmanager_firing", `format: alertmanager, external_url: "http://engine.example.com:8088", generator_url: 'http://engine.example.com:8088/alerts?fingerprint={{fingerprint}}'`, alerts[:1]},
		{"alertmanager_resolved", `format: alertmanager, receiver: ops.pager`, alerts[3:]},
		{"alertmanager_batch_of_3", `format: alertmanager, batch: {max_records: 3}`, alerts[:3]},
		{"json", ``, []*engine.Record{metric}},
		{"json_batch", `batch: {max_records: 10}`, alerts[:2]},
		{"template", `format: template, template: '{"text": {{toJSON(message)}}, "severity": "{{severity}}"}'`, alerts[:1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, nil)
			o, _ := newTestOutput(t, settingsFor(rc, tt.settings))
			var rejects engine.Rejects
			if err := o.Write(context.Background(), tt.batch, &rejects); err != nil || rejects.Len() > 0 {
				t.Fatalf("Write: %v, rejects %v", err, rejects.Items)
			}
			got := rc.requests()
			if len(got) != 1 {
				t.Fatalf("%d requests, want 1", len(got))
			}
			compareGolden(t, filepath.Join("testdata", "golden", tt.name), got[0].body)
		})
	}
}

// compareGolden compares a JSON body with golden.json, indented there for reading, or
// another body byte for byte with golden.txt.
func compareGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	want := got
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err == nil {
		golden += ".json"
		want = pretty.Bytes()
	} else {
		golden += ".txt"
	}
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	committed, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(committed, want) {
		t.Errorf("body differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", golden, want, committed)
	}
}

// amKV, amAlertV4 and amMessageV4 are Alertmanager's notify/webhook.Message as its
// receivers decode it (template.Data embedded, then version, groupKey, truncatedAlerts),
// written from reading Alertmanager's source (template/template.go, notify/webhook).
type amKV map[string]string

type amAlertV4 struct {
	Status       string    `json:"status"`
	Labels       amKV      `json:"labels"`
	Annotations  amKV      `json:"annotations"`
	StartsAt     time.Time `json:"startsAt"`
	EndsAt       time.Time `json:"endsAt"`
	GeneratorURL string    `json:"generatorURL"`
	Fingerprint  string    `json:"fingerprint"`
}

type AMDataV4 struct {
	Receiver          string      `json:"receiver"`
	Status            string      `json:"status"`
	Alerts            []amAlertV4 `json:"alerts"`
	GroupLabels       amKV        `json:"groupLabels"`
	CommonLabels      amKV        `json:"commonLabels"`
	CommonAnnotations amKV        `json:"commonAnnotations"`
	ExternalURL       string      `json:"externalURL"`
}

type amMessageV4 struct {
	*AMDataV4
	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// A receiver written for Alertmanager decodes our payload into Alertmanager's own message
// type with nothing missing, nothing extra and every value of the type it expects, and
// reads what Alertmanager would have told it about the same alerts.
func TestAlertmanagerReceiversDecodeThePayload(t *testing.T) {
	alerts := thresholdAlerts(t) // a fires, b warns, c fires; a resolves, in a second notification
	rc := newReceiver(t, nil)
	o, _ := newTestOutput(t, settingsFor(rc, `format: alertmanager, batch: {max_records: 4}, external_url: "http://engine:8088", generator_url: 'http://engine:8088/alerts?fingerprint={{fingerprint}}'`))
	var rejects engine.Rejects
	if err := o.Write(context.Background(), alerts, &rejects); err != nil || rejects.Len() > 0 {
		t.Fatalf("Write: %v, rejects %v", err, rejects.Items)
	}
	got := rc.requests()
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2 (a notification holds each alert once)", len(got))
	}
	body := got[0].body
	if ct := got[0].header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json as Alertmanager sends", ct)
	}

	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var m amMessageV4
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("Alertmanager's message type does not decode the payload: %v\n%s", err, body)
	}
	assertAllFieldsPresent(t, body)

	if m.Version != "4" || m.Status != "firing" || m.Receiver != "eventops-engine" || m.ExternalURL != "http://engine:8088" ||
		m.TruncatedAlerts != 0 || m.GroupKey != "{}:{}" || len(m.GroupLabels) != 0 {
		t.Errorf("message header = %+v / version %q groupKey %q truncated %d", *m.AMDataV4, m.Version, m.GroupKey, m.TruncatedAlerts)
	}
	var second amMessageV4
	if err := json.Unmarshal(got[1].body, &second); err != nil {
		t.Fatal(err)
	}
	if len(m.Alerts) != 3 || len(second.Alerts) != 1 || second.Status != "resolved" {
		t.Fatalf("%d alerts, then %d (%s), want 3, then a's resolve", len(m.Alerts), len(second.Alerts), second.Status)
	}
	firstA, resolvedA := m.Alerts[0], second.Alerts[0]
	wantLabels := amKV{"alertname": "cpu_load", "severity": "critical", "env": "prod", "tenant_id": "acme", "source_id": "a", "metric": "cpu_load"}
	if !maps.Equal(firstA.Labels, wantLabels) {
		t.Errorf("labels = %v, want %v", firstA.Labels, wantLabels)
	}
	if firstA.Annotations["summary"] != "CPU load 95% on a" || firstA.Annotations["runbook"] != "https://runbooks.example.com/cpu?host=a" {
		t.Errorf("annotations = %v", firstA.Annotations)
	}
	fired := time.Date(2025, 10, 16, 9, 0, 0, 0, time.UTC)
	if !firstA.StartsAt.Equal(fired) || !firstA.EndsAt.IsZero() || firstA.Status != "firing" {
		t.Errorf("firing alert: status %s startsAt %v endsAt %v; want firing since %v, endsAt the zero time", firstA.Status, firstA.StartsAt, firstA.EndsAt, fired)
	}
	if !resolvedA.StartsAt.Equal(fired) || !resolvedA.EndsAt.Equal(fired.Add(5*time.Minute)) || resolvedA.Status != "resolved" {
		t.Errorf("resolved alert: status %s startsAt %v endsAt %v", resolvedA.Status, resolvedA.StartsAt, resolvedA.EndsAt)
	}
	if firstA.Fingerprint != alerts[0].Value["fingerprint"] || resolvedA.Fingerprint != firstA.Fingerprint {
		t.Errorf("fingerprints %s, %s; want the alert's %v", firstA.Fingerprint, resolvedA.Fingerprint, alerts[0].Value["fingerprint"])
	}
	if firstA.GeneratorURL != "http://engine:8088/alerts?fingerprint="+firstA.Fingerprint {
		t.Errorf("generatorURL %q", firstA.GeneratorURL)
	}
	wantCommon := amKV{"alertname": "cpu_load", "env": "prod", "tenant_id": "acme", "metric": "cpu_load"}
	if !maps.Equal(m.CommonLabels, wantCommon) {
		t.Errorf("commonLabels = %v, want %v (the labels all three share)", m.CommonLabels, wantCommon)
	}
	if len(m.CommonAnnotations) != 0 {
		t.Errorf("commonAnnotations = %v, want none (every host has its own summary and runbook)", m.CommonAnnotations)
	}
}

// assertAllFieldsPresent checks that the payload has every field Alertmanager sends, since
// decoding into a struct would not notice a missing one.
func assertAllFieldsPresent(t *testing.T, body []byte) {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	want := []string{"receiver", "status", "alerts", "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "version", "groupKey", "truncatedAlerts"}
	if got := slices.Sorted(maps.Keys(raw)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("payload fields %v, want %v", got, want)
	}
	wantAlert := []string{"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
	for i, a := range raw["alerts"].([]any) {
		if got := slices.Sorted(maps.Keys(a.(map[string]any))); !slices.Equal(got, slices.Sorted(slices.Values(wantAlert))) {
			t.Errorf("alert %d fields %v, want %v", i, got, wantAlert)
		}
	}
}

// Alerts that Alertmanager's receivers never see are not sent (and not dead letters): a
// pending alert, and the end of one that never fired.
func TestPendingAndNeverFiredAlertsAreNotSent(t *testing.T) {
	fired := thresholdAlerts(t)[0].Value
	pending := maps.Clone(fired)
	pending["state"] = "pending"
	delete(pending, "fired_at")
	cancelled := maps.Clone(pending)
	cancelled["state"], cancelled["reason"], cancelled["resolved_at"] = "resolved", "cancelled", "2025-10-16T09:01:00Z"
	rc := newReceiver(t, nil)
	o, _ := newTestOutput(t, settingsFor(rc, `format: alertmanager`))
	var rejects engine.Rejects
	batch := []*engine.Record{{Value: pending}, {Value: cancelled}, {Value: fired}}
	if err := o.Write(context.Background(), batch, &rejects); err != nil || rejects.Len() > 0 {
		t.Fatalf("Write: %v, rejects %v", err, rejects.Items)
	}
	if got := rc.requests(); len(got) != 1 || !bytes.Contains(got[0].body, []byte(`"status":"firing"`)) {
		t.Errorf("requests %d, want only the firing alert's", len(got))
	}
}

// group_by splits a batch into one payload per group, as Alertmanager's route does, and
// each payload names its group.
func TestGroupByMakesOnePayloadPerGroup(t *testing.T) {
	alerts := thresholdAlerts(t)[:3] // critical a, warning b, critical c
	rc := newReceiver(t, nil)
	o, _ := newTestOutput(t, settingsFor(rc, `format: alertmanager, group_by: [severity], batch: {max_records: 10}`))
	var rejects engine.Rejects
	if err := o.Write(context.Background(), alerts, &rejects); err != nil || rejects.Len() > 0 {
		t.Fatalf("Write: %v, rejects %v", err, rejects.Items)
	}
	groups := map[string][]string{}
	for _, r := range rc.requests() {
		var m amMessageV4
		if err := json.Unmarshal(r.body, &m); err != nil {
			t.Fatal(err)
		}
		for _, a := range m.Alerts {
			groups[m.GroupKey] = append(groups[m.GroupKey], a.Labels["source_id"])
		}
		if m.GroupLabels["severity"] == "" || m.CommonLabels["severity"] != m.GroupLabels["severity"] {
			t.Errorf("group %s: groupLabels %v, commonLabels %v", m.GroupKey, m.GroupLabels, m.CommonLabels)
		}
	}
	want := map[string][]string{`{}:{severity="critical"}`: {"a", "c"}, `{}:{severity="warning"}`: {"b"}}
	if !maps.EqualFunc(groups, want, slices.Equal) {
		t.Errorf("groups %v, want %v", groups, want)
	}
}

// Records that are not alerts cannot be sent as Alertmanager alerts: they are dead
// letters with the reason, and the alerts of the batch are sent.
func TestAlertmanagerFormatRejectsRecordsThatAreNoAlerts(t *testing.T) {
	rc := newReceiver(t, nil)
	o, _ := newTestOutput(t, settingsFor(rc, `format: alertmanager`))
	var rejects engine.Rejects
	metric := metricEvent("a", 0, 95)
	if err := o.Write(context.Background(), []*engine.Record{metric, thresholdAlerts(t)[0]}, &rejects); err != nil {
		t.Fatal(err)
	}
	if rejects.Len() != 1 || rejects.Items[0].Record != metric || rejects.Items[0].Stage != "output" {
		t.Fatalf("rejects %v, want the metric record", rejects.Items)
	}
	mustContain(t, "reason", rejects.Items[0].Err.Error(), "alert records", "rule, fingerprint and state")
	if n := len(rc.requests()); n != 1 {
		t.Errorf("%d requests, want the alert's", n)
	}
}

// An Alertmanager notification holds each alert once, with its state: two transitions of one
// alert in a batch (firing, then resolved) go in two notifications, in order, and other
// alerts still share them.
func TestAnAlertIsOncePerNotification(t *testing.T) {
	alerts := thresholdAlerts(t) // a fires, b warns, c fires, a resolves
	rc := newReceiver(t, nil)
	o, _ := newTestOutput(t, settingsFor(rc, `format: alertmanager, batch: {max_records: 10}`))
	var rejects engine.Rejects
	if err := o.Write(context.Background(), alerts, &rejects); err != nil || rejects.Len() > 0 {
		t.Fatalf("Write: %v, rejects %v", err, rejects.Items)
	}
	var got [][]string
	for _, r := range rc.requests() {
		var m amMessageV4
		if err := json.Unmarshal(r.body, &m); err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, a := range m.Alerts {
			n = append(n, a.Labels["source_id"]+" "+a.Status)
		}
		got = append(got, n)
	}
	want := [][]string{{"a firing", "b firing", "c firing"}, {"a resolved"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("notifications %v, want %v", got, want)
	}
}
