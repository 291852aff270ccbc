package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
)

// TopicConfigs converts a declared topic into the Kafka topic configs the engine sets:
// retention → retention.ms (integer milliseconds, -1 for forever), retention_bytes →
// retention.bytes, cleanup → cleanup.policy, and configs passed through (they override the
// typed fields). Settings left unset are left to the broker's defaults.
//
// A compact-only topic always gets retention.ms=-1: Kafka ignores time retention on such
// topics, but the embedded broker would apply it and delete the latest value of every key.
func TopicConfigs(t config.Topic) map[string]*string {
	out := map[string]*string{}
	set := func(k, v string) { out[k] = &v }
	set("cleanup.policy", cleanupPolicy(t.Cleanup))
	switch {
	case t.Retention < 0:
		set("retention.ms", "-1")
	case t.Retention > 0:
		set("retention.ms", strconv.FormatInt(t.Retention.D().Milliseconds(), 10))
	}
	if t.RetentionBytes > 0 {
		set("retention.bytes", strconv.FormatInt(int64(t.RetentionBytes), 10))
	}
	for k, v := range t.Configs {
		set(k, v)
	}
	if *out["cleanup.policy"] == "compact" {
		set("retention.ms", "-1")
		delete(out, "retention.bytes")
	}
	return out
}

// addCompactionLag sets min.compaction.lag.ms on a compacted topic of an external broker.
// (The embedded broker refuses the setting; it compacts only when every reader of the
// pipeline is caught up instead, see Broker.Clean.)
func addCompactionLag(cfgs map[string]*string, t config.Topic) {
	if *cfgs["cleanup.policy"] == "delete" || t.MinCompactionLag <= 0 {
		return
	}
	if _, set := t.Configs["min.compaction.lag.ms"]; set {
		return
	}
	v := strconv.FormatInt(t.MinCompactionLag.D().Milliseconds(), 10)
	cfgs["min.compaction.lag.ms"] = &v
}

func cleanupPolicy(c string) string {
	switch c {
	case "compact":
		return "compact"
	case "compact+delete":
		return "compact,delete"
	default:
		return "delete"
	}
}

// numericConfigs are configs the embedded broker parses as integers and silently reads as 0
// when they are not (retention.ms=0 deletes everything), so they are checked before sending.
var numericConfigs = []string{"retention.ms", "retention.bytes", "delete.retention.ms", "segment.bytes", "segment.ms", "max.message.bytes", "min.insync.replicas"}

// EnsureTopics creates the declared topics that are missing and reconciles the ones that
// exist: partitions are added when there are fewer than declared (never removed) and configs
// that differ from the declaration are altered incrementally. Every change is logged.
func (b *Broker) EnsureTopics(ctx context.Context, topics map[string]config.Topic) error {
	if len(topics) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(topics))
	want := make(map[string]map[string]*string, len(topics))
	for _, name := range names {
		t := topics[name]
		cfgs := TopicConfigs(t)
		if b.cluster == nil {
			addCompactionLag(cfgs, t)
		}
		for _, k := range numericConfigs {
			if v, ok := cfgs[k]; ok && v != nil {
				if _, err := strconv.ParseInt(*v, 10, 64); err != nil {
					return fmt.Errorf("broker: topic %s: config %s=%q is not an integer", name, k, *v)
				}
			}
		}
		if t.Cleanup == "compact" && t.Retention != 0 {
			b.logger.Warn("retention is not applied to a compact-only topic; use cleanup: compact+delete to expire old keys",
				"topic", name, "retention", t.Retention.D().String())
		}
		want[name] = cfgs
	}

	cl, err := kgo.NewClient(b.ClientOpts()...)
	if err != nil {
		return fmt.Errorf("broker: admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("broker: listing topics: %w", err)
	}
	var existing []string
	var errs []error
	for _, name := range names {
		t := topics[name]
		d, ok := details[name]
		if ok && d.Err == nil {
			existing = append(existing, name)
			errs = append(errs, b.growPartitions(ctx, adm, name, len(d.Partitions), t.Partitions))
			continue
		}
		if ok && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("broker: topic %s: %w", name, d.Err))
			continue
		}
		errs = append(errs, b.createTopic(ctx, adm, name, t, want[name]))
	}
	if len(existing) > 0 {
		errs = append(errs, b.alterConfigs(ctx, adm, existing, want))
	}
	return errors.Join(errs...)
}

func (b *Broker) createTopic(ctx context.Context, adm *kadm.Client, name string, t config.Topic, cfgs map[string]*string) error {
	partitions := int32(max(t.Partitions, 1))
	replication := int16(t.Replication)
	switch {
	case b.cluster != nil:
		// The embedded broker has one node; the declared factor is for production clusters.
		replication = 1
	case replication <= 0:
		replication = -1 // broker default
	}
	resp, err := adm.CreateTopic(ctx, partitions, replication, cfgs, name)
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return nil // created concurrently by another engine; reconciled on the next start
	}
	if err != nil {
		if resp.ErrMessage != "" {
			err = fmt.Errorf("%w: %s", err, resp.ErrMessage)
		}
		return fmt.Errorf("broker: creating topic %s: %w", name, err)
	}
	b.logger.Info("topic created", "topic", name, "partitions", partitions, "replication", replication, "configs", describe(cfgs))
	return nil
}

func (b *Broker) growPartitions(ctx context.Context, adm *kadm.Client, name string, have, declared int) error {
	declared = max(declared, 1)
	switch {
	case have > declared:
		b.logger.Warn("topic has more partitions than declared; partitions are never removed", "topic", name, "partitions", have, "declared", declared)
		return nil
	case have == declared:
		return nil
	}
	resps, err := adm.UpdatePartitions(ctx, declared, name)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		return fmt.Errorf("broker: topic %s: adding partitions %d → %d: %w", name, have, declared, err)
	}
	b.logger.Info("topic partitions added", "topic", name, "from", have, "to", declared)
	return nil
}

func (b *Broker) alterConfigs(ctx context.Context, adm *kadm.Client, names []string, want map[string]map[string]*string) error {
	described, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return fmt.Errorf("broker: describing topic configs: %w", err)
	}
	var errs []error
	for _, rc := range described {
		if rc.Err != nil {
			errs = append(errs, fmt.Errorf("broker: describing configs of topic %s: %w", rc.Name, rc.Err))
			continue
		}
		have := make(map[string]string, len(rc.Configs))
		for _, c := range rc.Configs {
			if c.Value != nil {
				have[c.Key] = *c.Value
			}
		}
		var alters []kadm.AlterConfig
		changed := map[string]string{}
		for _, k := range slices.Sorted(maps.Keys(want[rc.Name])) {
			v := want[rc.Name][k]
			if v == nil {
				continue
			}
			if cur, ok := have[k]; ok && cur == *v {
				continue
			}
			alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: v})
			changed[k] = have[k] + " → " + *v
		}
		if len(alters) == 0 {
			continue
		}
		resps, err := adm.AlterTopicConfigs(ctx, alters, rc.Name)
		if err == nil {
			for _, r := range resps {
				if r.Err != nil {
					err = fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
				}
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("broker: altering configs of topic %s: %w", rc.Name, err))
			continue
		}
		b.logger.Info("topic configs altered", "topic", rc.Name, "changes", changed)
	}
	return errors.Join(errs...)
}

func describe(cfgs map[string]*string) map[string]string {
	out := make(map[string]string, len(cfgs))
	for k, v := range cfgs {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}
