// Package keyedstate is the state of a processor that keeps, per input partition, entries by
// key, each checkpointed as its JSON (correlate's open incidents, service_graph's edges): the
// Changes, Export, Restore and Drop of engine.Stateful, written once.
package keyedstate

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// Map holds entries of type T by key, per input partition, and which changed since the last
// Changes. The zero value is not usable: use New. Not safe for concurrent use.
type Map[T any] struct {
	what    string // what an entry is, for errors: "correlate: incident"
	parts   map[int32]map[string]*T
	changed map[int32]map[string]bool
}

// New returns an empty map whose Restore errors name an entry as what (e.g. "correlate:
// incident").
func New[T any](what string) *Map[T] {
	return &Map[T]{what: what, parts: map[int32]map[string]*T{}, changed: map[int32]map[string]bool{}}
}

// Partition is partition's entries, made empty the first time. Changing the map changes the
// state; say which keys changed with Changed.
func (m *Map[T]) Partition(partition int32) map[string]*T {
	entries := m.parts[partition]
	if entries == nil {
		entries = map[string]*T{}
		m.parts[partition] = entries
	}
	return entries
}

// Partitions are the partitions that hold state, sorted.
func (m *Map[T]) Partitions() []int32 { return slices.Sorted(maps.Keys(m.parts)) }

// Changed notes that key of partition changed (or was deleted).
func (m *Map[T]) Changed(partition int32, key string) {
	if m.changed[partition] == nil {
		m.changed[partition] = map[string]bool{}
	}
	m.changed[partition][key] = true
}

// Changes reports the entries changed since the last call (engine.Stateful): the JSON of
// each, or nil for one deleted.
func (m *Map[T]) Changes(put func(partition int32, key string, value []byte)) {
	for partition, keys := range m.changed {
		entries := m.parts[partition]
		for _, key := range slices.Sorted(maps.Keys(keys)) {
			e := entries[key]
			if e == nil {
				put(partition, key, nil)
				continue
			}
			b, _ := json.Marshal(e)
			put(partition, key, b)
		}
	}
	m.changed = map[int32]map[string]bool{}
}

// Export reports every entry (engine.StateExporter), as Changes reports them.
func (m *Map[T]) Export(put func(partition int32, key string, value []byte)) {
	for partition, entries := range m.parts {
		for _, key := range slices.Sorted(maps.Keys(entries)) {
			b, _ := json.Marshal(entries[key])
			put(partition, key, b)
		}
	}
}

// Restore replaces partition's entries with the decoded entries.
func (m *Map[T]) Restore(partition int32, entries map[string][]byte) error {
	restored := make(map[string]*T, len(entries))
	for key, b := range entries {
		var e T
		if err := json.Unmarshal(b, &e); err != nil {
			return fmt.Errorf("%s %s: %w", m.what, key, err)
		}
		restored[key] = &e
	}
	m.parts[partition] = restored
	delete(m.changed, partition)
	return nil
}

// Drop forgets partition's entries.
func (m *Map[T]) Drop(partition int32) {
	delete(m.parts, partition)
	delete(m.changed, partition)
}
