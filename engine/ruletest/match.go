package ruletest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/engine/codec"
	"github.com/eventops/eventops-engine/engine/runtime"
)

// cursor is where the previous expectation left off: records per topic and rejections.
type cursor struct {
	records  map[string]int
	rejected int
}

// verify checks one expectation at time at, and moves since on.
func (s *Suite) verify(v *runtime.Virtual, e Expectation, ep string, at time.Time, since *cursor) []Failure {
	var out []Failure
	when := at.UTC().Format(time.RFC3339Nano)
	if e.Alerts != nil {
		if diff := diffAlerts(*e.Alerts, activeAlerts(v)); diff != "" {
			out = append(out, Failure{Pos: s.pos.Of(ep + ".alerts"), What: "alerts active at " + when, Diff: diff})
		}
	}
	if since.records == nil {
		since.records = map[string]int{}
	}
	for _, topic := range slices.Sorted(maps.Keys(e.Records)) {
		msgs := v.Messages(topic)[since.records[topic]:]
		if diff := diffRecords(e.Records[topic], msgs); diff != "" {
			out = append(out, Failure{Pos: s.pos.Of(ep + ".records." + topic), What: fmt.Sprintf("records written to %s by %s", topic, when), Diff: diff})
		}
	}
	if e.Notifications != nil {
		if diff := diffNotifications(*e.Notifications, s.notificationsSince(v, since)); diff != "" {
			out = append(out, Failure{Pos: s.pos.Of(ep + ".notifications"), What: "notifications sent by " + when, Diff: diff})
		}
	}
	for _, topic := range v.Topics() {
		since.records[topic] = len(v.Messages(topic))
	}
	rejected := v.Rejected()[since.rejected:]
	since.rejected = len(v.Rejected())
	if e.DeadLetter != nil {
		if diff := diffRejected(*e.DeadLetter, rejected); diff != "" {
			out = append(out, Failure{Pos: s.pos.Of(ep + ".dead_letter"), What: "records rejected by " + when, Diff: diff})
		}
	}
	return out
}

// activeAlerts are the alerts pending or firing now: the newest record of each fingerprint,
// in the order the alerts started.
func activeAlerts(v *runtime.Virtual) []map[string]any {
	latest := map[string]map[string]any{}
	var order []string
	for _, a := range v.Alerts() {
		fp, _ := a.Record.Value["fingerprint"].(string)
		if _, seen := latest[fp]; !seen {
			order = append(order, fp)
		}
		latest[fp] = a.Record.Value
	}
	var out []map[string]any
	for _, fp := range order {
		if st := latest[fp]["state"]; st == "pending" || st == "firing" {
			out = append(out, latest[fp])
		}
	}
	return out
}

func (a AlertExpectation) matches(got map[string]any) bool {
	str := func(k string) string { s, _ := got[k].(string); return s }
	switch {
	case a.Rule != "" && a.Rule != str("rule"),
		a.State != "" && a.State != str("state"),
		a.Severity != "" && a.Severity != str("severity"),
		a.Message != nil && *a.Message != str("message"):
		return false
	}
	if a.Labels != nil && !exactMatch(a.Labels, orEmpty(got["labels"])) {
		return false
	}
	for k, want := range a.fields() {
		if !partialMatch(jsonable(want), got[k]) {
			return false
		}
	}
	return true
}

func orEmpty(v any) any {
	if v == nil {
		return map[string]any{}
	}
	return v
}

// diffAlerts pairs each expected alert with an active one it matches (in order, first
// match) and reports what is left on either side.
func diffAlerts(want []AlertExpectation, got []map[string]any) string {
	used := make([]bool, len(got))
	var missing []AlertExpectation
	for _, w := range want {
		found := false
		for i, g := range got {
			if !used[i] && w.matches(g) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			missing = append(missing, w)
		}
	}
	var extra []map[string]any
	for i, g := range got {
		if !used[i] {
			extra = append(extra, g)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return ""
	}
	var b strings.Builder
	for _, m := range missing {
		fmt.Fprintf(&b, "  - want  %s   (no active alert matches it)\n", m.describe())
		// Say where the nearest candidate differs: an unmatched alert of the same rule.
		for _, g := range extra {
			if m.Rule == "" || m.Rule == g["rule"] {
				fmt.Fprintf(&b, "          nearest: %s\n", strings.Join(m.mismatches(g), "; "))
				break
			}
		}
	}
	for _, g := range extra {
		fmt.Fprintf(&b, "  + got   %s   (not expected)\n", describeAlert(g))
	}
	fmt.Fprintf(&b, "  active alerts (%d):", len(got))
	if len(got) == 0 {
		b.WriteString(" none")
	}
	for _, g := range got {
		fmt.Fprintf(&b, "\n      %s", describeAlert(g))
	}
	return b.String()
}

// mismatches says which of the fields given differ in got.
func (a AlertExpectation) mismatches(got map[string]any) []string {
	var out []string
	field := func(name, want string) {
		if want != "" && want != got[name] {
			out = append(out, fmt.Sprintf("%s: want %q, got %s", name, want, compactJSON(got[name])))
		}
	}
	field("rule", a.Rule)
	field("state", a.State)
	field("severity", a.Severity)
	if a.Message != nil && *a.Message != got["message"] {
		out = append(out, fmt.Sprintf("message: want %q, got %s", *a.Message, compactJSON(got["message"])))
	}
	if a.Labels != nil && !exactMatch(a.Labels, orEmpty(got["labels"])) {
		out = append(out, fmt.Sprintf("labels: want %s, got %s", compactJSON(jsonable(a.Labels)), compactJSON(got["labels"])))
	}
	fields := a.fields()
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if d := mismatch(jsonable(fields[k]), got[k], k); d != "" {
			out = append(out, d)
		}
	}
	return out
}

// mismatch is where a partial match of want against got fails first ("path: want X, got
// Y"), or "" when it matches.
func mismatch(want, got any, path string) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: want an object, got %s", path, compactJSON(got))
		}
		for _, k := range slices.Sorted(maps.Keys(w)) {
			gv, present := g[k]
			sub := strings.TrimPrefix(path+"."+k, ".")
			switch {
			case w[k] == nil && present && gv != nil:
				return fmt.Sprintf("%s: want null, got %s", sub, compactJSON(gv))
			case w[k] == nil:
			case !present:
				return fmt.Sprintf("%s: want %s, got nothing", sub, compactJSON(w[k]))
			default:
				if d := mismatch(w[k], gv, sub); d != "" {
					return d
				}
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: want %s, got %s", path, compactJSON(w), compactJSON(got))
		}
		for i := range w {
			if d := mismatch(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	}
	if !scalarEqual(want, got) {
		return fmt.Sprintf("%s: want %s, got %s", path, compactJSON(want), compactJSON(got))
	}
	return ""
}

func (a AlertExpectation) describe() string {
	var parts []string
	add := func(k string, v any) { parts = append(parts, k+": "+compactJSON(v)) }
	if a.Rule != "" {
		add("rule", a.Rule)
	}
	if a.State != "" {
		add("state", a.State)
	}
	if a.Severity != "" {
		add("severity", a.Severity)
	}
	if a.Labels != nil {
		add("labels", jsonable(a.Labels))
	}
	if a.Message != nil {
		add("message", *a.Message)
	}
	fields := a.fields()
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		add(k, jsonable(fields[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// describeAlert shows the fields of an alert a test usually states.
func describeAlert(g map[string]any) string {
	var parts []string
	for _, k := range []string{"rule", "state", "severity", "source_id", "labels", "message", "value", "started_at"} {
		if v, ok := g[k]; ok && v != nil {
			parts = append(parts, k+": "+compactJSON(v))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// diffRecords compares the records written to a topic with the expected ones, in order.
func diffRecords(want []RecordExpectation, got []runtime.Message) string {
	var b strings.Builder
	for i := 0; i < max(len(want), len(got)); i++ {
		switch {
		case i >= len(got):
			fmt.Fprintf(&b, "  - want[%d]  %s   (not written)\n", i, want[i].describe())
		case i >= len(want):
			fmt.Fprintf(&b, "  + got[%d]   %s   (not expected)\n", i, describeMessage(got[i]))
		case !want[i].matches(got[i]):
			fmt.Fprintf(&b, "  - want[%d]  %s\n  + got[%d]   %s\n", i, want[i].describe(), i, describeMessage(got[i]))
			if d := want[i].mismatch(got[i]); d != "" {
				fmt.Fprintf(&b, "          differs at %s\n", d)
			}
		}
	}
	if b.Len() == 0 {
		return ""
	}
	fmt.Fprintf(&b, "  (%d expected, %d written)", len(want), len(got))
	return b.String()
}

func (r RecordExpectation) matches(m runtime.Message) bool {
	if r.Key != nil && *r.Key != string(m.Key) {
		return false
	}
	for k, want := range r.Headers {
		if got, ok := m.Header(k); !ok || got != want {
			return false
		}
	}
	if r.Value == nil {
		return true
	}
	got, ok := decodeJSON(m.Value)
	if !ok {
		return false
	}
	if r.Match == "exact" {
		return exactMatch(r.Value, got)
	}
	return partialMatch(jsonable(r.Value), got)
}

// mismatch says where the record differs from the expectation.
func (r RecordExpectation) mismatch(m runtime.Message) string {
	if r.Key != nil && *r.Key != string(m.Key) {
		return fmt.Sprintf("key: want %q, got %q", *r.Key, m.Key)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Headers)) {
		if got, ok := m.Header(k); !ok || got != r.Headers[k] {
			return fmt.Sprintf("header %s: want %q, got %q", k, r.Headers[k], got)
		}
	}
	got, ok := decodeJSON(m.Value)
	if !ok {
		return "value: not JSON"
	}
	if r.Match == "exact" {
		return "value (exact match)"
	}
	return mismatch(jsonable(r.Value), got, "value")
}

func (r RecordExpectation) describe() string {
	var parts []string
	if r.Key != nil {
		parts = append(parts, "key: "+compactJSON(*r.Key))
	}
	if r.Value != nil {
		parts = append(parts, "value: "+compactJSON(jsonable(r.Value)))
	}
	if r.Match == "exact" {
		parts = append(parts, "match: exact")
	}
	for _, k := range slices.Sorted(maps.Keys(r.Headers)) {
		parts = append(parts, fmt.Sprintf("header %s: %q", k, r.Headers[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func describeMessage(m runtime.Message) string {
	val := string(m.Value)
	if v, ok := decodeJSON(m.Value); ok {
		val = compactJSON(v)
	}
	if m.Key != nil {
		return fmt.Sprintf("{key: %q, value: %s}", m.Key, val)
	}
	return "{value: " + val + "}"
}

// diffRejected compares the rejected records with the expected ones, in order.
func diffRejected(want []DeadLetterExpectation, got []runtime.Rejection) string {
	var b strings.Builder
	for i := 0; i < max(len(want), len(got)); i++ {
		switch {
		case i >= len(got):
			fmt.Fprintf(&b, "  - want[%d]  %s   (not rejected)\n", i, want[i].describe())
		case i >= len(want):
			fmt.Fprintf(&b, "  + got[%d]   %s   (not expected)\n", i, describeRejection(got[i]))
		case !want[i].matches(got[i]):
			fmt.Fprintf(&b, "  - want[%d]  %s\n  + got[%d]   %s\n", i, want[i].describe(), i, describeRejection(got[i]))
		}
	}
	if b.Len() == 0 {
		return ""
	}
	fmt.Fprintf(&b, "  (%d expected, %d rejected)", len(want), len(got))
	return b.String()
}

func (d DeadLetterExpectation) matches(r runtime.Rejection) bool {
	reason := ""
	if r.Err != nil {
		reason = r.Err.Error()
	}
	switch {
	case d.Topic != "" && d.Topic != r.To,
		d.Stage != "" && d.Stage != r.Stage,
		d.Reason != "" && !strings.Contains(reason, d.Reason),
		d.Late != nil && *d.Late != r.Late:
		return false
	}
	if d.Value == nil {
		return true
	}
	var got any
	if r.Record != nil {
		if r.Record.Value != nil {
			got = jsonable(r.Record.Value)
		} else if v, ok := decodeJSON(r.Record.Raw); ok {
			got = v
		}
	}
	return partialMatch(jsonable(d.Value), got)
}

func (d DeadLetterExpectation) describe() string {
	var parts []string
	if d.Topic != "" {
		parts = append(parts, "topic: "+d.Topic)
	}
	if d.Stage != "" {
		parts = append(parts, "stage: "+d.Stage)
	}
	if d.Reason != "" {
		parts = append(parts, fmt.Sprintf("reason contains %q", d.Reason))
	}
	if d.Late != nil {
		parts = append(parts, fmt.Sprintf("late: %v", *d.Late))
	}
	if d.Value != nil {
		parts = append(parts, "value: "+compactJSON(jsonable(d.Value)))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func describeRejection(r runtime.Rejection) string {
	reason := ""
	if r.Err != nil {
		reason = r.Err.Error()
	}
	val := ""
	if r.Record != nil {
		val = string(r.Record.Raw)
		if v, ok := decodeJSON(r.Record.Raw); ok {
			val = compactJSON(v)
		}
	}
	return fmt.Sprintf("{topic: %s, stage: %s, late: %v, reason: %q, value: %s}", r.To, r.Stage, r.Late, reason, val)
}

func decodeJSON(b []byte) (any, bool) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return normalizeNumbers(v), true
}

// normalizeNumbers turns json.Number into float64, as YAML numbers are compared.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
	}
	return v
}

// partialMatch: every field of want is in got with a matching value (recursively); a field
// wanted null may also be missing; lists match element by element and must have the same
// length; numbers compare as numbers and times as instants.
func partialMatch(want, got any) bool { return match(jsonable(want), got, false) }

// exactMatch: the same value, with numbers as numbers and times as instants.
func exactMatch(want, got any) bool { return match(jsonable(want), got, true) }

func match(want, got any, exact bool) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || exact && len(g) != len(w) {
			return false
		}
		for k, wv := range w {
			gv, present := g[k]
			if wv == nil && !exact {
				if present && gv != nil {
					return false
				}
				continue
			}
			if !present || !match(wv, gv, exact) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !match(w[i], g[i], exact) {
				return false
			}
		}
		return true
	}
	return scalarEqual(want, got)
}

func scalarEqual(want, got any) bool {
	if wf, ok := number(want); ok {
		gf, ok := number(got)
		return ok && wf == gf
	}
	if ws, ok := want.(string); ok {
		gs, ok := got.(string)
		if !ok {
			return false
		}
		if ws == gs {
			return true
		}
		wt, err1 := time.Parse(time.RFC3339Nano, ws)
		gt, err2 := time.Parse(time.RFC3339Nano, gs)
		return err1 == nil && err2 == nil && wt.Equal(gt)
	}
	return want == got
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// notificationsSince are the notification records written since the previous expectation,
// topic by topic.
func (s *Suite) notificationsSince(v *runtime.Virtual, since *cursor) []map[string]any {
	var out []map[string]any
	for _, topic := range s.notificationTopics {
		for _, m := range v.Messages(topic)[since.records[topic]:] {
			if n, err := codec.DecodeObject(m.Value); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// notificationSummary is what a NotificationExpectation compares of a notification.
func notificationSummary(n map[string]any) NotificationExpectation {
	out := NotificationExpectation{GroupLabels: map[string]string{}}
	out.Receiver, _ = n["receiver"].(string)
	out.Status, _ = n["status"].(string)
	if g, ok := n["groupLabels"].(map[string]any); ok {
		for k, v := range g {
			out.GroupLabels[k], _ = v.(string)
		}
	}
	firing, resolved := []string{}, []string{}
	alerts, _ := n["alerts"].([]any)
	for _, a := range alerts {
		am, _ := a.(map[string]any)
		labels, _ := am["labels"].(map[string]any)
		name := fmt.Sprintf("%v/%v", labels["alertname"], labels["source_id"])
		if am["status"] == "resolved" {
			resolved = append(resolved, name)
		} else {
			firing = append(firing, name)
		}
	}
	out.Firing, out.Resolved = &firing, &resolved
	return out
}

// diffNotifications compares notifications with what is expected of them ("" when they
// match): the same number, and each given field equal.
func diffNotifications(want []NotificationExpectation, got []map[string]any) string {
	var b strings.Builder
	for i := range max(len(want), len(got)) {
		var g NotificationExpectation
		if i < len(got) {
			g = notificationSummary(got[i])
		}
		switch {
		case i >= len(got):
			fmt.Fprintf(&b, "  - want[%d]  %s\n  + got      nothing\n", i, describeNotification(want[i]))
		case i >= len(want):
			fmt.Fprintf(&b, "  + got[%d]   %s (not expected)\n", i, describeNotification(g))
		case !notificationMatches(want[i], g):
			fmt.Fprintf(&b, "  - want[%d]  %s\n  + got[%d]   %s\n", i, describeNotification(want[i]), i, describeNotification(g))
		}
	}
	if b.Len() == 0 {
		return ""
	}
	fmt.Fprintf(&b, "  (%d expected, %d sent)", len(want), len(got))
	return b.String()
}

func notificationMatches(w, g NotificationExpectation) bool {
	return (w.Receiver == "" || w.Receiver == g.Receiver) && (w.Status == "" || w.Status == g.Status) &&
		(w.GroupLabels == nil || maps.Equal(w.GroupLabels, g.GroupLabels)) &&
		(w.Firing == nil || slices.Equal(*w.Firing, *g.Firing)) && (w.Resolved == nil || slices.Equal(*w.Resolved, *g.Resolved))
}

func describeNotification(n NotificationExpectation) string {
	var parts []string
	if n.Receiver != "" {
		parts = append(parts, "receiver: "+n.Receiver)
	}
	if n.Status != "" {
		parts = append(parts, "status: "+n.Status)
	}
	if len(n.GroupLabels) > 0 {
		parts = append(parts, fmt.Sprintf("group_labels: %v", n.GroupLabels))
	}
	if n.Firing != nil {
		parts = append(parts, fmt.Sprintf("firing: %v", *n.Firing))
	}
	if n.Resolved != nil {
		parts = append(parts, fmt.Sprintf("resolved: %v", *n.Resolved))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
