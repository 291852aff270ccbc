package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/eventops/eventops-engine/engine/broker"
	"github.com/eventops/eventops-engine/engine/lookup"
)

// followLookups fills the lookup tables kept in topics (lookups: {x: {topic: ...}}): each
// is read from its start, and the call returns once every one was read to the end it had,
// so the streams that use them start with their rows. They go on following their topics
// until stop is called.
func followLookups(ctx context.Context, b *broker.Broker, set lookup.Set, log *slog.Logger) (stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	var followers []*broker.Follower
	stop = func() {
		cancel()
		for _, f := range followers {
			f.Close()
		}
	}
	for _, name := range slices.Sorted(maps.Keys(set)) {
		t := set[name]
		if t.Topic() == "" {
			continue
		}
		f, err := broker.Follow(ctx, b, t.Topic(), func(kvs []broker.KeyValue) {
			t.Apply(kvs, func(key []byte, err error) {
				log.Warn("lookup: a record of its topic is not a row; left out", "lookup", name, "topic", t.Topic(), "key", string(key), "err", err)
			})
		})
		if err != nil {
			stop()
			return nil, fmt.Errorf("lookups.%s: %w", name, err)
		}
		followers = append(followers, f)
	}
	for _, f := range followers {
		select {
		case <-f.CaughtUp():
		case <-ctx.Done():
			stop()
			return nil, fmt.Errorf("lookups: reading their topics: %w", ctx.Err())
		}
	}
	return stop, nil
}
