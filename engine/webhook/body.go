package webhook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/amalert"
	"github.com/eventops/eventops-engine/engine/eval"
)

// item is one record made ready to send.
type item struct {
	rec *engine.Record
	// key orders delivery: records with one key are delivered in batch order; "" for none.
	key string
	// idem is the record's idempotency key.
	idem string
	// part is the record's share of a body: its JSON object (json), its body (template).
	part []byte
	// alert is the record as an Alertmanager alert (alertmanager), and group its group's
	// labels, which every request of alerts shares.
	alert amalert.Alert
	group map[string]string
	// groupKey names group, for telling groups apart.
	groupKey string
}

// encoder builds request bodies in one format.
type encoder interface {
	// prepare fills it from its record; amalert.ErrNotNotified says it is not sent at all, any
	// other error why it cannot be.
	prepare(it *item, env eval.Env) error
	// body is the body of one request carrying items, which share a group.
	body(items []*item) ([]byte, error)
}

// jsonEncoder sends records as their JSON objects: alone, or an array of them when
// requests may carry several (so that a receiver always sees one shape).
type jsonEncoder struct{ batched bool }

func (e jsonEncoder) prepare(it *item, _ eval.Env) error {
	b, err := json.Marshal(it.rec.Value)
	if err != nil {
		return fmt.Errorf("cannot encode the record as JSON: %w", err)
	}
	it.part = b
	return nil
}

func (e jsonEncoder) body(items []*item) ([]byte, error) {
	if !e.batched {
		return items[0].part, nil
	}
	parts := make([][]byte, len(items))
	for i, it := range items {
		parts[i] = it.part
	}
	var b bytes.Buffer
	b.WriteByte('[')
	b.Write(bytes.Join(parts, []byte{','}))
	b.WriteByte(']')
	return b.Bytes(), nil
}

// templateEncoder sends the rendered template, one record per request.
type templateEncoder struct{ tmpl *eval.Template }

func (e templateEncoder) prepare(it *item, env eval.Env) error {
	s, err := e.tmpl.Render(env)
	if err != nil {
		return err
	}
	it.part = []byte(s)
	return nil
}

func (e templateEncoder) body(items []*item) ([]byte, error) { return items[0].part, nil }

// alertmanagerEncoder sends alert records in Alertmanager's webhook payload.
type alertmanagerEncoder struct {
	cfg          *Config
	generatorURL *eval.Template // nil: none
}

func (e alertmanagerEncoder) prepare(it *item, env eval.Env) error {
	a, err := amalert.Of(it.rec.Value, e.generatorURL, env)
	if err != nil {
		return err
	}
	it.alert = a
	it.group = groupLabels(a, e.cfg.GroupBy)
	it.groupKey = amalert.LabelSetString(it.group)
	return nil
}

func (e alertmanagerEncoder) body(items []*item) ([]byte, error) {
	alerts := make([]amalert.Alert, len(items))
	for i, it := range items {
		alerts[i] = it.alert
	}
	b, err := json.Marshal(newMessage(e.cfg, items[0].group, alerts))
	if err != nil {
		return nil, fmt.Errorf("cannot encode the payload: %w", err)
	}
	// Alertmanager's encoder ends the body with a newline; some receivers sign or compare
	// bodies byte for byte.
	return append(b, '\n'), nil
}

// orderKey is what orders a record's delivery: an alert's fingerprint (each alert's
// transitions in order), else its Kafka key.
func orderKey(rec *engine.Record) string {
	if isAlert(rec) {
		return "alert\x00" + rec.Value["fingerprint"].(string)
	}
	if len(rec.Key) > 0 {
		return "key\x00" + string(rec.Key)
	}
	return ""
}

// idempotencyKey identifies what a record says, the same each time it is sent: an alert
// transition by its fingerprint, state and time, another record by its event_id, or
// without one by its position in its source topic (which a redelivery keeps).
func idempotencyKey(rec *engine.Record) string {
	v := rec.Value
	switch id, _ := v["event_id"].(string); {
	case isAlert(rec):
		return digest("alert", v["fingerprint"].(string), v["state"].(string), v["ts"].(string))
	case id != "":
		return digest("event", id)
	}
	return digest("source", eval.RecordID(rec.Source))
}

// batchKey is the idempotency key of a request carrying several records.
func batchKey(items []*item) string {
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.idem
	}
	return digest("batch", keys...)
}

// digest is a 128-bit hex hash of a kind and its parts, each after a NUL so that lists of
// parts that concatenate alike hash apart.
func digest(kind string, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(kind))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
