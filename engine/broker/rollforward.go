package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// recoveryTransactionalID is the producer that finishes, at start, the commits a kill cut short.
const recoveryTransactionalID = "eventops-broker-recovery"

// rollForward finishes each transaction the broker was killed in while writing its commit
// markers: one with a commit marker on some partition and records with no marker on others.
// Its client was never told the outcome, but readers may already have read the committed
// part, so the only outcome every reader can agree on is "committed". kfake has already
// taken the unmarked records for aborted (recoverDataDir) and cannot be told otherwise, so
// they are written again, in their order, in one new transaction that also commits the
// consumer group offsets the transaction carried (from the txnOffsetLog). The originals
// then get their abort marker like any other unended transaction.
//
// It returns the transactions it finished. One an earlier recovery already finished (it was
// killed before its abort markers were in) is not written twice.
func (b *Broker) rollForward(ctx context.Context, scan *tailScan) (map[txnKey]bool, error) {
	byTxn := map[txnKey][]*openTail{}
	for _, t := range scan.open() {
		if scan.committed[t.txnKey] {
			byTxn[t.txnKey] = append(byTxn[t.txnKey], t)
		}
	}
	rolled := map[txnKey]bool{}
	if len(byTxn) == 0 {
		return rolled, nil
	}
	names, err := topicNames(ctx, b)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(b.ClientOpts(), kgo.TransactionalID(recoveryTransactionalID),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), offsetsByName(),
		kgo.ProducerBatchMaxBytes(int32(b.MaxRecordBytes()+recordOverheadBytes)))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for _, key := range slices.SortedFunc(maps.Keys(byTxn), compareTxnKeys) {
		offsets, done := b.txnLog.committed(key)
		offsets = resolveTopicIDs(offsets, names)
		rolled[key] = true
		if done {
			continue
		}
		if err := commitCopies(ctx, cl, byTxn[key], offsets); err != nil {
			return nil, err
		}
		if err := b.txnLog.markRolledForward(key); err != nil {
			return nil, err
		}
		b.logRolledForward(key, byTxn[key], offsets)
	}
	return rolled, nil
}

// offsetsByName keeps the client's TxnOffsetCommit requests at version 5, which names topics
// (version 6 names them by id).
func offsetsByName() kgo.Opt {
	v := kversion.Stable()
	v.SetMaxKeyVersion(kmsg.TxnOffsetCommit.Int16(), 5)
	return kgo.MaxVersions(v)
}

// topicNames maps the id of each topic to its name.
func topicNames(ctx context.Context, b *Broker) (map[[16]byte]string, error) {
	cl, err := kgo.NewClient(b.ClientOpts()...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	topics, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	out := map[[16]byte]string{}
	for name, d := range topics {
		out[d.ID] = name
	}
	return out, nil
}

func compareTxnKeys(a, b txnKey) int {
	return cmp.Or(cmp.Compare(a.Producer, b.Producer), cmp.Compare(a.Epoch, b.Epoch))
}

func (b *Broker) logRolledForward(key txnKey, tails []*openTail, offsets groupOffsets) {
	var partitions []string
	n := 0
	for _, t := range tails {
		partitions = append(partitions, fmt.Sprintf("%s/%d", t.topic, t.partition))
		n += len(t.records)
	}
	if len(offsets) == 0 {
		b.logger.Error("finished the commit of a transaction the broker was killed in while writing its markers, without its consumer group offsets (not in the data dir's log): its input will be read again",
			"producer_id", key.Producer, "epoch", key.Epoch, "partitions", partitions, "records", n)
		return
	}
	b.logger.Warn("finished the commit of a transaction the broker was killed in while writing its markers (its unmarked records written again, its group offsets committed)",
		"producer_id", key.Producer, "epoch", key.Epoch, "partitions", partitions, "records", n, "groups", slices.Sorted(maps.Keys(offsets)))
}

// commitCopies writes the records of tails again and commits them, with offsets, in one
// transaction.
func commitCopies(ctx context.Context, cl *kgo.Client, tails []*openTail, offsets groupOffsets) error {
	if err := cl.BeginTransaction(); err != nil {
		return err
	}
	for _, t := range tails {
		for _, r := range t.records {
			c := &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}
			if err := cl.ProduceSync(ctx, c).FirstErr(); err != nil {
				_ = cl.EndTransaction(ctx, kgo.TryAbort)
				return fmt.Errorf("writing %s/%d again: %w", r.Topic, r.Partition, err)
			}
		}
	}
	if err := commitOffsetsInTransaction(ctx, cl, recoveryTransactionalID, offsets); err != nil {
		_ = cl.EndTransaction(ctx, kgo.TryAbort)
		return err
	}
	return cl.EndTransaction(ctx, kgo.TryCommit)
}

// commitOffsetsInTransaction adds group offsets to the open transaction of cl (whose
// transactional id is txid), as an administrator would (no group generation): the groups
// have no members yet.
func commitOffsetsInTransaction(ctx context.Context, cl *kgo.Client, txid string, offsets groupOffsets) error {
	id, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		return err
	}
	for _, group := range slices.Sorted(maps.Keys(offsets)) {
		add := kmsg.NewPtrAddOffsetsToTxnRequest()
		add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txid, id, epoch, group
		resp, err := add.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err != nil {
			return fmt.Errorf("adding group %s to the transaction: %w", group, err)
		}
		if err := txnOffsetCommit(ctx, cl, txid, id, epoch, group, offsets[group]); err != nil {
			return err
		}
	}
	return nil
}

func txnOffsetCommit(ctx context.Context, cl *kgo.Client, txid string, id int64, epoch int16, group string, topics map[string]map[int32]loggedOffset) error {
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch, req.Generation = txid, group, id, epoch, -1
	for _, t := range slices.Sorted(maps.Keys(topics)) {
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = t
		for _, p := range slices.Sorted(maps.Keys(topics[t])) {
			o := topics[t][p]
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p, o.Offset, o.LeaderEpoch, o.Metadata
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("committing the offsets of group %s: %w", group, err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("committing the offset of group %s on %s/%d: %w", group, t.Topic, p.Partition, err)
			}
		}
	}
	return nil
}

// restoreTxnOffsets commits the group offsets of each producer's latest transaction that has
// a commit marker but whose offsets the groups do not hold: kfake applies a transaction's
// offsets after its last marker, so a kill between the two leaves the transaction's outputs
// committed and its input to be read again. An offset is only ever moved forward. (A group
// reset by hand to an earlier offset while the broker was down after a kill would be moved
// forward again; reset it after the restart.)
func (b *Broker) restoreTxnOffsets(ctx context.Context, adm *kadm.Client, committed, rolled map[txnKey]bool) error {
	names, err := topicNames(ctx, b)
	if err != nil {
		return err
	}
	b.txnLog.each(func(key txnKey, offsets groupOffsets, _ bool) {
		if err != nil || !committed[key] || rolled[key] {
			return
		}
		offsets = resolveTopicIDs(offsets, names)
		for _, group := range slices.Sorted(maps.Keys(offsets)) {
			if err = b.raiseOffsets(ctx, adm, group, offsets[group]); err != nil {
				return
			}
		}
	})
	return err
}

// raiseOffsets commits, for group, each offset of topics that is ahead of the group's.
func (b *Broker) raiseOffsets(ctx context.Context, adm *kadm.Client, group string, topics map[string]map[int32]loggedOffset) error {
	current, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		current, err = kadm.OffsetResponses{}, nil // no offset yet: every one is ahead
	}
	if err != nil {
		return fmt.Errorf("offsets of group %s: %w", group, err)
	}
	raise := kadm.Offsets{}
	for t, ps := range topics {
		for p, o := range ps {
			if c, ok := current.Lookup(t, p); ok && c.Err == nil && c.At >= o.Offset {
				continue
			}
			meta := ""
			if o.Metadata != nil {
				meta = *o.Metadata
			}
			raise.Add(kadm.Offset{Topic: t, Partition: p, At: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: meta})
		}
	}
	if len(raise) == 0 {
		return nil
	}
	resps, err := adm.CommitOffsets(ctx, group, raise)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		return fmt.Errorf("committing the offsets of group %s: %w", group, err)
	}
	b.logger.Warn("committed the group offsets of a transaction whose markers were all written when the broker was killed, but not its offsets",
		"group", group, "partitions", len(raise))
	return nil
}
