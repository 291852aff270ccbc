package notify

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/engine/amalert"
)

// Alert is one alert as the dispatcher sees it: Alertmanager's alert.
type Alert struct {
	Fingerprint  string            `json:"fingerprint"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"starts_at"`
	EndsAt       time.Time         `json:"ends_at,omitzero"` // zero while it fires
	GeneratorURL string            `json:"generator_url,omitempty"`
}

// Resolved says whether the alert has ended.
func (a *Alert) Resolved() bool { return !a.EndsAt.IsZero() }

// InhibitRule mutes the alerts matching Target while an alert matching Source fires with
// the same values of the Equal labels (a missing label is the value ""). An alert never
// mutes itself.
type InhibitRule struct {
	Source, Target Matchers
	Equal          []string
}

// Silence mutes the alerts its matchers select from StartsAt until EndsAt.
type Silence struct {
	ID        string    `json:"id"`
	Matchers  Matchers  `json:"-"`
	Raw       []string  `json:"matchers"` // the matchers as written, for the state and the API
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	CreatedBy string    `json:"created_by,omitempty"`
	Comment   string    `json:"comment,omitempty"`
}

// Active says whether the silence mutes at now.
func (s *Silence) Active(now time.Time) bool {
	return !now.Before(s.StartsAt) && now.Before(s.EndsAt)
}

// Receiver is where a route's notifications go; what the dispatcher needs of it.
type Receiver struct {
	Name string
	// SendResolved says whether notifications carry the alerts that ended.
	SendResolved bool
}

// Dispatcher is the compiled configuration: the routing tree, the receivers, the
// inhibition rules and the silences written in the configuration.
type Dispatcher struct {
	Root      *Route
	Receivers map[string]Receiver
	Inhibit   []InhibitRule
	// Symptoms names, by alert fingerprint, the open incident an alert is a symptom of
	// (inhibit_symptoms): such an alert is muted while it is. The processor sets it from
	// the incidents it reads before each step.
	Symptoms map[string]string
	// Silences are those of the configuration; the State holds those made at run time.
	Silences []*Silence
	routes   map[string]*Route
}

// NewDispatcher indexes the routes of root by ID.
func NewDispatcher(root *Route, receivers map[string]Receiver, inhibit []InhibitRule, silences []*Silence) *Dispatcher {
	d := &Dispatcher{Root: root, Receivers: receivers, Inhibit: inhibit, Silences: silences, routes: map[string]*Route{}}
	root.Walk(func(r *Route) { d.routes[r.ID] = r })
	return d
}

// State is what the dispatcher keeps between steps: plain data, checkpointed with the
// stream's state, so that a restart neither repeats nor skips a notification.
type State struct {
	// Alerts are the alerts some group still holds, by fingerprint.
	Alerts map[string]*Alert `json:"alerts"`
	// Groups are the aggregation groups, by group key.
	Groups map[string]*Group `json:"groups"`
	// Silences are the silences made at run time (the API), by ID.
	Silences map[string]*Silence `json:"silences,omitempty"`

	// mutes is what mutes each alert as the last Step computed it at mutesAt: the API's view
	// of the alerts reads it instead of computing it again.
	mutes   map[string]*mute
	mutesAt time.Time
}

// NewState is the state of a dispatcher that has seen nothing.
func NewState() *State {
	return &State{Alerts: map[string]*Alert{}, Groups: map[string]*Group{}, Silences: map[string]*Silence{}}
}

// Group is an aggregation group: the alerts of one route with the same group labels,
// notified together.
type Group struct {
	Key      string            `json:"key"`
	Route    string            `json:"route"`
	Receiver string            `json:"receiver"`
	Labels   map[string]string `json:"labels"`
	// Alerts are the fingerprints of the group's alerts.
	Alerts []string `json:"alerts"`
	// NextFlush is when the group is looked at next: group_wait after it was made, then
	// every group_interval.
	NextFlush time.Time `json:"next_flush"`
	// Log is the notification log's entry of the group: what it last sent, and when; nil
	// before the first notification.
	Log *LogEntry `json:"log,omitempty"`
}

// LogEntry is what a group last notified: the alerts firing and resolved, and when.
type LogEntry struct {
	At       time.Time `json:"at"`
	Firing   []string  `json:"firing"`
	Resolved []string  `json:"resolved,omitempty"`
}

// Notification is what one group sends its receiver at one flush.
type Notification struct {
	Receiver    string
	GroupKey    string
	GroupLabels map[string]string
	// Alerts are the group's firing alerts, then (if the receiver wants them) those that
	// ended, each sorted by labels.
	Alerts []Alert
}

// Firing says whether any alert of the notification fires (Alertmanager's status).
func (n Notification) Firing() bool {
	for i := range n.Alerts {
		if !n.Alerts[i].Resolved() {
			return true
		}
	}
	return false
}

// Step takes the alert transitions in (in order) into st, then flushes every group that is
// due at now, and returns the notifications to send. It is a function of (state, input,
// now): tests step the clock instead of waiting.
func (d *Dispatcher) Step(st *State, in []Alert, now time.Time) []Notification {
	for i := range in {
		d.receive(st, in[i], now)
	}
	var out []Notification
	st.mutes = nil // the alerts (and silences) may have changed since it was computed
	muted := d.mutesAt(st, now)
	for _, key := range slices.Sorted(maps.Keys(st.Groups)) {
		g := st.Groups[key]
		if g.NextFlush.After(now) {
			continue
		}
		if n, ok := d.flush(st, g, muted, now); ok {
			out = append(out, n)
		}
	}
	st.collect()
	return out
}

// Adopt fits a restored state to this dispatcher, whose routes may differ from those that
// made it (a reload changed the tree): a group whose route no longer exists, or now names
// another receiver, is dissolved and its alerts routed again into new groups, which notify
// after their group_wait; other groups keep their notification log.
func (d *Dispatcher) Adopt(st *State, now time.Time) {
	var homeless []string
	for key, g := range st.Groups {
		if r, ok := d.routes[g.Route]; ok && r.Receiver == g.Receiver {
			continue
		}
		homeless = append(homeless, g.Alerts...)
		delete(st.Groups, key)
	}
	slices.Sort(homeless)
	for _, fp := range slices.Compact(homeless) {
		if a := st.Alerts[fp]; a != nil {
			d.receive(st, *a, now)
		}
	}
}

// receive puts an alert transition into its groups, making those that do not exist.
func (d *Dispatcher) receive(st *State, a Alert, now time.Time) {
	st.Alerts[a.Fingerprint] = &a
	for _, r := range d.Root.Match(a.Labels) {
		labels := r.groupLabels(a.Labels)
		key := r.groupKey(labels)
		g := st.Groups[key]
		if g == nil {
			g = &Group{Key: key, Route: r.ID, Receiver: r.Receiver, Labels: labels, NextFlush: now.Add(r.GroupWait)}
			st.Groups[key] = g
		}
		if i, found := slices.BinarySearch(g.Alerts, a.Fingerprint); !found { // kept sorted
			g.Alerts = slices.Insert(g.Alerts, i, a.Fingerprint)
		}
	}
}

// flush decides whether g notifies now (Alertmanager's notification log rule: something
// new fires, something notified as firing ended, or repeat_interval passed while alerts
// fire), records what it sends, drops its ended alerts, and schedules its next look.
func (d *Dispatcher) flush(st *State, g *Group, muted map[string]*mute, now time.Time) (Notification, bool) {
	r := d.routes[g.Route]
	recv := d.Receivers[g.Receiver]
	var firing, resolved []string
	for _, fp := range g.Alerts {
		a := st.Alerts[fp]
		switch {
		case a == nil:
		case a.Resolved():
			resolved = append(resolved, fp)
		case muted[fp] == nil:
			firing = append(firing, fp)
		}
	}
	g.NextFlush = now.Add(r.GroupInterval)
	send := needsUpdate(g.Log, firing, resolved, recv.SendResolved, r.RepeatInterval, now)
	g.Alerts = slices.DeleteFunc(g.Alerts, func(fp string) bool { return st.Alerts[fp] == nil || st.Alerts[fp].Resolved() })
	if r.Muted(now) {
		// As in Alertmanager: nothing is sent and the log is left as it was, so the group
		// notifies at its first flush after the interval; alerts that ended meanwhile are
		// dropped unnotified.
		return Notification{}, false
	}
	if !send {
		return Notification{}, false
	}
	g.Log = &LogEntry{At: now, Firing: firing, Resolved: resolved}
	n := Notification{Receiver: g.Receiver, GroupKey: g.Key, GroupLabels: maps.Clone(g.Labels)}
	n.Alerts = append(n.Alerts, st.alerts(firing)...)
	if recv.SendResolved {
		n.Alerts = append(n.Alerts, st.alerts(resolved)...)
	}
	return n, len(n.Alerts) > 0
}

// needsUpdate is Alertmanager's rule for notifying a group again, given its log entry.
func needsUpdate(log *LogEntry, firing, resolved []string, sendResolved bool, repeat time.Duration, now time.Time) bool {
	switch {
	case log == nil:
		return len(firing) > 0
	case !subset(firing, log.Firing):
		return true
	case len(firing) == 0:
		return len(log.Firing) > 0 // what was notified as firing has ended or is muted
	case sendResolved && !subset(resolved, log.Resolved):
		return true
	}
	return !log.At.After(now.Add(-repeat))
}

// subset says whether every element of a is in b.
func subset(a, b []string) bool {
	if len(a) > len(b) {
		return false
	}
	in := make(map[string]struct{}, len(b))
	for _, x := range b {
		in[x] = struct{}{}
	}
	for _, x := range a {
		if _, ok := in[x]; !ok {
			return false
		}
	}
	return true
}

// alerts are copies of the alerts with the fingerprints, sorted by labels.
func (st *State) alerts(fps []string) []Alert {
	type keyed struct {
		key   string
		alert Alert
	}
	sorted := make([]keyed, 0, len(fps))
	for _, fp := range fps {
		a := *st.Alerts[fp]
		sorted = append(sorted, keyed{amalert.LabelSetString(a.Labels), a})
	}
	slices.SortFunc(sorted, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	out := make([]Alert, len(sorted))
	for i, k := range sorted {
		out[i] = k.alert
	}
	return out
}

// collect drops the groups left with no alert, and the alerts no group holds.
func (st *State) collect() {
	held := map[string]bool{}
	for key, g := range st.Groups {
		if len(g.Alerts) == 0 {
			delete(st.Groups, key)
			continue
		}
		for _, fp := range g.Alerts {
			held[fp] = true
		}
	}
	for fp := range st.Alerts {
		if !held[fp] {
			delete(st.Alerts, fp)
		}
	}
}

// mute says what mutes an alert: silences (by ID) and alerts inhibiting it (by
// fingerprint).
type mute struct {
	silencedBy  []string
	inhibitedBy []string
	incident    string // the open incident the alert is a symptom of
}

// mutesAt says, for each firing alert that is muted at now, what mutes it: what the last
// Step computed, when it was at now, else computed afresh.
func (d *Dispatcher) mutesAt(st *State, now time.Time) map[string]*mute {
	if st.mutes == nil || !st.mutesAt.Equal(now) {
		st.mutes, st.mutesAt = d.mutes(st, now), now
	}
	return st.mutes
}

// mutes says, for each firing alert that is muted at now, what mutes it.
func (d *Dispatcher) mutes(st *State, now time.Time) map[string]*mute {
	out := map[string]*mute{}
	get := func(fp string) *mute {
		if out[fp] == nil {
			out[fp] = &mute{}
		}
		return out[fp]
	}
	silences := append(slices.Clone(d.Silences), slices.Collect(maps.Values(st.Silences))...)
	for fp, a := range st.Alerts {
		if a.Resolved() {
			continue
		}
		for _, s := range silences {
			if s.Active(now) && s.Matchers.Matches(a.Labels) {
				get(fp).silencedBy = append(get(fp).silencedBy, s.ID)
			}
		}
	}
	for _, rule := range d.Inhibit {
		d.inhibit(st, rule, get)
	}
	for fp, a := range st.Alerts {
		if id, ok := d.Symptoms[fp]; ok && !a.Resolved() {
			get(fp).incident = id
		}
	}
	for _, m := range out {
		slices.Sort(m.silencedBy)
		slices.Sort(m.inhibitedBy)
		m.inhibitedBy = slices.Compact(m.inhibitedBy)
	}
	return out
}

// inhibit notes the alerts rule mutes. A source counts while it fires, even if it is itself
// silenced, as in Alertmanager. Sources are indexed by their values of the equal labels, so a
// rule costs one pass over the alerts, not one per pair.
func (d *Dispatcher) inhibit(st *State, rule InhibitRule, get func(fp string) *mute) {
	sources := map[string][]string{} // equal labels' values → fingerprints of firing sources
	for fp, a := range st.Alerts {
		if !a.Resolved() && rule.Source.Matches(a.Labels) {
			k := equalKey(a.Labels, rule.Equal)
			sources[k] = append(sources[k], fp)
		}
	}
	if len(sources) == 0 {
		return
	}
	for fp, t := range st.Alerts {
		if t.Resolved() || !rule.Target.Matches(t.Labels) {
			continue
		}
		// One source is enough, and the one Alertmanager names too.
		for _, src := range sources[equalKey(t.Labels, rule.Equal)] {
			if src != fp {
				get(fp).inhibitedBy = append(get(fp).inhibitedBy, src)
				break
			}
		}
	}
}

// equalKey is the values of the labels names in labels (a missing label is ""), as one key.
func equalKey(labels map[string]string, names []string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString(strconv.Quote(labels[n]))
		b.WriteByte(0)
	}
	return b.String()
}

// ReceiversOf names the receivers an alert with labels is notified to.
func (d *Dispatcher) ReceiversOf(labels map[string]string) []string {
	var out []string
	for _, r := range d.Root.Match(labels) {
		if !slices.Contains(out, r.Receiver) {
			out = append(out, r.Receiver)
		}
	}
	return out
}

// Parse compiles the silence's matchers from Raw.
func (s *Silence) Parse() error {
	ms, err := ParseMatchers(s.Raw)
	if err != nil {
		return err
	}
	s.Matchers = ms
	return nil
}

// ParseSilences compiles the matchers of the run-time silences, after the state was
// decoded.
func (st *State) ParseSilences() error {
	if st.Silences == nil {
		st.Silences = map[string]*Silence{}
	}
	for id, s := range st.Silences {
		if err := s.Parse(); err != nil {
			return fmt.Errorf("silence %s: %w", id, err)
		}
	}
	return nil
}
