package broker

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// kfake compacts a partition by deleting its segment files and writing the survivors into
// new ones. A kill in between leaves the partition empty or cut short: every record after
// the cut is lost, its end offset goes back, and offsets already committed point past it
// (seen: a kill -9 inside a compaction emptied whole partitions of a state changelog). So
// before each compaction the cleaner keeps the segment files of the compacted partitions,
// by hard link, in compactionBackupDir, and writes compactionMarker once they are all
// there; the marker goes when the compaction is over. A start that finds the marker puts
// the kept files back (restoreInterruptedCompaction): the partitions as they were before
// the compaction, which lost nothing. Nothing can have been written to them since, because
// the cleaner holds back every write to the compacted topics until the marker is gone.
const (
	compactionBackupDir = "eventops-compaction"
	compactionMarker    = "eventops-compaction-in-progress"
)

// partitionsDir is where kfake keeps one directory per partition, named
// <path-escaped topic>-<partition>.
const partitionsDir = "partitions"

// segmentFile reports whether name is one of the files kfake keeps a partition's log in.
func segmentFile(name string) bool {
	return strings.HasSuffix(name, ".dat") || strings.HasSuffix(name, ".idx")
}

// keepForCompaction links the segment files of every partition of topics into a fresh
// compactionBackupDir and then writes compactionMarker.
func keepForCompaction(dataDir string, topics []string) error {
	// A marker an earlier pass could not remove goes first: a kill while the old kept files
	// go must not leave a marker that points at files no longer there.
	if err := compactionDone(dataDir); err != nil {
		return err
	}
	backup := filepath.Join(dataDir, compactionBackupDir)
	parts, err := partitionDirs(dataDir, topics)
	if err != nil {
		return err
	}
	for _, part := range parts {
		if err := linkSegments(filepath.Join(dataDir, partitionsDir, part), filepath.Join(backup, part)); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dataDir, compactionMarker), []byte(strings.Join(parts, "\n")), 0o644)
}

// compactionDone drops what keepForCompaction kept: the marker first, so that a kill while
// the files go cannot make a later start restore a partial set.
func compactionDone(dataDir string) error {
	if err := os.Remove(filepath.Join(dataDir, compactionMarker)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.RemoveAll(filepath.Join(dataDir, compactionBackupDir))
}

// partitionDirs names the partition directories of topics that exist in dataDir.
func partitionDirs(dataDir string, topics []string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(dataDir, partitionsDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && slices.Contains(topics, partitionTopic(e.Name())) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// partitionTopic is the topic of a partition directory's name.
func partitionTopic(dir string) string {
	i := strings.LastIndexByte(dir, '-')
	if i < 0 {
		return ""
	}
	topic, err := url.PathUnescape(dir[:i])
	if err != nil {
		return ""
	}
	return topic
}

// linkSegments hard-links the segment files of directory from into directory to.
func linkSegments(from, to string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !segmentFile(e.Name()) {
			continue
		}
		if err := os.Link(filepath.Join(from, e.Name()), filepath.Join(to, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// restoreInterruptedCompaction puts back the segment files a compaction cut short by a kill
// had kept, and returns the partitions it restored. Each one's snapshot goes too, so that
// kfake reads the restored files in full. It can itself be cut short and run again: the kept
// files are linked back, not moved, until the marker is gone.
func restoreInterruptedCompaction(dataDir string) ([]string, error) {
	listed, err := os.ReadFile(filepath.Join(dataDir, compactionMarker))
	if errors.Is(err, os.ErrNotExist) {
		// No compaction was cut short; a kill may still have left kept files behind.
		return nil, os.RemoveAll(filepath.Join(dataDir, compactionBackupDir))
	}
	if err != nil {
		return nil, err
	}
	var restored []string
	for _, part := range strings.Fields(string(listed)) {
		kept := filepath.Join(dataDir, compactionBackupDir, part)
		if _, err := os.Stat(kept); err != nil {
			continue // nothing kept for it: the partition stays as it is rather than emptied
		}
		live := filepath.Join(dataDir, partitionsDir, part)
		if err := clearSegments(live); err != nil {
			return nil, fmt.Errorf("partition %s: %w", part, err)
		}
		if err := linkSegments(kept, live); err != nil {
			return nil, fmt.Errorf("partition %s: %w", part, err)
		}
		restored = append(restored, part)
	}
	return restored, compactionDone(dataDir)
}

// clearSegments removes a partition directory's segment files and its snapshot.
func clearSegments(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if segmentFile(e.Name()) || e.Name() == "snapshot.json" {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
