package broker

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eventops/eventops-engine/engine/atomicfile"
)

// txnOffsetsFile, in the embedded broker's data directory, is the txnOffsetLog.
const txnOffsetsFile = "eventops-txn-offsets.log"

// txnOffsetLogMaxBytes is the size past which the log is rewritten with only what a
// recovery can still use (each producer's latest transaction).
const txnOffsetLogMaxBytes = 4 << 20

// txnKey names one transaction: kfake, like Kafka with KIP-890, gives each transaction of a
// producer an epoch of its own, which its records and its markers carry.
type txnKey struct {
	Producer int64 `json:"pid"`
	Epoch    int16 `json:"epoch"`
}

// loggedOffset is one consumer group offset a transaction commits.
type loggedOffset struct {
	Offset      int64   `json:"offset"`
	LeaderEpoch int32   `json:"leader_epoch"`
	Metadata    *string `json:"metadata,omitempty"`
}

// groupOffsets maps group → topic → partition → offset.
type groupOffsets map[string]map[string]map[int32]loggedOffset

// txnOffsetEntry is one line of the log: the offsets of one TxnOffsetCommit request, or the
// note that a recovery rolled the transaction forward.
type txnOffsetEntry struct {
	txnKey
	Group         string                            `json:"group,omitempty"`
	Offsets       map[string]map[int32]loggedOffset `json:"offsets,omitempty"`
	RolledForward bool                              `json:"rolled_forward,omitempty"`
}

// txnOffsetLog keeps, in the data directory, the consumer group offsets each transaction
// commits, as its TxnOffsetCommit requests arrive. kfake holds them in memory until it has
// written the transaction's markers and applies them last, so a kill while it writes markers
// loses them, though some partitions already hold the transaction as committed. With the
// log, the recovery after such a kill can finish the commit (rollForward) instead of leaving
// the stream to read its batch again on top of outputs already committed.
//
// The log is appended to without fsync: it must survive a kill of the process, which
// leaves written pages to the kernel, as kfake's own segment files do.
type txnOffsetLog struct {
	mu     sync.Mutex
	path   string
	f      *os.File
	size   int64
	latest map[int64]*txnRecord // producer → its latest transaction
}

// txnRecord is what the log knows of one producer's latest transaction.
type txnRecord struct {
	key           txnKey
	offsets       groupOffsets
	rolledForward bool
}

// openTxnOffsetLog reads the log of dir, if any, and opens it for appending.
func openTxnOffsetLog(dir string) (*txnOffsetLog, error) {
	l := &txnOffsetLog{path: filepath.Join(dir, txnOffsetsFile), latest: map[int64]*txnRecord{}}
	raw, err := os.ReadFile(l.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("broker: embedded: reading %s: %w", l.path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var e txnOffsetEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil { // a line cut short by a kill is skipped
			l.apply(e)
		}
	}
	if err := l.rewrite(); err != nil {
		return nil, err
	}
	return l, nil
}

// apply folds one entry into latest.
func (l *txnOffsetLog) apply(e txnOffsetEntry) {
	r := l.latest[e.Producer]
	if r == nil || r.key.Epoch != e.Epoch {
		r = &txnRecord{key: e.txnKey, offsets: groupOffsets{}}
		l.latest[e.Producer] = r
	}
	r.rolledForward = r.rolledForward || e.RolledForward
	if e.Group == "" {
		return
	}
	topics := r.offsets[e.Group]
	if topics == nil {
		topics = map[string]map[int32]loggedOffset{}
		r.offsets[e.Group] = topics
	}
	for t, ps := range e.Offsets {
		if topics[t] == nil {
			topics[t] = map[int32]loggedOffset{}
		}
		for p, o := range ps {
			topics[t][p] = o
		}
	}
}

// committed returns the offsets the log holds for the transaction key, and whether a
// recovery already rolled it forward.
func (l *txnOffsetLog) committed(key txnKey) (groupOffsets, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.latest[key.Producer]
	if r == nil || r.key != key {
		return nil, false
	}
	return r.offsets, r.rolledForward
}

// observe logs a TxnOffsetCommit request; it is called before kfake handles the request.
func (l *txnOffsetLog) observe(req kmsg.Request) error {
	r, ok := req.(*kmsg.TxnOffsetCommitRequest)
	if !ok {
		return nil
	}
	e := txnOffsetEntry{txnKey: txnKey{r.ProducerID, r.ProducerEpoch}, Group: r.Group, Offsets: map[string]map[int32]loggedOffset{}}
	for _, t := range r.Topics {
		topic := t.Topic
		if r.Version >= 6 {
			// Named by id; resolving it here would wait on the broker this runs inside.
			topic = topicIDPrefix + hex.EncodeToString(t.TopicID[:])
		}
		e.Offsets[topic] = map[int32]loggedOffset{}
		for _, p := range t.Partitions {
			e.Offsets[topic][p.Partition] = loggedOffset{Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata}
		}
	}
	return l.append(e)
}

// topicIDPrefix marks a topic logged by its id (TxnOffsetCommit v6 and later name topics so).
const topicIDPrefix = "topic-id:"

// resolveTopicIDs replaces the topic ids in the offsets with the topics' names; offsets of
// topics that no longer exist are dropped.
func resolveTopicIDs(offsets groupOffsets, names map[[16]byte]string) groupOffsets {
	out := groupOffsets{}
	for g, topics := range offsets {
		out[g] = map[string]map[int32]loggedOffset{}
		for t, ps := range topics {
			if id, ok := strings.CutPrefix(t, topicIDPrefix); ok {
				var key [16]byte
				if raw, err := hex.DecodeString(id); err == nil && len(raw) == 16 {
					copy(key[:], raw)
				}
				if t, ok = names[key]; !ok {
					continue
				}
			}
			out[g][t] = ps
		}
	}
	return out
}

// markRolledForward records that a recovery finished the commit of key.
func (l *txnOffsetLog) markRolledForward(key txnKey) error {
	return l.append(txnOffsetEntry{txnKey: key, RolledForward: true})
}

func (l *txnOffsetLog) append(e txnOffsetEntry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil // closed with the broker
	}
	l.apply(e)
	n, err := l.f.Write(append(line, '\n'))
	l.size += int64(n)
	if err != nil {
		return fmt.Errorf("broker: embedded: appending to %s: %w", l.path, err)
	}
	if l.size > txnOffsetLogMaxBytes {
		return l.rewrite()
	}
	return nil
}

// rewrite replaces the file by one that holds only latest, and opens it for appending.
func (l *txnOffsetLog) rewrite() error {
	var buf bytes.Buffer
	for _, r := range l.latest {
		for _, e := range r.entries() {
			line, err := json.Marshal(e)
			if err != nil {
				return err
			}
			buf.Write(append(line, '\n'))
		}
	}
	if l.f != nil {
		l.f.Close()
	}
	f, err := atomicfile.Replace(l.path, buf.Bytes())
	if err != nil {
		return fmt.Errorf("broker: embedded: %w", err)
	}
	l.f, l.size = f, int64(buf.Len())
	return nil
}

func (r *txnRecord) entries() []txnOffsetEntry {
	out := []txnOffsetEntry{{txnKey: r.key, RolledForward: r.rolledForward}}
	for g, topics := range r.offsets {
		out = append(out, txnOffsetEntry{txnKey: r.key, Group: g, Offsets: topics})
	}
	return out
}

// each calls fn with each producer's latest transaction.
func (l *txnOffsetLog) each(fn func(key txnKey, offsets groupOffsets, rolledForward bool)) {
	l.mu.Lock()
	records := make([]txnRecord, 0, len(l.latest))
	for _, r := range l.latest {
		records = append(records, *r)
	}
	l.mu.Unlock()
	for _, r := range records {
		fn(r.key, r.offsets, r.rolledForward)
	}
}

// Close closes the file.
func (l *txnOffsetLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
