package webhook

import (
	"maps"
	"regexp"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/amalert"
)

// The Alertmanager webhook payload, version 4, with the field names and JSON types that
// Alertmanager's notify/webhook.Message (template.Data plus version, groupKey and
// truncatedAlerts) has. The fields Alertmanager added after 0.25 (notification_reason in
// 0.32, routeLabels in 0.34) are left out: receivers written for older versions never
// read them, and newer receivers treat them as optional.
type amMessage struct {
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	Alerts            []amalert.Alert   `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   uint64            `json:"truncatedAlerts"`
}

// groupLabels are the values of the group_by labels that a's labels have.
func groupLabels(a amalert.Alert, groupBy []string) map[string]string {
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
func newMessage(c *Config, group map[string]string, alerts []amalert.Alert) amMessage {
	m := amMessage{
		// Alertmanager quotes the receiver name for regular expressions; so does this.
		Receiver:          regexp.QuoteMeta(c.Receiver),
		Status:            amalert.StatusResolved,
		Alerts:            alerts,
		GroupLabels:       group,
		CommonLabels:      common(alerts, func(a amalert.Alert) map[string]string { return a.Labels }),
		CommonAnnotations: common(alerts, func(a amalert.Alert) map[string]string { return a.Annotations }),
		ExternalURL:       c.ExternalURL,
		Version:           "4",
		// The engine has one route, the root, whose key Alertmanager writes as {}.
		GroupKey: "{}:" + amalert.LabelSetString(group),
	}
	for _, a := range alerts {
		if a.Status == amalert.StatusFiring {
			m.Status = amalert.StatusFiring
		}
	}
	return m
}

// common is the pairs that every alert's set (labels or annotations) has.
func common(alerts []amalert.Alert, set func(amalert.Alert) map[string]string) map[string]string {
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
