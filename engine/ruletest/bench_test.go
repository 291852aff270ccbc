package ruletest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// day is a day of readings: calm for 10 hours, above 90 for 3, calm again.
type day struct {
	every  string // between readings
	perDay int
}

func (d day) values() string {
	calm1, hot := d.perDay*10/24, d.perDay*3/24
	return fmt.Sprintf("50x%d 95x%d 50x%d", calm1-1, hot-1, d.perDay-calm1-hot-1)
}

// daySuite writes a test file of n cases against examples/eventops-flow.yaml, each a day of
// virtual time, with expectations before, during and after the alert. rulesOnly feeds the
// rules stream alone (minute rollups straight to signals.rollup.v1), as promtool tests a rule
// file; otherwise the readings go through all four streams.
func daySuite(tb testing.TB, n int, d day, rulesOnly bool) string {
	tb.Helper()
	abs, err := filepath.Abs("../../examples/eventops-flow.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pipeline: %s\nstart: 2025-10-16T00:00:00Z\n", abs)
	if rulesOnly {
		b.WriteString("streams: [rules]\n")
	}
	b.WriteString("tests:\n")
	for i := range n {
		series := fmt.Sprintf("{topic: ingest.raw.agent, interval: %s, record: {tenant_id: acme, host: host-%d, metric: cpu_load}, values: %s}", d.every, i, d.values())
		if rulesOnly {
			series = fmt.Sprintf("{topic: signals.rollup.v1, interval: %s, field: avg, record: {tenant_id: acme, source: {source_id: host-%d}, metric: cpu_load}, values: %s}", d.every, i, d.values())
		}
		fmt.Fprintf(&b, `  - name: day %d
    series:
      - %s
    expect:
      - {at: 9h, alerts: []}
      - {at: 12h, alerts: [{rule: cpu_load, state: firing, severity: critical}]}
      - {at: 23h59m, alerts: []}
`, i, series)
	}
	file := filepath.Join(tb.TempDir(), "day_test.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return file
}

// promtoolSuite writes the same n cases for promtool test rules: the rule "average CPU over
// the step ≥ 90 for 2m, kept firing 1m", evaluated every minute, and the same expectations.
func promtoolSuite(tb testing.TB, n int, d day) string {
	tb.Helper()
	dir := tb.TempDir()
	rules := fmt.Sprintf(`groups:
  - name: cpu
    rules:
      - alert: cpu_load
        expr: avg_over_time(cpu_load[%s]) >= 90
        for: 2m
        keep_firing_for: 1m
        labels: {severity: critical}
`, d.every)
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rules), 0o644); err != nil {
		tb.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("rule_files: [rules.yaml]\nevaluation_interval: 1m\ntests:\n")
	for i := range n {
		fmt.Fprintf(&b, `  - interval: %s
    input_series:
      - {series: 'cpu_load{host="host-%d"}', values: '%s'}
    alert_rule_test:
      - {eval_time: 9h, alertname: cpu_load, exp_alerts: []}
      - {eval_time: 12h, alertname: cpu_load, exp_alerts: [{exp_labels: {severity: critical, host: host-%d}}]}
      - {eval_time: 23h59m, alertname: cpu_load, exp_alerts: []}
`, d.every, i, d.values(), i)
	}
	file := filepath.Join(dir, "day_test.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return file
}

// BenchmarkDaySuite runs 200 cases of a day of virtual time each, loading the file included:
//
//   - flow: the readings go through eventops-flow's four streams (normalize with its schemas
//     and CMDB, the minute rollup, the ladder with for and keep_firing_for, the heartbeat);
//   - rules: the rules stream alone, fed its rollups, as promtool tests a rule file;
//   - promtool: promtool test rules (the peer, when installed: apt-get install prometheus)
//     on the same series, rule and expectations, evaluating every minute; its process start
//     is included.
//
// Every case must pass. GOGC is 400, as the eventops-engine binary runs.
//
//	go test ./engine/ruletest -run '^$' -bench DaySuite -benchtime 3x
func BenchmarkDaySuite(b *testing.B) {
	const cases = 200
	days := []struct {
		name string
		day
	}{{"every 5m", day{"5m", 288}}, {"every 1m", day{"1m", 1440}}}
	for _, d := range days {
		for _, mode := range []string{"flow", "rules"} {
			b.Run(mode+" "+d.name, func(b *testing.B) {
				defer debug.SetGCPercent(debug.SetGCPercent(400))
				file := daySuite(b, cases, d.day, mode == "rules")
				for b.Loop() {
					s, err := Load(file, components)
					if err != nil {
						b.Fatal(err)
					}
					for _, r := range s.Run(context.Background()) {
						if !r.Passed() {
							b.Fatalf("%s: %v %v", r.Name, r.Err, r.Failures)
						}
					}
				}
				b.ReportMetric(float64(cases*d.perDay)*float64(b.N)/b.Elapsed().Seconds(), "readings/s")
			})
		}
		b.Run("promtool "+d.name, func(b *testing.B) {
			promtool, err := exec.LookPath("promtool")
			if err != nil {
				b.Skip("promtool is not installed (apt-get install prometheus)")
			}
			file := promtoolSuite(b, cases, d.day)
			for b.Loop() {
				if out, err := exec.Command(promtool, "test", "rules", file).CombinedOutput(); err != nil {
					b.Fatalf("promtool: %v\n%s", err, out)
				}
			}
			b.ReportMetric(float64(cases*d.perDay)*float64(b.N)/b.Elapsed().Seconds(), "readings/s")
		})
	}
}
