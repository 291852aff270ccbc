package notify

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/enginetest"
)

// stepClock is an engine clock a test sets.
type stepClock struct{ now time.Time }

func (c *stepClock) Now() time.Time { return c.now }

func dur(d time.Duration) *config.Duration { v := config.Duration(d); return &v }

// testConfig routes critical alerts to "pager" and the rest to "ops" (as in Alertmanager, a
// child route that matches takes the alert from its parent, continue or not), grouped by
// alertname; a critical alert mutes the warnings of its host.
func testConfig() *Config {
	return &Config{
		Route: RouteConfig{Receiver: "ops", GroupBy: []string{"alertname"}, GroupWait: dur(30 * time.Second),
			GroupInterval: dur(5 * time.Minute), RepeatInterval: dur(4 * time.Hour),
			Routes: []RouteConfig{{Receiver: "pager", Matchers: []string{`severity="critical"`}, Continue: true}}},
		Receivers:    []ReceiverConfig{{Name: "ops"}, {Name: "pager"}},
		InhibitRules: []InhibitConfig{{SourceMatchers: []string{`severity="critical"`}, TargetMatchers: []string{`severity="warning"`}, Equal: []string{"source_id"}}},
		ExternalURL:  "http://127.0.0.1:8088",
	}
}

func newProcessor(t testing.TB, c *Config, clock engine.Clock) *Processor {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := build(c, engine.BuildEnv{Path: "streams[0].processors[0].notify", Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Processor)
}

// alertRecord is an alert record as the threshold processor emits it (decoded from JSON).
func alertRecord(rule, host, severity, state string, firedAt time.Time, at time.Time, partition int32) *engine.Record {
	v := map[string]any{
		"event_id": rule + host + state, "fingerprint": rule + "/" + host, "rule": rule, "state": state,
		"severity": severity, "ts": at.Format(time.RFC3339), "fired_at": firedAt.Format(time.RFC3339),
		"series":  map[string]any{"source.source_id": host, "tenant_id": "acme"},
		"message": rule + " on " + host,
	}
	if state == "resolved" {
		v["resolved_at"] = at.Format(time.RFC3339)
	}
	return &engine.Record{Value: v, Source: engine.Source{Topic: "ops.alert.v1", Partition: partition}}
}

// The notification records are Alertmanager's webhook payload (version 4): the fields and
// JSON types of Alertmanager's notify/webhook.Message, so a webhook output in format json
// makes every Alertmanager receiver work unchanged.
func TestNotificationsAreAlertmanagersPayload(t *testing.T) {
	clock := &stepClock{now: t0}
	p := newProcessor(t, testConfig(), clock)
	var rejects engine.Rejects
	out, err := p.Process(context.Background(), []*engine.Record{
		alertRecord("cpu", "a", "critical", "firing", t0, t0, 0),
		alertRecord("mem", "a", "warning", "firing", t0, t0, 0), // muted by a's critical
		alertRecord("mem", "b", "warning", "firing", t0, t0, 0),
		alertRecord("disk", "b", "warning", "pending", t0, t0, 0), // not notified
		{Value: map[string]any{"metric": "cpu_load"}, Source: engine.Source{Partition: 0}},
	}, &rejects)
	if err != nil || len(out) != 0 {
		t.Fatalf("Process: %d records, %v; want none before group_wait", len(out), err)
	}
	if rejects.Len() != 1 {
		t.Errorf("rejects %v: want the record that is no alert", rejects.Items)
	}
	clock.now = t0.Add(30 * time.Second)
	out, _ = p.Tick(context.Background(), clock.now, &rejects)
	if len(out) != 2 {
		t.Fatalf("after group_wait: %d notifications, want pager/cpu and ops/mem", len(out))
	}
	raw, err := json.Marshal(out[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	var msg struct {
		Version, Receiver, Status, GroupKey, ExternalURL string
		GroupLabels, CommonLabels, CommonAnnotations     map[string]string
		TruncatedAlerts                                  uint64
		Alerts                                           []struct {
			Status, GeneratorURL, Fingerprint string
			Labels, Annotations               map[string]string
			StartsAt, EndsAt                  time.Time
		}
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		t.Fatalf("a notification record does not decode as Alertmanager's payload: %v\n%s", err, raw)
	}
	if msg.Version != "4" || msg.Receiver != "pager" || msg.Status != "firing" || msg.ExternalURL != "http://127.0.0.1:8088" ||
		msg.GroupLabels["alertname"] != "cpu" || len(msg.Alerts) != 1 || msg.Alerts[0].Labels["source_id"] != "a" ||
		!msg.Alerts[0].StartsAt.Equal(t0) || !msg.Alerts[0].EndsAt.IsZero() || msg.Alerts[0].Annotations["summary"] != "cpu on a" ||
		len(msg.Alerts[0].Fingerprint) != 16 {
		t.Errorf("notification %s", raw)
	}
	var receivers []string
	for _, r := range out {
		alerts := r.Value["alerts"].([]any)
		receivers = append(receivers, r.Value["receiver"].(string)+":"+r.Value["groupLabels"].(map[string]any)["alertname"].(string)+":"+
			alerts[0].(map[string]any)["labels"].(map[string]any)["source_id"].(string))
	}
	if want := "pager:cpu:a ops:mem:b"; join(receivers) != want {
		t.Errorf("notifications %s, want %s (a's warning muted by its critical)", join(receivers), want)
	}
}

func join(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out
}

// TestCheckpointConformance runs the shared checkpoint suite: restored at every step, the
// processor notifies exactly what one uninterrupted instance does; Changes, Drop,
// tombstones and garbled entries behave.
func TestCheckpointConformance(t *testing.T) {
	setup := func(t testing.TB, clock engine.Clock) enginetest.StatefulProcessor {
		return newProcessor(t, testConfig(), clock)
	}
	script := enginetest.Script{Start: t0, MaxEntries: 12}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	add := func(d time.Duration, recs ...*engine.Record) {
		script.Steps = append(script.Steps, enginetest.Step{At: at(d), Batch: recs}, enginetest.Step{At: at(d + time.Second), Tick: true})
	}
	tick := func(d time.Duration) { script.Steps = append(script.Steps, enginetest.Step{At: at(d), Tick: true}) }
	add(0, alertRecord("cpu", "a", "critical", "firing", t0, t0, 0), alertRecord("cpu", "b", "warning", "firing", t0, t0, 1))
	add(10*time.Second, alertRecord("mem", "a", "warning", "firing", t0, at(10*time.Second), 0))
	tick(31 * time.Second)
	add(time.Minute, alertRecord("cpu", "a", "critical", "resolved", t0, at(time.Minute), 0))
	tick(5*time.Minute + 31*time.Second)
	add(6*time.Minute, alertRecord("cpu", "b", "warning", "resolved", t0, at(6*time.Minute), 1))
	tick(10*time.Minute + 31*time.Second)
	tick(4*time.Hour + 11*time.Minute)
	enginetest.TestStateful(t, setup, script)
}

// A silence made at run time mutes until it is expired, is listed as long as Alertmanager
// keeps expired silences (120h), and is then dropped from the state.
func TestRunTimeSilenceLifecycle(t *testing.T) {
	clock := &stepClock{now: t0}
	p := newProcessor(t, testConfig(), clock)
	id, err := p.PutSilence(engine.Silence{Matchers: []engine.SilenceMatcher{{Name: "alertname", Value: "cpu", IsEqual: true}},
		StartsAt: t0, EndsAt: t0.Add(time.Hour), CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var rejects engine.Rejects
	p.Process(context.Background(), []*engine.Record{alertRecord("cpu", "a", "critical", "firing", t0, t0, 0)}, &rejects)
	clock.now = t0.Add(30 * time.Second)
	if out, _ := p.Tick(context.Background(), clock.now, &rejects); len(out) != 0 {
		t.Fatalf("a silenced alert was notified: %v", out)
	}
	if as := p.DispatchedAlerts(); len(as) != 1 || len(as[0].SilencedBy) != 1 || as[0].SilencedBy[0] != id {
		t.Errorf("alerts view: %+v, want the alert silenced by %s", as, id)
	}
	if err := p.ExpireSilence(id); err != nil {
		t.Fatal(err)
	}
	clock.now = t0.Add(5*time.Minute + 30*time.Second)
	if out, _ := p.Tick(context.Background(), clock.now, &rejects); len(out) != 1 {
		t.Errorf("after the silence expired: %d notifications, want 1", len(out))
	}
	if len(p.Silences()) != 1 {
		t.Errorf("an expired silence is no longer listed")
	}
	clock.now = t0.Add(121 * time.Hour)
	p.Tick(context.Background(), clock.now, &rejects)
	if len(p.Silences()) != 0 {
		t.Errorf("a silence expired for 121h is still kept: %v", p.Silences())
	}
	if err := p.ExpireSilence("no-such-id"); !errors.Is(err, engine.ErrUnknownSilence) {
		t.Errorf("expiring an unknown silence: %v", err)
	}
}
