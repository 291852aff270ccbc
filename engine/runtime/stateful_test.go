package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/postgres/pgtest"
)

// cpuReadings is 40 minutes of CPU readings, one every 10 s, for 8 hosts: each host climbs
// into warning and critical and back at its own phase, and every fifth pair of readings
// arrives swapped (out of order, within the window's lateness).
func cpuReadings() [][]byte {
	const hosts, steps = 8, 240
	start := time.Date(2025, 10, 16, 9, 0, 0, 0, time.UTC)
	var out [][]byte
	for i := 0; i < steps; i++ {
		for h := 0; h < hosts; h++ {
			j := i
			if i%10 == 8 {
				j = i + 1
			} else if i%10 == 9 {
				j = i - 1
			}
			v := 70 + 25*math.Sin(float64(j)/18+float64(h))
			ts := start.Add(time.Duration(j) * 10 * time.Second)
			out = append(out, fmt.Appendf(nil, `{"tenant_id":"acme","source":{"source_id":"host-%d"},"metric":"cpu_load","value":%.2f,"ts_event":%q}`,
				h, v, ts.Format(time.RFC3339)))
		}
	}
	return out
}

// statefulRun is one cluster and one database running testdata/stateful.yaml.
type statefulRun struct {
	t      *testing.T
	broker string
	dsn    string
	cl     *kgo.Client
}

func newStatefulRun(t *testing.T) *statefulRun {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	r := &statefulRun{t: t, broker: cluster.ListenAddrs()[0], dsn: pgtest.DSN(t)}
	r.cl, err = kgo.NewClient(kgo.SeedBrokers(r.broker), kgo.DefaultProduceTopic("signals"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.cl.Close)
	return r
}

// instance starts one engine on the run's cluster and database.
func (r *statefulRun) instance(id string) (stop func()) {
	t := r.t
	data, err := os.ReadFile("testdata/stateful.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"BROKER": r.broker, "PG_DSN": r.dsn}
	cfg, err := config.LoadBytes("testdata/stateful.yaml", data, components.Registry(), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return runInstance(t, cfg, components, id)
}

// produce sends readings keyed by host, so each host's readings stay in one partition.
func (r *statefulRun) produce(readings [][]byte) {
	r.t.Helper()
	recs := make([]*kgo.Record, len(readings))
	for i, v := range readings {
		var ev struct {
			Source struct {
				ID string `json:"source_id"`
			} `json:"source"`
		}
		_ = json.Unmarshal(v, &ev)
		recs[i] = &kgo.Record{Key: []byte(ev.Source.ID), Value: v}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		r.t.Fatal(err)
	}
}

// lag is how many records the pipeline's consumer groups have yet to commit, and which.
// rollups and alerts are written in transactions, and a partition's last transaction marker
// is never committed past (a consumer commits after the last record it read), so one
// offset behind there counts as caught up.
func (r *statefulRun) lag() (int64, string) {
	adm := kadm.NewClient(r.cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var total int64
	var which string
	for group, topic := range map[string]string{"eventops.rollup": "signals", "eventops.rules": "rollups", "eventops.sink.alerts.alerts": "alerts"} {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return -1, err.Error()
		}
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return -1, err.Error()
		}
		ends.Each(func(o kadm.ListedOffset) {
			behind := o.Offset
			if c, ok := committed.Lookup(topic, o.Partition); ok {
				behind -= c.At
			}
			if topic != "signals" && behind == 1 {
				behind = 0 // the last transaction marker
			}
			if behind != 0 {
				which += fmt.Sprintf(" %s@%s[%d]:%d", group, topic, o.Partition, behind)
			}
			total += behind
		})
	}
	return total, which
}

// waitCaughtUp waits until every group has committed everything, twice in a row.
func (r *statefulRun) waitCaughtUp() {
	r.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	zeros := 0
	for zeros < 2 {
		lag, which := r.lag()
		if time.Now().After(deadline) {
			r.t.Fatalf("pipeline did not catch up within 90s (behind:%s)", which)
		}
		if lag == 0 {
			zeros++
		} else {
			zeros = 0
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitRollups waits until at least n distinct windows were emitted.
func (r *statefulRun) waitRollups(n int) {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for len(r.rollups()) < n {
		if time.Now().After(deadline) {
			r.t.Fatalf("fewer than %d windows emitted within 60s", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rollups reads every committed window record, by event id. The window stream writes them
// in its checkpoint transactions, so each must be there once.
func (r *statefulRun) rollups() map[string]string {
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.broker), kgo.ConsumeTopics("rollups"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		r.t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, "rollups")
	if err != nil {
		r.t.Fatal(err)
	}
	pending := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			pending[o.Partition] = o.Offset
		}
	})
	out := map[string]string{}
	for len(pending) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			r.t.Fatalf("reading rollups: partitions %v not read to their end", pending)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if end, ok := pending[rec.Partition]; ok && rec.Offset+1 >= end {
				delete(pending, rec.Partition)
			}
			if rec.Attrs.IsControl() {
				return
			}
			var v map[string]any
			if err := json.Unmarshal(rec.Value, &v); err != nil {
				r.t.Fatalf("rollup is not JSON: %s", rec.Value)
			}
			id, _ := v["event_id"].(string)
			if prev, dup := out[id]; dup {
				r.t.Errorf("window %s emitted twice:\n%s\n%s", id, prev, rec.Value)
			}
			out[id] = string(rec.Value)
		})
	}
	return out
}

// alerts is the alerts table, one line per row, in a stable order.
func (r *statefulRun) alerts() []string {
	conn, err := pgx.Connect(context.Background(), r.dsn)
	if err != nil {
		r.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT event_id, fingerprint, state, severity, ts, started_at, resolved_at, value, message FROM alerts ORDER BY ts, fingerprint, state, severity`)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			r.t.Fatal(err)
		}
		cols := make([]string, len(vals))
		for i, v := range vals {
			cols[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(cols, " | "))
	}
	return out
}

// TestTwoInstancesEqualOne runs the same readings through one uninterrupted engine, and
// through two engines in one consumer group of which one stops mid-stream: the windows
// emitted and the alerts table must be the same.
func TestTwoInstancesEqualOne(t *testing.T) {
	readings := cpuReadings()
	third := len(readings) / 3

	solo := newStatefulRun(t)
	stopSolo := solo.instance("solo")
	solo.produce(readings)
	solo.waitCaughtUp()
	wantRollups, wantAlerts := solo.rollups(), solo.alerts()
	stopSolo()
	if len(wantRollups) < 8*35 || len(wantAlerts) < 8 {
		t.Fatalf("the scenario is too thin to compare: %d windows, %d alert rows", len(wantRollups), len(wantAlerts))
	}
	states := map[string]bool{}
	for _, a := range wantAlerts {
		for _, s := range []string{"pending", "firing", "resolved"} {
			if strings.Contains(a, " | "+s+" | ") {
				states[s] = true
			}
		}
	}
	if len(states) < 3 {
		t.Fatalf("the scenario should take alerts through pending, firing and resolved; saw %v", states)
	}

	duo := newStatefulRun(t)
	stopA := duo.instance("a")
	duo.produce(readings[:third])
	duo.waitRollups(40)
	duo.instance("b") // joins: partitions (and their state) move to b
	duo.produce(readings[third : 2*third])
	duo.waitRollups(len(wantRollups) / 2)
	stopA() // b takes over a's partitions with their windows and alert states
	duo.produce(readings[2*third:])
	duo.waitCaughtUp()
	gotRollups, gotAlerts := duo.rollups(), duo.alerts()

	for id, w := range wantRollups {
		if g, ok := gotRollups[id]; !ok {
			t.Errorf("window missing with two instances: %s", w)
		} else if g != w {
			t.Errorf("window differs with two instances:\n got %s\nwant %s", g, w)
		}
	}
	for id, g := range gotRollups {
		if _, ok := wantRollups[id]; !ok {
			t.Errorf("window only with two instances: %s", g)
		}
	}
	if !slices.Equal(gotAlerts, wantAlerts) {
		t.Errorf("alerts table differs with two instances:\n got %d rows:\n  %s\nwant %d rows:\n  %s",
			len(gotAlerts), strings.Join(gotAlerts, "\n  "), len(wantAlerts), strings.Join(wantAlerts, "\n  "))
	}
}
