package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/amalert"
	"github.com/eventops/eventops-engine/engine/eval"
	"github.com/eventops/eventops-engine/engine/types"
)

// Factory declares the notify processor.
var Factory = engine.ProcessorFactory{
	Type: "notify",
	Example: `- notify:
    route:
      receiver: ops
      group_by: [alertname]
      group_wait: 30s
      group_interval: 5m
      repeat_interval: 4h
      routes:
        - {matchers: ['severity="critical"'], receiver: pager, continue: true}
    receivers:
      - {name: ops}
      - {name: pager, send_resolved: false}
    inhibit_rules:
      - source_matchers: ['severity="critical"']
        target_matchers: ['severity="warning"']
        equal: [source_id]
`,
	Doc: "Alertmanager's dispatch in the engine, for pipelines that run no Alertmanager: alert " +
		"records (the threshold processor's) go through a routing tree (matchers, continue, " +
		"group_by) into aggregation groups; a group notifies its receiver group_wait after it " +
		"formed, then every group_interval when alerts were added or resolved, and again after " +
		"repeat_interval; inhibition rules and silences mute alerts. Each notification is a " +
		"record shaped as Alertmanager's webhook payload (version 4: receiver, status, alerts, " +
		"groupLabels, commonLabels, commonAnnotations, externalURL, groupKey), so a webhook " +
		"output in format json sends it to any Alertmanager receiver unchanged. The groups and " +
		"the notification log are state, checkpointed per input partition with the batch's " +
		"offsets, so a restart neither repeats nor skips a notification; alerts of one group " +
		"must come through one partition (give the input topic one partition, or key it by the " +
		"group labels). It runs on the engine's clock: rule tests step it.",
	NewConfig: func() any { return &Config{} },
	Build:     build,
}

// OnePartitionReason: groups are kept per input partition (engine.PartitionBound).
func (p *Processor) OnePartitionReason() string {
	return "alerts of one group that come through different partitions are grouped and notified apart"
}

var (
	_ engine.PartitionBound = (*Processor)(nil)
	_ engine.Stateful       = (*Processor)(nil)
	_ engine.Ticker         = (*Processor)(nil)
	_ engine.TypedProcessor = (*Processor)(nil)
	_ engine.StateExporter  = (*Processor)(nil)
)

// Processor dispatches alerts into notifications. Process, Tick, Changes, Restore, Drop and
// Export are called by one goroutine at a time.
type Processor struct {
	cfg          *Config
	d            *Dispatcher
	generatorURL *eval.Template
	clock        engine.Clock
	parts        map[int32]*partition
	// book is shared with the API (run-time silences, the alerts view); applied is the
	// version of its silences the partitions hold.
	book    *book
	applied uint64
	// incidents is inhibit_symptoms' table: the incidents whose symptoms are muted.
	incidents engine.IterableLookup
}

// partition is the dispatcher state of one input partition, and what its changelog holds.
type partition struct {
	st *State
	// written is the encoding of each changelog entry as last reported, to report changes.
	written map[string]string
}

func build(cfg any, env engine.BuildEnv) (engine.Processor, error) {
	c, err := engine.ConfigOf[Config]("notify processor", cfg)
	if err != nil {
		return nil, err
	}
	p := &Processor{cfg: c, d: c.compile(), clock: env.Clock, parts: map[int32]*partition{}, book: &book{silences: map[string]*Silence{}}}
	if p.clock == nil {
		p.clock = engine.WallClock{}
	}
	lint(c, env)
	if err := p.useIncidents(env); err != nil {
		return p, err
	}
	if c.GeneratorURL != nil && !c.GeneratorURL.IsZero() {
		if p.generatorURL, err = eval.CompileTemplate(*c.GeneratorURL, env.Path+".generator_url", env.Input, env.Warnings); err != nil {
			return p, err
		}
	}
	return p, checkInput(env.Input)
}

// checkInput refuses input that cannot be alert records.
func checkInput(in *types.Type) error {
	if missing := amalert.MissingFields(in); len(missing) > 0 {
		return fmt.Errorf("notify takes alert records (with rule, fingerprint and state, as the threshold processor emits them); the records reaching it have no field %s", missing[0])
	}
	return nil
}

// OutputType is the notification record.
func (p *Processor) OutputType() *types.Type {
	labels := &types.Type{Kind: types.Object, Extra: types.TStr}
	alert := types.ObjectOf("an alert of a notification", map[string]*types.Type{
		"status": types.TStr, "labels": labels, "annotations": labels, "startsAt": types.TStr,
		"endsAt": types.TStr, "generatorURL": types.TStr, "fingerprint": types.TStr,
	})
	return types.ObjectOf("the notify processor's notification records", map[string]*types.Type{
		"event_id": types.TStr, "ts": types.TStr, "version": types.TStr, "receiver": types.TStr,
		"status": types.TStr, "groupKey": types.TStr, "groupLabels": labels, "commonLabels": labels,
		"commonAnnotations": labels, "externalURL": types.TStr, "truncatedAlerts": types.TFloat,
		"alerts": types.ArrayOf(alert),
	})
}

// Process takes a batch of alert records into the groups of their partitions and returns the
// notifications due now. A record that is not an alert goes to rejects; pending alerts and
// the end of alerts that never fired are consumed without effect, as Alertmanager never
// sees them.
func (p *Processor) Process(_ context.Context, batch []*engine.Record, rejects *engine.Rejects) ([]*engine.Record, error) {
	now := p.clock.Now()
	byPart := map[int32][]Alert{}
	for _, rec := range batch {
		a, err := p.alertOf(rec, now)
		switch {
		case errors.Is(err, amalert.ErrNotNotified):
		case err != nil:
			rejects.Add(rec, "notify", err)
		default:
			byPart[rec.Source.Partition] = append(byPart[rec.Source.Partition], a)
		}
	}
	for id := range byPart {
		p.part(id)
	}
	p.syncSilences()
	p.syncSymptoms()
	var out []*engine.Record
	for _, id := range slices.Sorted(maps.Keys(byPart)) {
		out = append(out, p.step(id, byPart[id], now)...)
	}
	p.publishAlerts(now)
	return out, nil
}

// Tick flushes the groups that are due.
func (p *Processor) Tick(_ context.Context, now time.Time, _ *engine.Rejects) ([]*engine.Record, error) {
	p.syncSilences()
	p.syncSymptoms()
	var out []*engine.Record
	for _, id := range slices.Sorted(maps.Keys(p.parts)) {
		out = append(out, p.step(id, nil, now)...)
	}
	p.publishAlerts(now)
	return out, nil
}

func (p *Processor) step(id int32, in []Alert, now time.Time) []*engine.Record {
	part := p.part(id)
	var out []*engine.Record
	for _, n := range p.d.Step(part.st, in, now) {
		out = append(out, &engine.Record{Value: p.notificationRecord(n, now), Source: engine.Source{Partition: id}})
	}
	return out
}

func (p *Processor) part(id int32) *partition {
	part := p.parts[id]
	if part == nil {
		part = &partition{st: NewState(), written: map[string]string{}}
		p.parts[id] = part
	}
	return part
}

// alertOf is the dispatcher's alert of an alert record.
func (p *Processor) alertOf(rec *engine.Record, now time.Time) (Alert, error) {
	a, err := amalert.Of(rec.Value, p.generatorURL, eval.Env{Vars: rec.Value, Source: rec.Source, Now: now})
	if err != nil {
		return Alert{}, err
	}
	return Alert{Fingerprint: a.Fingerprint, Labels: a.Labels, Annotations: a.Annotations,
		StartsAt: a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: a.GeneratorURL}, nil
}

// notificationRecord is n as Alertmanager's webhook payload (version 4), with an event_id
// (the same for the same notification, for receivers' idempotency keys) and ts.
func (p *Processor) notificationRecord(n Notification, now time.Time) map[string]any {
	status := amalert.StatusResolved
	if n.Firing() {
		status = amalert.StatusFiring
	}
	alerts := make([]any, len(n.Alerts))
	labelSets := make([]map[string]string, len(n.Alerts))
	annotationSets := make([]map[string]string, len(n.Alerts))
	for i, a := range n.Alerts {
		st, end := amalert.StatusFiring, ""
		if a.Resolved() {
			st, end = amalert.StatusResolved, a.EndsAt.UTC().Format(time.RFC3339Nano)
		} else {
			end = time.Time{}.Format(time.RFC3339Nano) // Alertmanager sends a firing alert's endsAt as the zero time
		}
		alerts[i] = map[string]any{"status": st, "labels": anyMap(a.Labels), "annotations": anyMap(a.Annotations),
			"startsAt": a.StartsAt.UTC().Format(time.RFC3339Nano), "endsAt": end, "generatorURL": a.GeneratorURL,
			"fingerprint": fingerprint(a.Labels)}
		labelSets[i], annotationSets[i] = a.Labels, a.Annotations
	}
	ts := now.UTC().Format(time.RFC3339Nano)
	return map[string]any{
		"event_id": digest(n.GroupKey, n.Receiver, ts), "ts": ts, "version": "4",
		"receiver": regexp.QuoteMeta(n.Receiver), "status": status, "groupKey": n.GroupKey,
		"groupLabels": anyMap(n.GroupLabels), "commonLabels": anyMap(common(labelSets)),
		"commonAnnotations": anyMap(common(annotationSets)), "externalURL": p.cfg.ExternalURL,
		"truncatedAlerts": 0.0, "alerts": alerts,
	}
}

func anyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// common is the pairs every set has with the same value.
func common(sets []map[string]string) map[string]string {
	if len(sets) == 0 {
		return map[string]string{}
	}
	out := maps.Clone(sets[0])
	for _, s := range sets[1:] {
		maps.DeleteFunc(out, func(k, v string) bool { w, ok := s[k]; return !ok || w != v })
	}
	return out
}

// fingerprint is the alert's fingerprint as a notification shows it: a hash of its labels,
// 16 hex digits like Alertmanager's.
func fingerprint(labels map[string]string) string {
	return digest(amalert.LabelSetString(labels))[:16]
}

func digest(parts ...string) string {
	h := sha256.New()
	for _, s := range parts {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Changelog entries of a partition: one per alert, group and run-time silence.
const (
	alertPrefix   = "alert/"
	groupPrefix   = "group/"
	silencePrefix = "silence/"
)

// entries is the partition's state as changelog entries.
func (part *partition) entries() map[string]string {
	out := map[string]string{}
	put := func(key string, v any) {
		b, err := json.Marshal(v)
		if err == nil { // plain data: it always encodes
			out[key] = string(b)
		}
	}
	for fp, a := range part.st.Alerts {
		put(alertPrefix+fp, a)
	}
	for key, g := range part.st.Groups {
		put(groupPrefix+key, g)
	}
	for id, s := range part.st.Silences {
		put(silencePrefix+id, s)
	}
	return out
}

// Changes reports the entries that changed since the last call (engine.Stateful).
func (p *Processor) Changes(put func(partition int32, key string, value []byte)) {
	for _, id := range slices.Sorted(maps.Keys(p.parts)) {
		part := p.parts[id]
		now := part.entries()
		for _, key := range slices.Sorted(maps.Keys(now)) {
			if part.written[key] != now[key] {
				put(id, key, []byte(now[key]))
			}
		}
		for _, key := range slices.Sorted(maps.Keys(part.written)) {
			if _, ok := now[key]; !ok {
				put(id, key, nil)
			}
		}
		part.written = now
	}
}

// Export reports the whole state (engine.StateExporter).
func (p *Processor) Export(put func(partition int32, key string, value []byte)) {
	for _, id := range slices.Sorted(maps.Keys(p.parts)) {
		entries := p.parts[id].entries()
		for _, key := range slices.Sorted(maps.Keys(entries)) {
			put(id, key, []byte(entries[key]))
		}
	}
}

// Restore replaces the partition's state with entries (engine.Stateful).
func (p *Processor) Restore(id int32, entries map[string][]byte) error {
	st := NewState()
	for key, v := range entries {
		var err error
		switch {
		case strings.HasPrefix(key, alertPrefix):
			a := &Alert{}
			err = json.Unmarshal(v, a)
			st.Alerts[strings.TrimPrefix(key, alertPrefix)] = a
		case strings.HasPrefix(key, groupPrefix):
			g := &Group{}
			err = json.Unmarshal(v, g)
			st.Groups[strings.TrimPrefix(key, groupPrefix)] = g
		case strings.HasPrefix(key, silencePrefix):
			s := &Silence{}
			err = json.Unmarshal(v, s)
			st.Silences[strings.TrimPrefix(key, silencePrefix)] = s
		default:
			err = errors.New("not a key of this processor")
		}
		if err != nil {
			return fmt.Errorf("notify: restore partition %d: entry %q: %w", id, key, err)
		}
	}
	if err := st.ParseSilences(); err != nil {
		return fmt.Errorf("notify: restore partition %d: %w", id, err)
	}
	part := &partition{st: st}
	part.written = part.entries()
	p.d.Adopt(st, p.clock.Now())
	p.adoptSilences(st)
	p.applied = ^uint64(0) // the next step gives every partition the book's silences
	p.parts[id] = part
	return nil
}

// Drop forgets the partition (engine.Stateful).
func (p *Processor) Drop(id int32) { delete(p.parts, id) }
