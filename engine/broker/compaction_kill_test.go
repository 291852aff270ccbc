package broker

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
)

// childDataDirEnv, set, makes the test binary an embedded broker on that data directory
// (brokerChild) instead of running tests: a broker that a test can kill -9.
const childDataDirEnv = "EVENTOPS_TEST_BROKER_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDataDirEnv); dir != "" {
		os.Exit(brokerChild(dir))
	}
	os.Exit(m.Run())
}

// brokerChild runs an embedded broker whose cleaner compacts every 20ms, says "listening
// ADDR" on stdout, and stops at SIGTERM.
func brokerChild(dir string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	b, err := Start(ctx, config.Broker{Embedded: &config.Embedded{Listen: "127.0.0.1:0", DataDir: dir}}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("listening", b.Addrs()[0])
	b.StartCleaner(ctx, 20*time.Millisecond)
	<-ctx.Done()
	b.Close()
	return 0
}

// brokerProcess is a brokerChild the test can kill.
type brokerProcess struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
}

func startBrokerProcess(t *testing.T, dir string) *brokerProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDataDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &brokerProcess{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.exited })
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if addr, ok := strings.CutPrefix(lines.Text(), "listening "); ok {
			p.addr = addr
			break
		}
	}
	if p.addr == "" {
		t.Fatal("the broker process ended before it listened")
	}
	go func() {
		for lines.Scan() {
		}
	}()
	return p
}

func (p *brokerProcess) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Real kill -9s of the broker process inside compactions (right after kfake deleted a
// segment file to write the compacted one), while a transactional producer keeps rewriting
// the keys of a compacted topic: after each restart every key still holds its latest
// committed value and no partition's end went back.
func TestKillsInsideCompactionsLoseNothing(t *testing.T) {
	dir := t.TempDir()
	latest := map[string]int{} // key → latest committed value
	ends := map[int32]int64{}
	seq := 0
	for kill := range 3 {
		p := startBrokerProcess(t, dir)
		if kill == 0 {
			createCompacted(t, p.addr, "state", 2)
		}
		checkLatest(t, p.addr, kill, latest, ends)
		writeUntilKilled(t, p, dir, &seq, latest)
	}
	p := startBrokerProcess(t, dir)
	checkLatest(t, p.addr, 3, latest, ends)
}

// writeUntilKilled commits new versions of keys until the broker process is gone, and after
// the third commit kills it at the next deletion of a segment file: inside a compaction.
func writeUntilKilled(t *testing.T, p *brokerProcess, dir string, seq *int, latest map[string]int) {
	t.Helper()
	newWriter := func() *kgo.Client {
		txn, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.TransactionalID("writer"), kgo.DefaultProduceTopic("state"))
		if err != nil {
			t.Fatal(err)
		}
		return txn
	}
	txn := newWriter()
	defer func() { txn.Close() }()
	giveUp := time.Now().Add(time.Minute)
	for commits := 0; p.running(); commits++ {
		if commits == 3 {
			deleted := watchSegmentDeletes(t, filepath.Join(dir, partitionsDir, "state-0"), filepath.Join(dir, partitionsDir, "state-1"))
			go func() {
				if _, ok := <-deleted; ok {
					_ = p.cmd.Process.Kill()
				}
			}()
		}
		if !writeVersions(txn, seq, latest) && p.running() {
			txn.Close() // a transaction the cleaner's hold timed out: start afresh
			txn = newWriter()
		}
		if time.Now().After(giveUp) {
			t.Fatal("no compaction ran in a minute of writes: the broker was never killed inside one")
		}
	}
}

func createCompacted(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	policy := "compact"
	if _, err := kadm.NewClient(cl).CreateTopic(testCtx(t), partitions, 1, map[string]*string{"cleanup.policy": &policy}, topic); err != nil {
		t.Fatal(err)
	}
}

// writeVersions commits a new version of 300 random keys in one transaction, and reports
// whether the commit was acknowledged (latest then holds them).
func writeVersions(txn *kgo.Client, seq *int, latest map[string]int) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if txn.BeginTransaction() != nil {
		return false
	}
	written := map[string]int{}
	for range 300 {
		*seq++
		k := "k" + strconv.Itoa(rand.IntN(2000))
		txn.Produce(ctx, &kgo.Record{Key: []byte(k), Value: []byte(strconv.Itoa(*seq) + strings.Repeat(".", 200))}, nil)
		written[k] = *seq
	}
	if txn.Flush(ctx) != nil || txn.EndTransaction(ctx, kgo.TryCommit) != nil {
		return false
	}
	for k, v := range written {
		latest[k] = v
	}
	return true
}

// checkLatest reads the topic and fails the test when a key lost its latest committed value
// (a commit the kill cut short may have been finished, so a later value is fine) or a
// partition's end offset went back.
func checkLatest(t *testing.T, addr string, kill int, latest map[string]int, ends map[int32]int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("state"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t)
	listed, err := kadm.NewClient(cl).ListEndOffsets(ctx, "state")
	if err != nil {
		t.Fatal(err)
	}
	listed.Each(func(o kadm.ListedOffset) {
		if o.Offset < ends[o.Partition] {
			t.Errorf("after kill %d: partition %d ends at %d, before it at %d", kill, o.Partition, o.Offset, ends[o.Partition])
		}
		ends[o.Partition] = o.Offset
	})
	got := map[string]int{}
	for len(got) < len(latest) || !allAtLeast(got, latest) {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fetches.EachRecord(func(r *kgo.Record) {
			got[string(r.Key)], _ = strconv.Atoi(strings.TrimRight(string(r.Value), "."))
		})
	}
	lost := 0
	for k, v := range latest {
		if got[k] < v {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("after kill %d inside a compaction: %d of %d keys lost their latest committed value", kill, lost, len(latest))
	}
}

func allAtLeast(got, want map[string]int) bool {
	for k, v := range want {
		if got[k] < v {
			return false
		}
	}
	return true
}
