package broker

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
)

// kfake compacts a partition by deleting its segment files and writing the survivors into
// new ones. A kill in between emptied whole partitions of a state changelog in the fault
// suite (a restore then found no checkpoint, and offsets went back). The cleaner keeps the
// files until the compaction is over, and a start after such a kill puts them back.
func TestAKillInsideACompactionLosesNothing(t *testing.T) {
	dir := t.TempDir()
	b := startEmbedded(t, dir)
	ensure(t, b, map[string]config.Topic{"state": {Partitions: 2, Cleanup: "compact"}})
	for _, v := range []string{"v1", "v2", "v3"} {
		for p, keys := range [][]string{{"a", "b", "c"}, {"d", "e"}} {
			for _, k := range keys {
				produceSync(t, b, &kgo.Record{Topic: "state", Partition: int32(p), Key: []byte(k), Value: []byte(v)})
			}
		}
	}
	ends := endOffsets(t, b, "state")
	killed := ""
	b.Compacting = func() {
		killed = killedCopy(t, dir)
		// What the kill leaves when it comes right after kfake removed partition 0's files.
		removeSegmentFiles(t, filepath.Join(killed, partitionsDir, "state-0"))
	}
	b.Clean(testCtx(t))
	if killed == "" {
		t.Fatal("the cleaner did not compact")
	}
	if got := len(consumeAll(t, b, "state")); got >= 15 {
		t.Fatalf("the running broker after compaction: %d records, want fewer than the 15 written", got)
	}

	restarted := startEmbedded(t, killed)
	got := map[string]string{}
	for _, r := range consumeAll(t, restarted, "state") {
		got[string(r.Key)] = string(r.Value)
	}
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		if got[k] != "v3" {
			t.Errorf("after a kill inside a compaction, key %s = %q, want v3 (all: %v)", k, got[k], got)
		}
	}
	if after := endOffsets(t, restarted, "state"); after[0] != ends[0] || after[1] != ends[1] {
		t.Errorf("after a kill inside a compaction, end offsets %v, want %v as before it", after, ends)
	}
	for _, left := range []string{compactionMarker, compactionBackupDir} {
		if _, err := os.Stat(filepath.Join(killed, left)); err == nil {
			t.Errorf("%s is still in the data dir after the restore", left)
		}
	}
}

// A compaction that ends leaves nothing behind, and a start after it restores nothing: the
// partitions stay compacted.
func TestACompactionThatEndsKeepsNothing(t *testing.T) {
	dir := t.TempDir()
	b := startEmbedded(t, dir)
	ensure(t, b, map[string]config.Topic{"state": {Partitions: 1, Cleanup: "compact"}})
	for _, v := range []string{"v1", "v2", "v3"} {
		produceSync(t, b, &kgo.Record{Topic: "state", Key: []byte("k"), Value: []byte(v)})
	}
	produceSync(t, b, &kgo.Record{Topic: "state", Key: []byte("z"), Value: []byte("tail")})
	b.Clean(testCtx(t))
	for _, left := range []string{compactionMarker, compactionBackupDir} {
		if _, err := os.Stat(filepath.Join(dir, left)); err == nil {
			t.Errorf("%s is still in the data dir after a compaction that ended", left)
		}
	}
	restarted := startEmbedded(t, killedCopy(t, dir))
	if got := consumeAll(t, restarted, "state"); len(got) != 2 {
		t.Errorf("after a restart that followed a finished compaction: %v, want k=v3 and z=tail only", keyValues(got))
	}
}

func endOffsets(t *testing.T, b *Broker, topic string) map[int32]int64 {
	t.Helper()
	ends, err := kadm.NewClient(newClient(t, b)).ListEndOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatalf("end offsets: %v", err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

func removeSegmentFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if segmentFile(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A marker whose kept files are gone (a kill while an earlier pass removed them) neither
// stops the start nor empties the partitions it names.
func TestAMarkerWithoutKeptFilesEmptiesNothing(t *testing.T) {
	dir := t.TempDir()
	b := startEmbedded(t, dir)
	ensure(t, b, map[string]config.Topic{"state": {Partitions: 1, Cleanup: "compact"}})
	produceSync(t, b, &kgo.Record{Topic: "state", Key: []byte("k"), Value: []byte("v1")})
	killed := killedCopy(t, dir)
	if err := os.WriteFile(filepath.Join(killed, compactionMarker), []byte("state-0"), 0o644); err != nil {
		t.Fatal(err)
	}
	restarted := startEmbedded(t, killed)
	if got := consumeAll(t, restarted, "state"); len(got) != 1 || string(got[0].Value) != "v1" {
		t.Errorf("after a start that found a marker without kept files: %v, want k=v1", keyValues(got))
	}
}
