package enginetest

// Changelog is what the runtime keeps of a stateful processor's changes, as a compacted
// changelog topic does: the latest value of each key per partition, deleted keys removed.
// Processor tests collect into it after every batch or tick and restore from it.
type Changelog map[int32]map[string][]byte

// Collect applies the changes s reports (engine.Stateful's Changes).
func (c Changelog) Collect(s interface {
	Changes(put func(partition int32, key string, value []byte))
}) {
	s.Changes(func(part int32, key string, value []byte) {
		if c[part] == nil {
			c[part] = map[string][]byte{}
		}
		if value == nil {
			delete(c[part], key)
		} else {
			c[part][key] = value
		}
	})
}
