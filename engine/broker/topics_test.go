package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
)

const day = config.Duration(24 * time.Hour)

func TestTopicConfigs(t *testing.T) {
	tests := []struct {
		name  string
		topic config.Topic
		want  map[string]string
	}{
		{"defaults leave retention to the broker", config.Topic{}, map[string]string{"cleanup.policy": "delete"}},
		{"retention in milliseconds", config.Topic{Retention: 3 * day, Cleanup: "delete"},
			map[string]string{"cleanup.policy": "delete", "retention.ms": "259200000"}},
		{"forever", config.Topic{Retention: -1}, map[string]string{"cleanup.policy": "delete", "retention.ms": "-1"}},
		{"retention bytes", config.Topic{RetentionBytes: 1 << 30},
			map[string]string{"cleanup.policy": "delete", "retention.bytes": "1073741824"}},
		{"compact-only never expires by time", config.Topic{Retention: 30 * day, RetentionBytes: 100, Cleanup: "compact"},
			map[string]string{"cleanup.policy": "compact", "retention.ms": "-1"}},
		{"compact+delete keeps its retention", config.Topic{Retention: 30 * day, Cleanup: "compact+delete"},
			map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "2592000000"}},
		{"configs pass through", config.Topic{Configs: map[string]string{"max.message.bytes": "2000000", "retention.ms": "1000"}},
			map[string]string{"cleanup.policy": "delete", "max.message.bytes": "2000000", "retention.ms": "1000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := describe(TopicConfigs(tt.topic))
			if len(got) != len(tt.want) {
				t.Fatalf("TopicConfigs = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
}

func TestEnsureTopicsRefusesNonIntegerRetention(t *testing.T) {
	// The embedded broker reads retention.ms=7d as 0 and deletes everything.
	b := startEmbedded(t, t.TempDir())
	err := b.EnsureTopics(testCtx(t), map[string]config.Topic{"t": {Configs: map[string]string{"retention.ms": "7d"}}})
	if err == nil {
		t.Fatal("EnsureTopics accepted retention.ms=7d")
	}
}

func TestEnsureTopicsCreatesThenReconciles(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	ctx := testCtx(t)
	adm := kadm.NewClient(newClient(t, b))

	ensure(t, b, map[string]config.Topic{
		"grow":   {Partitions: 1, Retention: 3 * day},
		"shrink": {Partitions: 3},
		"same":   {Partitions: 2, Retention: 7 * day, Cleanup: "compact+delete"},
	})
	ensure(t, b, map[string]config.Topic{
		"grow":   {Partitions: 3, Retention: day},
		"shrink": {Partitions: 1},
		"same":   {Partitions: 2, Retention: 7 * day, Cleanup: "compact+delete"},
		"new":    {Partitions: 2, Replication: 3, Cleanup: "compact"},
	})

	details, err := adm.ListTopics(ctx, "grow", "shrink", "same", "new")
	if err != nil {
		t.Fatal(err)
	}
	for topic, want := range map[string]int{"grow": 3, "shrink": 3, "same": 2, "new": 2} {
		if got := len(details[topic].Partitions); got != want {
			t.Errorf("%s has %d partitions, want %d", topic, got, want)
		}
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, "grow", "same", "new")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		"grow": {"retention.ms": "86400000", "cleanup.policy": "delete"},
		"same": {"retention.ms": "604800000", "cleanup.policy": "compact,delete"},
		"new":  {"retention.ms": "-1", "cleanup.policy": "compact"},
	}
	for _, rc := range cfgs {
		for _, c := range rc.Configs {
			if w, ok := want[rc.Name][c.Key]; ok && deref(c.Value) != w {
				t.Errorf("%s: %s = %q, want %s", rc.Name, c.Key, deref(c.Value), w)
			}
		}
	}
}

// The cleaner makes the embedded broker honour retention and compaction on the engine's
// timer; here one pass is triggered directly.
func TestCleanerCompactsAndExpires(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	ensure(t, b, map[string]config.Topic{
		"alerts":  {Cleanup: "compact", Retention: day}, // retention is ignored for compact-only topics
		"metrics": {Retention: day},
	})
	old := time.Now().Add(-48 * time.Hour)
	// One ProduceSync per record puts each in its own batch, the unit kfake compacts and
	// expires; the last batch of a partition is never compacted (it is the active segment).
	for _, r := range []struct{ k, v string }{{"a", "a1"}, {"b", "b1"}, {"a", "a2"}, {"a", "a3"}, {"c", "c1"}} {
		produceSync(t, b, &kgo.Record{Topic: "alerts", Key: []byte(r.k), Value: []byte(r.v), Timestamp: old})
	}
	produceSync(t, b,
		&kgo.Record{Topic: "metrics", Value: []byte("old-1"), Timestamp: old},
		&kgo.Record{Topic: "metrics", Value: []byte("old-2"), Timestamp: old},
		&kgo.Record{Topic: "metrics", Value: []byte("new"), Timestamp: time.Now()},
	)

	b.Clean(testCtx(t))

	var alerts []string
	for _, r := range consumeAll(t, b, "alerts") {
		alerts = append(alerts, string(r.Value))
	}
	if want := []string{"b1", "a3", "c1"}; !equal(alerts, want) {
		t.Errorf("compact topic after a cleaner pass holds %v, want the latest per key %v", alerts, want)
	}
	var metrics []string
	for _, r := range consumeAll(t, b, "metrics") {
		metrics = append(metrics, string(r.Value))
	}
	if want := []string{"new"}; !equal(metrics, want) {
		t.Errorf("delete topic after a cleaner pass holds %v, want %v", metrics, want)
	}
}

// Compaction waits for readers: a sink whose database is down has not read the resolved
// alert that a later firing one of the same key would replace. While a group (of this
// pipeline or any other process) is behind only retention runs; once it has committed to the
// end, compaction runs.
func TestCleanerDefersCompactionUntilReadersCaughtUp(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	ctx := testCtx(t)
	ensure(t, b, map[string]config.Topic{"alerts": {Cleanup: "compact+delete", Retention: day}})
	for _, v := range []string{"firing", "resolved", "firing-again"} {
		produceSync(t, b, &kgo.Record{Topic: "alerts", Key: []byte("fp"), Value: []byte(v)})
	}
	deferred := 0
	b.CompactionsDeferred = func() { deferred++ }

	commitTo(t, b, "sink", "alerts", 1) // the sink read the first alert, then its database went down
	b.Clean(ctx)
	if got := values(consumeAll(t, b, "alerts")); !equal(got, []string{"firing", "resolved", "firing-again"}) {
		t.Fatalf("with the sink behind, a cleaner pass left %v; want every transition kept", got)
	}
	if deferred != 1 {
		t.Errorf("deferred passes counted %d, want 1", deferred)
	}

	commitTo(t, b, "sink", "alerts", 3)
	b.Clean(ctx)
	// The last batch is the active segment, never compacted: the superseded "firing" goes.
	if got := values(consumeAll(t, b, "alerts")); !equal(got, []string{"resolved", "firing-again"}) {
		t.Errorf("with the sink caught up, a cleaner pass left %v; want the superseded record gone", got)
	}
}

func values(recs []*kgo.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Value))
	}
	return out
}

// commitTo commits offset for group on partition 0 of topic.
func commitTo(t *testing.T, b *Broker, group, topic string, offset int64) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, b))
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: topic, Partition: 0, At: offset, LeaderEpoch: -1})
	resp, err := adm.CommitOffsets(testCtx(t), group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("committing %s@%d for %s: %v", topic, offset, group, err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStartCleanerRunsOnItsTimer(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	ensure(t, b, map[string]config.Topic{"metrics": {Retention: day}})
	produceSync(t, b, &kgo.Record{Topic: "metrics", Value: []byte("old"), Timestamp: time.Now().Add(-48 * time.Hour)})
	produceSync(t, b, &kgo.Record{Topic: "metrics", Value: []byte("new")})
	ctx := testCtx(t)
	b.StartCleaner(ctx, 10*time.Millisecond)
	adm := kadm.NewClient(newClient(t, b))
	for {
		starts, err := adm.ListStartOffsets(ctx, "metrics")
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := starts.Lookup("metrics", 0); o.Offset == 1 {
			return // the expired record is gone, the recent one kept
		}
		select {
		case <-ctx.Done():
			t.Fatal("the cleaner never expired the old record")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
