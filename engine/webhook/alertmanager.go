package webhook

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/eval"
)

// The Alertmanager webhook payload, version 4, with the field names and JSON types that
// Alertmanager's notify/webhook.Message (template.Data plus version, groupKey and
// truncatedAlerts) has. The fields Alertmanager added after 0.25 (notification_reason in
// 0.32, routeLabels in 0.34) are left out: receivers written for older versions never
// read them, and newer receivers treat them as optional.
type amMessage struct {
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	Alerts            []amAlert         `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   uint64            `json:"truncatedAlerts"`
}

// amAlert is one alert of the payload (Alertmanager's template.Alert).
type amAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

const (
	statusFiring   = "firing"
	statusResolved = "resolved"
)

// errNotNotified marks alert records that Alertmanager's receivers are never sent: a
// pending alert (Prometheus sends alerts only once they fire) and the end of one that never
// fired. They are neither delivered nor dead letters: nothing is wrong with them.
var errNotNotified = errors.New("not notified")

// alertOf converts an alert record (as the threshold processor emits it) into the
// payload's alert; errNotNotified for transitions receivers never see.
func alertOf(v map[string]any, generatorURL *eval.Template, env eval.Env) (amAlert, error) {
	rule, _ := v["rule"].(string)
	fingerprint, _ := v["fingerprint"].(string)
	state, _ := v["state"].(string)
	if rule == "" || fingerprint == "" || state == "" {
		return amAlert{}, errors.New("format alertmanager sends alert records (with rule, fingerprint and state, as the threshold processor emits them); this record has not all of them")
	}
	switch state {
	case "pending":
		return amAlert{}, errNotNotified
	case statusResolved:
		if v["fired_at"] == nil {
			return amAlert{}, errNotNotified // it was pending and never fired
		}
	case statusFiring:
	default:
		return amAlert{}, fmt.Errorf("alert state %q is none of pending, firing, resolved", state)
	}
	a := amAlert{Status: state, Labels: alertLabels(v, rule), Annotations: alertAnnotations(v), Fingerprint: fingerprint}
	var err error
	if a.StartsAt, err = firstTime(v, "fired_at", "started_at", "ts"); err != nil {
		return amAlert{}, err
	}
	if state == statusResolved {
		// Alertmanager sends a firing alert's endsAt as the zero time (dispatch clears it
		// before a notification), and a resolved one's as when it ended.
		if a.EndsAt, err = firstTime(v, "resolved_at", "ts"); err != nil {
			return amAlert{}, err
		}
	}
	if generatorURL != nil {
		if a.GeneratorURL, err = generatorURL.Render(env); err != nil {
			return amAlert{}, err
		}
	}
	return a, nil
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

// groupLabels are the values of the group_by labels that a's labels have.
func groupLabels(a amAlert, groupBy []string) map[string]string {
	out := map[string]string{}
	for _, name := range groupBy {
		if v, ok := a.Labels[name]; ok {
			out[name] = v
		}
	}
	return out
}

// newMessage is the payload of alerts, one group: its status is firing while any alert
// fires, its common labels and annotations those every alert has with the same value.
func newMessage(c *Config, group map[string]string, alerts []amAlert) amMessage {
	m := amMessage{
		// Alertmanager quotes the receiver name for regular expressions; so does this.
		Receiver:          regexp.QuoteMeta(c.Receiver),
		Status:            statusResolved,
		Alerts:            alerts,
		GroupLabels:       group,
		CommonLabels:      common(alerts, func(a amAlert) map[string]string { return a.Labels }),
		CommonAnnotations: common(alerts, func(a amAlert) map[string]string { return a.Annotations }),
		ExternalURL:       c.ExternalURL,
		Version:           "4",
		// The engine has one route, the root, whose key Alertmanager writes as {}.
		GroupKey: "{}:" + labelSetString(group),
	}
	for _, a := range alerts {
		if a.Status == statusFiring {
			m.Status = statusFiring
		}
	}
	return m
}

// common is the pairs that every alert's set (labels or annotations) has.
func common(alerts []amAlert, set func(amAlert) map[string]string) map[string]string {
	out := map[string]string{}
	if len(alerts) == 0 {
		return out
	}
	maps.Copy(out, set(alerts[0]))
	for _, a := range alerts[1:] {
		other := set(a)
		maps.DeleteFunc(out, func(k, v string) bool { w, ok := other[k]; return !ok || w != v })
	}
	return out
}

// labelSetString writes labels as Prometheus writes a label set: {a="1", b="2"}, sorted by
// name, values quoted as Go strings.
func labelSetString(labels map[string]string) string {
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

// isAlert reports whether a record looks like an alert: it has the fields that identify
// one alert transition.
func isAlert(rec *engine.Record) bool {
	for _, f := range []string{"fingerprint", "state", "ts"} {
		if s, _ := rec.Value[f].(string); s == "" {
			return false
		}
	}
	return true
}
