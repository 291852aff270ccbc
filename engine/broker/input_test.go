package broker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

func TestInputBoundsBatchesAndReportsLag(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	ensure(t, b, map[string]config.Topic{"in": {}})
	recs := make([]*kgo.Record, 20)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "in", Value: []byte{byte(i)}}
	}
	produceSync(t, b, recs...)

	m := telemetry.New()
	in, err := NewInput(b, InputConfig{Stream: "normalize", Topic: "in", Group: "g", BatchSize: 5, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ctx := testCtx(t)
	batch, err := in.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) == 0 || len(batch) > 5 {
		t.Fatalf("Read returned %d records, want 1..5 (batch size 5)", len(batch))
	}
	lag := gauge(t, m, "eventops_consumer_lag_records", map[string]string{"stream": "normalize", "topic": "in", "partition": "0"})
	if want := float64(20 - len(batch)); lag != want {
		t.Errorf("consumer lag = %v, want %v", lag, want)
	}
	if err := in.Ack(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := in.Ack(ctx, batch); err == nil {
		t.Error("a second Ack of the same batch was accepted")
	}
}

func TestInputRejectsBadStart(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	if _, err := NewInput(b, InputConfig{Topic: "in", Group: "g", Start: "middle"}); err == nil {
		t.Fatal("start: middle was accepted")
	}
	in, err := NewInput(b, InputConfig{Topic: "in", Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	in.Close()
	if _, err := in.Read(context.Background()); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("Read after Close = %v, want a closed error", err)
	}
}

// gauge reads one gauge from the registry, as the /-/metrics endpoint would show it.
func gauge(t *testing.T, m *telemetry.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			return mt.GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s%v in the registry", name, labels)
	return 0
}

// produceInTransaction writes values to topic in one committed transaction, as an upstream
// stream does: the topic then ends with a transaction marker.
func produceInTransaction(t *testing.T, b *Broker, topic string, values ...string) {
	t.Helper()
	cl := newClient(t, b, kgo.TransactionalID("upstream"), kgo.DefaultProduceTopic(topic))
	ctx := testCtx(t)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
}

// An input that has been given partitions is not joined until their state is restored: the
// API would otherwise list a restarted notify stream's silences as gone, and /-/ready say
// ready, while the restore still runs.
func TestInputHasNotJoinedUntilItsStateIsRestored(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	ensure(t, b, map[string]config.Topic{"in": {}, "g.changelog": {Cleanup: "compact"}})
	restoring, release := make(chan struct{}), make(chan struct{})
	in, err := NewInput(b, InputConfig{
		Stream: "s", Topic: "in", Group: "g", Metrics: telemetry.New(), TransactionalID: "g.test", Changelog: "g.changelog",
		Restore: func(ctx context.Context, parts []int32) (map[int32]int64, error) {
			close(restoring)
			<-release
			return nil, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	produceInTransaction(t, b, "in", "a")
	read := make(chan error, 1)
	go func() {
		_, err := in.Read(testCtx(t))
		read <- err
	}()
	select {
	case <-restoring:
	case <-time.After(30 * time.Second):
		t.Fatal("Restore was not called within 30s of the first Read")
	}
	if in.Joined() {
		t.Error("Joined() is true while the state of its partitions is being restored")
	}
	close(release)
	if err := <-read; err != nil {
		t.Fatalf("Read after the restore: %v", err)
	}
	if !in.Joined() {
		t.Error("Joined() is false after the restore, with a record read")
	}
}

// A transactional stream's checkpoint carries its input offsets: after a restart, the input
// resumes from them and Restore is handed them, and the lag of a transactional topic read
// to its end is 0 (the marker after the last record is read too).
func TestTransactionalInputCheckpointsItsOffsets(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	ensure(t, b, map[string]config.Topic{"in": {}, "out": {}, "g.changelog": {Cleanup: "compact"}})
	produceInTransaction(t, b, "in", "a", "b", "c")
	ctx := testCtx(t)
	m := telemetry.New()
	restored := make(chan map[int32]int64, 2)
	open := func() *Input {
		in, err := NewInput(b, InputConfig{
			Stream: "s", Topic: "in", Group: "g", Metrics: m, TransactionalID: "g.test", InstanceID: "test", Changelog: "g.changelog",
			Restore: func(ctx context.Context, parts []int32) (map[int32]int64, error) {
				state, err := ReadChangelog(ctx, b, "g.changelog", parts)
				if err != nil {
					return nil, err
				}
				at, err := CheckpointOffsets(state)
				restored <- at
				return at, err
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	in := open()
	batch, err := in.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if at := <-restored; len(at) != 0 {
		t.Errorf("first start restored offsets %v from an empty changelog", at)
	}
	if err := in.AddToTransaction(ctx, batch, "g.changelog", nil, []*kgo.Record{{Topic: "out", Value: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	if err := in.CommitTransaction(ctx, "g.changelog", nil); err != nil {
		t.Fatal(err)
	}
	if lag := in.Lag(); lag != 0 {
		t.Errorf("lag after reading a transactional topic to its end = %d, want 0", lag)
	}
	in.Close()
	// A broker that lost the group's commit but kept the checkpoint (the embedded broker
	// writes the two to different files): the checkpoint wins, nothing is read twice.
	commitTo(t, b, "g", "in", 0)

	produceInTransaction(t, b, "in", "d")
	in = open()
	defer in.Close()
	batch, err = in.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// a, b, c at 0-2, their marker at 3, d at 4.
	if at := <-restored; at[0] != 4 {
		t.Errorf("restart restored offsets %v, want partition 0 at 4 (after the first transaction's marker)", at)
	}
	if len(batch) != 1 || string(batch[0].Raw) != "d" {
		t.Errorf("after the restart Read returned %d records, want only d", len(batch))
	}
}

// A static member does not leave its group when its client closes (so that a restart finds
// its partitions waiting); a clean stop must leave explicitly, or the other members would
// wait out its session before taking its partitions over.
func TestCleanStopLeavesTheGroup(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	ensure(t, b, map[string]config.Topic{"in": {}})
	produceSync(t, b, &kgo.Record{Topic: "in", Value: []byte("a")})
	in, err := NewInput(b, InputConfig{Stream: "s", Topic: "in", Group: "g", InstanceID: "engine-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	batch, err := in.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Ack(ctx, batch); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(newClient(t, b))
	members := func() int {
		described, err := adm.DescribeGroups(ctx, "g")
		if err != nil {
			t.Fatal(err)
		}
		return len(described["g"].Members)
	}
	if n := members(); n != 1 {
		t.Fatalf("while running the group has %d members, want 1", n)
	}
	in.Close()
	if n := members(); n != 0 {
		t.Errorf("after a clean stop the group still has %d members: the others would wait for its session to time out", n)
	}
}

// expiredAfterPoll is a context that is live when a read starts and while its poll waits,
// and expired once asked again: a read's deadline (the stream's next tick) passing just as
// the poll returns records.
type expiredAfterPoll struct {
	context.Context
	asked int
}

func (*expiredAfterPoll) Done() <-chan struct{} { return nil }
func (c *expiredAfterPoll) Err() error {
	if c.asked++; c.asked == 1 {
		return nil
	}
	return context.DeadlineExceeded
}

// A read whose context ends just as its poll returns records still returns them: the
// consumer's position has moved past them, so a read that dropped them lost them for good
// (seen in a clean fault-suite run: the rollup never counted one whole upstream transaction,
// ~9,000 readings, with nothing logged, when its one-second tick deadline fell on a poll).
func TestAReadWhoseDeadlinePassesAsRecordsArriveKeepsThem(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	ensure(t, b, map[string]config.Topic{"in": {}})
	recs := make([]*kgo.Record, 6)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "in", Value: []byte{byte(i)}}
	}
	produceSync(t, b, recs...)
	in, err := NewInput(b, InputConfig{Topic: "in", Group: "g", BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ctx := testCtx(t)
	var got []int64
	read := func(rctx context.Context) {
		t.Helper()
		batch, err := in.Read(rctx)
		if err != nil {
			return
		}
		for _, r := range batch {
			got = append(got, r.Source.Offset)
		}
		if err := in.Ack(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	for len(got) < 2 {
		read(ctx) // the first fetch buffers the rest
	}
	read(&expiredAfterPoll{Context: ctx})
	for range 4 {
		if len(got) < 6 {
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second) // a lost record never comes
			read(rctx)
			cancel()
		}
	}
	for i, off := range got {
		if off != int64(i) {
			t.Fatalf("offsets read %v: a read whose deadline passed as records arrived lost them", got)
		}
	}
}

// Several batches in one checkpoint transaction: nothing of them is visible before the
// commit, all of it after, and the commit stores the offsets after the last one, in the
// group and in the changelog. A transaction left open (the process stops before the
// commit) leaves nothing visible, and the batches are read again.
func TestBatchesAddedToOneTransactionCommitTogether(t *testing.T) {
	b := startEmbedded(t, t.TempDir())
	ensure(t, b, map[string]config.Topic{"in": {}, "out": {}, "g.changelog": {Cleanup: "compact"}})
	for _, v := range []string{"a", "b", "c", "d"} {
		produceInTransaction(t, b, "in", v) // one transaction each: a batch each
	}
	ctx := testCtx(t)
	open := func() *Input {
		in, err := NewInput(b, InputConfig{Stream: "s", Topic: "in", Group: "g", BatchSize: 1, Metrics: telemetry.New(),
			TransactionalID: "g.test", InstanceID: "test", Changelog: "g.changelog"})
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	readAndAdd := func(in *Input, n int) []string {
		var got []string
		for len(got) < n {
			batch, err := in.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var out []*kgo.Record
			for _, r := range batch {
				got = append(got, string(r.Raw))
				out = append(out, &kgo.Record{Topic: "out", Value: append([]byte("out-"), r.Raw...)})
			}
			state := []StateRecord{{Partition: 0, Key: "p\x00k", Value: []byte(strings.Join(got, ""))}}
			if err := in.AddToTransaction(ctx, batch, "g.changelog", state, out); err != nil {
				t.Fatal(err)
			}
		}
		return got
	}

	// The process stops with two batches in the open transaction.
	in := open()
	if got := readAndAdd(in, 2); strings.Join(got, "") != "ab" {
		t.Fatalf("first reads: %v", got)
	}
	in.Close()
	if out := consumeAll(t, b, "out"); len(out) != 0 {
		t.Fatalf("%d records of an uncommitted transaction visible", len(out))
	}

	in = open()
	defer in.Close()
	if got := readAndAdd(in, 4); strings.Join(got, "") != "abcd" {
		t.Fatalf("after the restart, read %v: want a and b again, then c and d", got)
	}
	if err := in.CommitTransaction(ctx, "g.changelog", nil); err != nil {
		t.Fatal(err)
	}
	var outs []string
	for _, r := range consumeAll(t, b, "out") {
		outs = append(outs, string(r.Value))
	}
	if strings.Join(outs, ",") != "out-a,out-b,out-c,out-d" {
		t.Fatalf("committed outputs %v, want each once", outs)
	}
	state, err := ReadChangelog(ctx, b, "g.changelog", []int32{0})
	if err != nil {
		t.Fatal(err)
	}
	at, err := CheckpointOffsets(state)
	if err != nil {
		t.Fatal(err)
	}
	// a, b, c, d at 0, 2, 4, 6, each followed by its marker.
	if at[0] != 7 || string(state[0]["p\x00k"]) != "abcd" {
		t.Fatalf("checkpoint at %v with state %q, want offset 7 and the last batch's state", at, state[0]["p\x00k"])
	}
	committed := kadmCommitted(t, b, "g", "in")
	if committed != 7 {
		t.Fatalf("group committed %d, want 7", committed)
	}
}

// kadmCommitted is the group's committed offset of partition 0 of topic.
func kadmCommitted(t *testing.T, b *Broker, group, topic string) int64 {
	t.Helper()
	offsets, err := kadm.NewClient(newClient(t, b)).FetchOffsets(testCtx(t), group)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offsets.Lookup(topic, 0)
	if !ok {
		return -1
	}
	return o.At
}

// The longest commit_interval lint accepts leaves a transaction held open that long, plus the
// batch and commit after it, inside the transaction timeout, after which the broker aborts.
func TestTheLongestCommitIntervalIsHalfTheTransactionTimeout(t *testing.T) {
	if 2*config.MaxCommitInterval != TransactionTimeout {
		t.Fatalf("config.MaxCommitInterval %s, broker.TransactionTimeout %s: keep the first half the second", config.MaxCommitInterval, TransactionTimeout)
	}
}
