package notify

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// firing is a firing alert of rule on host with severity.
func firing(rule, host, severity string) Alert {
	return Alert{
		Fingerprint: rule + "/" + host + "/" + severity,
		Labels:      map[string]string{"alertname": rule, "host": host, "severity": severity},
		StartsAt:    t0,
	}
}

func resolvedAt(a Alert, end time.Time) Alert {
	a.EndsAt = end
	return a
}

func mustMatchers(t testing.TB, ss ...string) Matchers {
	t.Helper()
	ms, err := ParseMatchers(ss)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// testRoute is a root route to receiver "ops" grouped by alertname, with Alertmanager-like
// timings scaled down: group_wait 30s, group_interval 5m, repeat_interval 4h.
func testRoute(children ...*Route) *Route {
	root := &Route{ID: "0", Receiver: "ops", GroupBy: []string{"alertname"},
		GroupWait: 30 * time.Second, GroupInterval: 5 * time.Minute, RepeatInterval: 4 * time.Hour, Routes: children}
	for i, c := range children {
		c.ID = childID("0", i)
		if c.Receiver == "" {
			c.Receiver = root.Receiver
		}
		if c.GroupBy == nil {
			c.GroupBy = root.GroupBy
		}
		c.GroupWait, c.GroupInterval, c.RepeatInterval = root.GroupWait, root.GroupInterval, root.RepeatInterval
	}
	return root
}

func receivers(names ...string) map[string]Receiver {
	out := map[string]Receiver{}
	for _, n := range names {
		out[n] = Receiver{Name: n, SendResolved: true}
	}
	return out
}

// step is one moment of a scenario: the alert transitions arriving at it, and the
// notifications expected then, each written as "receiver: host=status ..." (alerts sorted).
type step struct {
	at   time.Duration
	in   []Alert
	want []string
}

func describe(ns []Notification) []string {
	var out []string
	for _, n := range ns {
		var parts []string
		for _, a := range n.Alerts {
			status := "firing"
			if a.Resolved() {
				status = "resolved"
			}
			parts = append(parts, fmt.Sprintf("%s/%s=%s", a.Labels["alertname"], a.Labels["host"], status))
		}
		out = append(out, n.Receiver+": "+strings.Join(parts, " "))
	}
	return out
}

// run plays the steps against d, restoring the state from its JSON between steps (as a
// restart would), and checks each step's notifications.
func run(t *testing.T, d *Dispatcher, steps []step) {
	t.Helper()
	st := NewState()
	for _, s := range steps {
		got := describe(d.Step(st, s.in, at(s.at)))
		if !slices.Equal(got, s.want) {
			t.Errorf("at %s: notifications %q, want %q", s.at, got, s.want)
		}
		raw, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		st = NewState()
		if err := json.Unmarshal(raw, st); err != nil {
			t.Fatal(err)
		}
		if err := st.ParseSilences(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGroupingTimingAndResolution(t *testing.T) {
	d := NewDispatcher(testRoute(), receivers("ops"), nil, nil)
	run(t, d, []step{
		// Three hosts cross the threshold within group_wait: one notification, after it.
		{at: 0, in: []Alert{firing("cpu", "a", "critical")}},
		{at: 10 * time.Second, in: []Alert{firing("cpu", "b", "critical")}},
		{at: 29 * time.Second, in: []Alert{firing("cpu", "c", "critical")}},
		{at: 30 * time.Second, want: []string{"ops: cpu/a=firing cpu/b=firing cpu/c=firing"}},
		// Another alertname is another group, with its own group_wait.
		{at: time.Minute, in: []Alert{firing("disk", "a", "warning")}},
		{at: 90 * time.Second, want: []string{"ops: disk/a=firing"}},
		// A new alert in a group that has notified waits for the group_interval.
		{at: 2 * time.Minute, in: []Alert{firing("cpu", "d", "critical")}},
		{at: 5 * time.Minute},
		{at: 5*time.Minute + 30*time.Second, want: []string{"ops: cpu/a=firing cpu/b=firing cpu/c=firing cpu/d=firing"}},
		// Nothing new: the group is quiet until repeat_interval has passed.
		{at: 10*time.Minute + 30*time.Second},
		// One ends: said at the next interval, and then it is gone from the group.
		{at: 11 * time.Minute, in: []Alert{resolvedAt(firing("cpu", "a", "critical"), at(11*time.Minute))}},
		{at: 15*time.Minute + 30*time.Second, want: []string{"ops: cpu/b=firing cpu/c=firing cpu/d=firing cpu/a=resolved"}},
		{at: 20*time.Minute + 30*time.Second},
		// repeat_interval (4h) after the last notification, the group notifies again.
		{at: 4*time.Hour + 15*time.Minute + 30*time.Second, want: []string{"ops: cpu/b=firing cpu/c=firing cpu/d=firing", "ops: disk/a=firing"}},
	})
}

func TestRoutesWithMatchersAndContinue(t *testing.T) {
	root := testRoute(
		&Route{Receiver: "pager", Matchers: mustMatchers(t, `severity="critical"`), Continue: true},
		&Route{Receiver: "chat", Matchers: mustMatchers(t, `severity=~"critical|warning"`)},
		&Route{Receiver: "never", Matchers: mustMatchers(t, `severity!=""`)},
	)
	d := NewDispatcher(root, receivers("ops", "pager", "chat", "never"), nil, nil)
	run(t, d, []step{
		{at: 0, in: []Alert{firing("cpu", "a", "critical"), firing("cpu", "b", "warning"), firing("cpu", "c", "info")}},
		// critical: pager, and (continue) chat; warning: chat, which stops the search
		// before "never"; info: "never" (the first child it matches).
		{at: 30 * time.Second, want: []string{"pager: cpu/a=firing", "chat: cpu/a=firing cpu/b=firing", "never: cpu/c=firing"}},
	})
}

func TestInhibitionCriticalMutesWarningOnTheSameHost(t *testing.T) {
	rule := InhibitRule{Source: mustMatchers(t, `severity="critical"`), Target: mustMatchers(t, `severity="warning"`), Equal: []string{"host"}}
	root := testRoute()
	root.GroupBy = []string{"host"}
	d := NewDispatcher(root, receivers("ops"), []InhibitRule{rule}, nil)
	run(t, d, []step{
		{at: 0, in: []Alert{firing("cpu", "a", "critical"), firing("mem", "a", "warning"), firing("mem", "b", "warning")}},
		{at: 30 * time.Second, want: []string{"ops: cpu/a=firing", "ops: mem/b=firing"}},
		// The critical ends: the warning on a is no longer muted, and is notified.
		{at: time.Minute, in: []Alert{resolvedAt(firing("cpu", "a", "critical"), at(time.Minute))}},
		{at: 5*time.Minute + 30*time.Second, want: []string{"ops: mem/a=firing cpu/a=resolved"}},
	})
}

func TestSilencesMuteUntilTheyEnd(t *testing.T) {
	s := &Silence{ID: "s1", Raw: []string{`alertname="disk"`}, StartsAt: t0, EndsAt: at(10 * time.Minute)}
	if err := s.Parse(); err != nil {
		t.Fatal(err)
	}
	d := NewDispatcher(testRoute(), receivers("ops"), nil, []*Silence{s})
	run(t, d, []step{
		{at: 0, in: []Alert{firing("disk", "a", "warning"), firing("cpu", "a", "warning")}},
		{at: 30 * time.Second, want: []string{"ops: cpu/a=firing"}},
		{at: 5*time.Minute + 30*time.Second},
		// The silence has ended: notified at the next flush.
		{at: 10*time.Minute + 30*time.Second, want: []string{"ops: disk/a=firing"}},
	})
}

// A silence made at run time is state: it survives the JSON round trip run does.
func TestRuntimeSilenceIsState(t *testing.T) {
	d := NewDispatcher(testRoute(), receivers("ops"), nil, nil)
	st := NewState()
	s := &Silence{ID: "s2", Raw: []string{`host=~"a|b"`}, StartsAt: t0, EndsAt: at(time.Hour)}
	if err := s.Parse(); err != nil {
		t.Fatal(err)
	}
	st.Silences[s.ID] = s
	raw, _ := json.Marshal(st)
	st = NewState()
	if err := json.Unmarshal(raw, st); err != nil {
		t.Fatal(err)
	}
	if err := st.ParseSilences(); err != nil {
		t.Fatal(err)
	}
	d.Step(st, []Alert{firing("cpu", "a", "critical"), firing("cpu", "c", "critical")}, t0)
	if got := describe(d.Step(st, nil, at(30*time.Second))); !slices.Equal(got, []string{"ops: cpu/c=firing"}) {
		t.Errorf("with a run-time silence of hosts a and b: %q", got)
	}
}

func TestParseMatcher(t *testing.T) {
	for _, tc := range []struct {
		in      string
		labels  map[string]string
		matches bool
		err     string
	}{
		{in: `severity="critical"`, labels: map[string]string{"severity": "critical"}, matches: true},
		{in: `severity = critical`, labels: map[string]string{"severity": "critical"}, matches: true},
		{in: `severity!="critical"`, labels: map[string]string{}, matches: true},
		{in: `env=~"prod|staging"`, labels: map[string]string{"env": "staging"}, matches: true},
		{in: `env=~"prod"`, labels: map[string]string{"env": "production"}, matches: false}, // anchored
		{in: `env!~"prod.*"`, labels: map[string]string{"env": "dev"}, matches: true},
		{in: `team=""`, labels: map[string]string{}, matches: true}, // a missing label is ""
		{in: `msg="say \"hi\""`, labels: map[string]string{"msg": `say "hi"`}, matches: true},
		{in: `1abc="x"`, err: "is not a matcher"},
		{in: `env=~"("`, err: "missing closing )"},
		{in: `env="unterminated`, err: "not a well-quoted string"},
	} {
		m, err := ParseMatcher(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseMatcher(%s): error %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseMatcher(%s): %v", tc.in, err)
			continue
		}
		if got := m.Matches(tc.labels); got != tc.matches {
			t.Errorf("%s on %v: %v, want %v", tc.in, tc.labels, got, tc.matches)
		}
	}
}

// An alert that matches both sides of an inhibition rule does not mute itself.
func TestAnAlertNeverInhibitsItself(t *testing.T) {
	rule := InhibitRule{Source: mustMatchers(t, `alertname="node_down"`), Target: mustMatchers(t, `alertname="node_down"`), Equal: []string{"dc"}}
	d := NewDispatcher(testRoute(), receivers("ops"), []InhibitRule{rule}, nil)
	run(t, d, []step{
		{at: 0, in: []Alert{firing("node_down", "a", "critical")}},
		{at: 30 * time.Second, want: []string{"ops: node_down/a=firing"}},
	})
}

// Inhibition costs one pass over the alerts per rule: a storm of 10,000 warnings on 10,000
// hosts, each with a critical alert on the same host (docs/benchmarks.md has the figures).
func BenchmarkInhibitionStorm(b *testing.B) {
	rule := InhibitRule{Source: mustMatchers(b, `severity="critical"`), Target: mustMatchers(b, `severity="warning"`), Equal: []string{"host"}}
	d := NewDispatcher(testRoute(), receivers("ops"), []InhibitRule{rule}, nil)
	var in []Alert
	for i := range 10000 {
		h := fmt.Sprintf("h%05d", i)
		in = append(in, firing("cpu", h, "critical"), firing("mem", h, "warning"))
	}
	st := NewState()
	d.Step(st, in, t0)
	b.ResetTimer()
	for i := range b.N {
		d.Step(st, nil, at(time.Duration(i+1)*time.Minute))
	}
}

// One group of 10,000 alerts (grouped by alertname only): taking them in and flushing the
// group stay linear in the group's size.
func BenchmarkOneLargeGroup(b *testing.B) {
	d := NewDispatcher(testRoute(), receivers("ops"), nil, nil)
	var in []Alert
	for i := range 10000 {
		in = append(in, firing("cpu", fmt.Sprintf("h%05d", i), "critical"))
	}
	b.ResetTimer()
	for range b.N {
		st := NewState()
		d.Step(st, in, t0)
		d.Step(st, nil, at(30*time.Second))
	}
}
