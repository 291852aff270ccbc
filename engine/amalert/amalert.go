// Package amalert converts the engine's alert records (the threshold processor's) into
// Alertmanager's alerts: labels as Prometheus gives them (the series' values, the rule's
// labels, severity, alertname = the rule), annotations with the message as summary, and
// the times. The webhook and alertmanager outputs and the notify processor share it, so that
// an alert has the same labels wherever it goes.
package amalert

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/engine/types"

	"github.com/eventops/eventops-engine/engine/eval"
)

// Alert is one alert as Alertmanager hands it to its receivers (its template.Alert): the
// shape of the alerts of a webhook notification.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// ErrNotNotified marks alert records that Alertmanager's receivers are never sent: a
// pending alert (Prometheus sends alerts only once they fire) and the end of one that never
// fired. They are neither delivered nor dead letters: nothing is wrong with them.
var ErrNotNotified = errors.New("not notified")

// Of converts an alert record (as the threshold processor emits it) into Alertmanager's
// alert; ErrNotNotified for transitions receivers never see.
func Of(v map[string]any, generatorURL *eval.Template, env eval.Env) (Alert, error) {
	if _, isIncident := v["incident_id"]; isIncident && v["rule"] == nil {
		return withGeneratorURL(incidentOf(v))(generatorURL, env)
	}
	rule, _ := v["rule"].(string)
	fingerprint, _ := v["fingerprint"].(string)
	state, _ := v["state"].(string)
	if rule == "" || fingerprint == "" || state == "" {
		return Alert{}, errors.New("format alertmanager sends alert records (with rule, fingerprint and state, as the threshold processor emits them); this record has not all of them")
	}
	switch state {
	case "pending":
		return Alert{}, ErrNotNotified
	case StatusResolved:
		if v["fired_at"] == nil {
			return Alert{}, ErrNotNotified // it was pending and never fired
		}
	case StatusFiring:
	default:
		return Alert{}, fmt.Errorf("alert state %q is none of pending, firing, resolved", state)
	}
	a := Alert{Status: state, Labels: alertLabels(v, rule), Annotations: alertAnnotations(v), Fingerprint: fingerprint}
	var err error
	if a.StartsAt, err = firstTime(v, "fired_at", "started_at", "ts"); err != nil {
		return Alert{}, err
	}
	if state == StatusResolved {
		// Alertmanager sends a firing alert's endsAt as the zero time (dispatch clears it
		// before a notification), and a resolved one's as when it ended.
		if a.EndsAt, err = firstTime(v, "resolved_at", "ts"); err != nil {
			return Alert{}, err
		}
	}
	return withGeneratorURL(a, nil)(generatorURL, env)
}

// withGeneratorURL renders a's generator URL, unless err.
func withGeneratorURL(a Alert, err error) func(*eval.Template, eval.Env) (Alert, error) {
	return func(generatorURL *eval.Template, env eval.Env) (Alert, error) {
		if err != nil || generatorURL == nil {
			return a, err
		}
		a.GeneratorURL, err = generatorURL.Render(env)
		return a, err
	}
}

// incidentOf converts an incident record (the correlate processor's) into one alert: alertname
// incident, firing while the incident is open, resolved once it resolved or merged into
// another; labelled with its id and root cause (also as source_id), critical when it holds more
// than one alert or a critical one, else its members' highest severity; the title as summary and
// the evidence as an annotation.
func incidentOf(v map[string]any) (Alert, error) {
	id, _ := v["incident_id"].(string)
	state, _ := v["state"].(string)
	if id == "" || state == "" {
		return Alert{}, errors.New("an incident record has incident_id and state; this one has not both")
	}
	a := Alert{Status: StatusFiring, Fingerprint: id, Labels: map[string]string{"alertname": "incident", "incident_id": id}, Annotations: map[string]string{}}
	setLabel(a.Labels, "root_cause", v["root_cause"])
	setLabel(a.Labels, "source_id", v["root_cause"])
	setLabel(a.Labels, "tenant_id", v["tenant_id"])
	a.Labels["severity"] = incidentSeverity(v)
	setLabel(a.Annotations, "summary", v["title"])
	setLabel(a.Annotations, "evidence", evidenceText(v["evidence"]))
	var err error
	if a.StartsAt, err = firstTime(v, "opened_at", "ts"); err != nil {
		return Alert{}, err
	}
	if state != "open" {
		a.Status = StatusResolved
		a.EndsAt, err = firstTime(v, "resolved_at", "updated_at", "ts")
	}
	return a, err
}

var severityRank = map[string]int{"info": 1, "warning": 2, "critical": 3}

func incidentSeverity(v map[string]any) string {
	members, _ := v["members"].([]any)
	best := ""
	for _, m := range members {
		mv, _ := m.(map[string]any)
		if s, _ := mv["severity"].(string); severityRank[s] > severityRank[best] {
			best = s
		}
	}
	if len(members) > 1 || best == "" {
		return "critical"
	}
	return best
}

// evidenceText writes an incident's evidence as "web: web → api → db; worker: worker → db".
func evidenceText(v any) string {
	items, _ := v.([]any)
	var parts []string
	for _, item := range items {
		e, _ := item.(map[string]any)
		path, _ := e["path"].([]any)
		var nodes []string
		for _, n := range path {
			nodes = append(nodes, eval.Text(n))
		}
		parts = append(parts, eval.Text(e["symptom"])+": "+strings.Join(nodes, " → "))
	}
	return strings.Join(parts, "; ")
}

// alertLabels are an alert's labels as Prometheus gives them to Alertmanager: the series'
// values, the rule's labels over them, then severity and alertname (the rule's name).
func alertLabels(v map[string]any, rule string) map[string]string {
	labels := map[string]string{}
	series, _ := v["series"].(map[string]any)
	for _, src := range slices.Sorted(maps.Keys(series)) {
		setLabel(labels, seriesLabelName(src, labels), series[src])
	}
	ruleLabels, _ := v["labels"].(map[string]any)
	for name, value := range ruleLabels {
		setLabel(labels, name, value)
	}
	setLabel(labels, "severity", v["severity"])
	labels["alertname"] = rule
	return labels
}

// setLabel sets a label to a value's text; an empty value is no label, as in Prometheus.
func setLabel(labels map[string]string, name string, value any) {
	if s := eval.Text(value); s != "" {
		labels[name] = s
	}
}

var notLabelChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// seriesLabelName names the label of a series expression: a field path's last part
// (source.source_id gives source_id) unless an earlier series took that name; else the
// expression with every character a label name cannot have replaced by _.
func seriesLabelName(src string, taken map[string]string) string {
	if path := eval.FieldPath(src); path != nil {
		if name := path[len(path)-1]; taken[name] == "" {
			return name
		}
	}
	name := notLabelChars.ReplaceAllString(src, "_")
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		name = "_" + name
	}
	return name
}

// alertAnnotations are the rule's annotations, with the alert's message as summary
// (Prometheus' conventional short description) unless the rule sets one.
func alertAnnotations(v map[string]any) map[string]string {
	annotations := map[string]string{}
	rec, _ := v["annotations"].(map[string]any)
	for name, value := range rec {
		annotations[name] = eval.Text(value)
	}
	if _, set := annotations["summary"]; !set {
		if msg := eval.Text(v["message"]); msg != "" {
			annotations["summary"] = msg
		}
	}
	return annotations
}

// firstTime is the first of the fields that is set, as a time.
func firstTime(v map[string]any, fields ...string) (time.Time, error) {
	for _, f := range fields {
		switch x := v[f].(type) {
		case nil:
			continue
		case time.Time:
			return x.UTC(), nil
		case string:
			t, err := time.Parse(time.RFC3339Nano, x)
			if err != nil {
				return time.Time{}, fmt.Errorf("%s: %w", f, err)
			}
			return t.UTC(), nil
		default:
			return time.Time{}, fmt.Errorf("%s is %T, want an RFC 3339 time", f, x)
		}
	}
	return time.Time{}, fmt.Errorf("none of %s is set", strings.Join(fields, ", "))
}

// LabelSetString writes labels as Prometheus writes a label set: {a="1", b="2"}, sorted by
// name, values quoted as Go strings.
func LabelSetString(labels map[string]string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, name := range slices.Sorted(maps.Keys(labels)) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(labels[name]))
	}
	b.WriteByte('}')
	return b.String()
}

// LabelNames are the names of the labels an alert can have whose series expressions are
// series and whose rules set the labels ruleLabels: what Of gives them.
func LabelNames(series, ruleLabels []string) []string {
	taken := map[string]string{}
	for _, src := range slices.Sorted(slices.Values(series)) {
		taken[seriesLabelName(src, taken)] = src
	}
	for _, name := range ruleLabels {
		taken[name] = name
	}
	taken["severity"], taken["alertname"] = "severity", "alertname"
	return slices.Sorted(maps.Keys(taken))
}

// RecordFields are the fields Of needs in an alert record.
var RecordFields = []string{"rule", "fingerprint", "state"}

// MissingFields are the RecordFields that records of type in lack: what makes them no alert
// records. Nil when the type is not known, or is the correlate processor's incident records
// (incident_id and state), which Of takes too.
func MissingFields(in *types.Type) []string {
	if in.IsUnknown() {
		return nil
	}
	_, id := in.Field("incident_id")
	_, state := in.Field("state")
	if id && state {
		return nil
	}
	var missing []string
	for _, f := range RecordFields {
		if _, ok := in.Field(f); !ok {
			missing = append(missing, f)
		}
	}
	return missing
}
