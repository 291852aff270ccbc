package notify

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/eventops/eventops-engine/config"
)

// Config is the notify processor's configuration: Alertmanager's route, receivers,
// inhibit_rules and silences, with the same names and meanings.
type Config struct {
	Route        RouteConfig      `yaml:"route" required:"true" doc:"The root of the routing tree: every alert enters here. Its receiver and timings are the defaults of the routes below it."`
	Receivers    []ReceiverConfig `yaml:"receivers" required:"true" doc:"The receivers routes name. A notification record carries its receiver's name; a stream per receiver (filter: receiver == \"...\") sends them on, e.g. with a webhook output in format json, which sends the record as Alertmanager's webhook payload."`
	InhibitRules []InhibitConfig  `yaml:"inhibit_rules" doc:"Rules that mute alerts while another alert fires, e.g. a critical alert muting the warnings of the same host."`
	// InhibitSymptoms is topology-aware inhibition: what correlate found, not labels, says
	// which alerts follow from another.
	InhibitSymptoms string               `yaml:"inhibit_symptoms" ref:"lookups" doc:"Lookup table kept in the topic of a correlate processor's incident records (lookups: {incidents: {topic: ops.incident.v1}}): an alert that is a symptom of an open incident (a firing member, on a node other than the root cause, of an incident of more than one alert) is muted while the incident is open, inhibited by the incident's id. The root cause's own alert is notified; the database's alert pages, the 40 services failing behind it do not."`
	Silences        []SilenceConfig      `yaml:"silences" doc:"Silences written in the file: alerts their matchers select are not notified between starts_at and ends_at."`
	TimeIntervals   []TimeIntervalConfig `yaml:"time_intervals" doc:"Named sets of time ranges that routes mute in (mute_time_intervals) or notify only in (active_time_intervals), as Alertmanager's."`
	ExternalURL     string               `yaml:"external_url" doc:"externalURL of the notifications, the address of what sent them (e.g. this engine's API)."`
	GeneratorURL    *config.Expr         `yaml:"generator_url" doc:"Each alert's generatorURL, a template evaluated on the alert record, e.g. 'http://ops.example.com:8088/alerts?fingerprint={{fingerprint}}'."`
}

// RouteConfig is one node of the routing tree.
type RouteConfig struct {
	Receiver            string           `yaml:"receiver" doc:"Receiver of the alerts this route takes. Required on the root; inherited below."`
	GroupBy             []string         `yaml:"group_by" doc:"Labels whose values split the route's alerts into groups, each notified on its own; [...] groups by every label; [] (the root's default) puts all in one group. Inherited."`
	GroupWait           *config.Duration `yaml:"group_wait" doc:"How long a new group waits before its first notification, so that alerts arriving together are notified together. Root default 30s; inherited."`
	GroupInterval       *config.Duration `yaml:"group_interval" doc:"How long a group waits after a notification before notifying what changed (new alerts, resolved ones). Root default 5m; inherited."`
	RepeatInterval      *config.Duration `yaml:"repeat_interval" doc:"How long after a notification a group with nothing new notifies its firing alerts again. Root default 4h; inherited."`
	Matchers            []string         `yaml:"matchers" doc:"Alertmanager matchers the alert's labels must all satisfy: label=\"value\", label!=\"value\", label=~\"regex\", label!~\"regex\" (regexes match the whole value; a missing label is \"\"). Not on the root."`
	MuteTimeIntervals   []string         `yaml:"mute_time_intervals" doc:"Names of time_intervals during which this route sends nothing (its groups notify once the interval is over; alerts that ended meanwhile are not notified, as in Alertmanager). Not inherited; not on the root."`
	ActiveTimeIntervals []string         `yaml:"active_time_intervals" doc:"Names of time_intervals outside which this route sends nothing. Not inherited; not on the root."`
	Continue            bool             `yaml:"continue" doc:"After this route matched, go on trying its next siblings (the alert is then notified through each route that matches). Default: the first matching sibling takes the alert."`
	Routes              []RouteConfig    `yaml:"routes" doc:"Child routes, tried in order; an alert that none matches stays with this route."`
}

// ReceiverConfig names a receiver.
type ReceiverConfig struct {
	Name         string `yaml:"name" required:"true" doc:"Name routes use."`
	SendResolved *bool  `yaml:"send_resolved" doc:"Whether notifications carry the alerts that ended (Alertmanager's send_resolved). Default true."`
}

// InhibitConfig is one inhibition rule.
type InhibitConfig struct {
	SourceMatchers []string `yaml:"source_matchers" required:"true" doc:"Matchers of the alerts that mute while they fire."`
	TargetMatchers []string `yaml:"target_matchers" required:"true" doc:"Matchers of the alerts that are muted."`
	Equal          []string `yaml:"equal" doc:"Labels that must have the same value in the source and the target (a missing label is \"\"), e.g. [host]."`
}

// SilenceConfig is a silence written in the file.
type SilenceConfig struct {
	Matchers  []string `yaml:"matchers" required:"true" doc:"Matchers of the alerts silenced."`
	StartsAt  string   `yaml:"starts_at" doc:"When the silence begins (RFC 3339); default: always."`
	EndsAt    string   `yaml:"ends_at" required:"true" doc:"When it ends (RFC 3339)."`
	CreatedBy string   `yaml:"created_by" doc:"Who made it."`
	Comment   string   `yaml:"comment" doc:"Why."`
}

var _ config.Validator = (*Config)(nil)

// Root defaults, Alertmanager's.
const (
	defaultGroupWait      = 30 * time.Second
	defaultGroupInterval  = 5 * time.Minute
	defaultRepeatInterval = 4 * time.Hour
)

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Validate checks the configuration, and that every receiver a route names exists.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, config.FieldErrorf(field, format, args...))
	}
	names := map[string]bool{}
	for i, r := range c.Receivers {
		if names[r.Name] {
			add(fmt.Sprintf("receivers[%d].name", i), "receiver %q is declared twice", r.Name)
		}
		names[r.Name] = true
	}
	if c.Route.Receiver == "" {
		add("route.receiver", "the root route needs a receiver: where alerts that no child route takes go")
	}
	if len(c.Route.Matchers) > 0 {
		add("route.matchers", "the root route takes every alert; put matchers on its child routes")
	}
	intervals := c.validateTimeIntervals(add)
	if len(c.Route.MuteTimeIntervals)+len(c.Route.ActiveTimeIntervals) > 0 {
		add("route", "the root route cannot have mute_time_intervals or active_time_intervals; put them on child routes")
	}
	c.Route.validate("route", names, add)
	c.Route.validateIntervals("route", intervals, add)
	for i, ir := range c.InhibitRules {
		field := fmt.Sprintf("inhibit_rules[%d]", i)
		checkMatchers(field+".source_matchers", ir.SourceMatchers, add)
		checkMatchers(field+".target_matchers", ir.TargetMatchers, add)
		checkLabelNames(field+".equal", ir.Equal, add)
	}
	for i, s := range c.Silences {
		field := fmt.Sprintf("silences[%d]", i)
		checkMatchers(field+".matchers", s.Matchers, add)
		if _, _, err := s.times(); err != nil {
			add(field, "%v", err)
		}
	}
	return errors.Join(errs...)
}

// validateTimeIntervals checks the named intervals and returns their names.
func (c *Config) validateTimeIntervals(add func(field, format string, args ...any)) map[string]bool {
	names := map[string]bool{}
	for i, ti := range c.TimeIntervals {
		if names[ti.Name] {
			add(fmt.Sprintf("time_intervals[%d].name", i), "time interval %q is declared twice", ti.Name)
		}
		names[ti.Name] = true
		for j, r := range ti.TimeIntervals {
			if _, err := r.compile(); err != nil {
				add(fmt.Sprintf("time_intervals[%d].time_intervals[%d]", i, j), "%v", err)
			}
		}
	}
	return names
}

// validateIntervals checks that the route and those below it name declared intervals.
func (r *RouteConfig) validateIntervals(path string, names map[string]bool, add func(field, format string, args ...any)) {
	for field, list := range map[string][]string{"mute_time_intervals": r.MuteTimeIntervals, "active_time_intervals": r.ActiveTimeIntervals} {
		for i, n := range list {
			if !names[n] {
				add(fmt.Sprintf("%s.%s[%d]", path, field, i), "time interval %q is not declared in time_intervals", n)
			}
		}
	}
	for i := range r.Routes {
		r.Routes[i].validateIntervals(fmt.Sprintf("%s.routes[%d]", path, i), names, add)
	}
}

func (r *RouteConfig) validate(path string, receivers map[string]bool, add func(field, format string, args ...any)) {
	if r.Receiver != "" && !receivers[r.Receiver] {
		add(path+".receiver", "receiver %q is not declared in receivers", r.Receiver)
	}
	if len(r.GroupBy) > 1 && slices.Contains(r.GroupBy, "...") {
		add(path+".group_by", "[...] groups by every label; it cannot be combined with other labels")
	}
	if !slices.Equal(r.GroupBy, []string{"..."}) {
		checkLabelNames(path+".group_by", r.GroupBy, add)
	}
	for _, d := range []struct {
		name string
		v    *config.Duration
	}{{"group_wait", r.GroupWait}, {"group_interval", r.GroupInterval}, {"repeat_interval", r.RepeatInterval}} {
		if d.v != nil && *d.v < 0 {
			add(path+"."+d.name, "must not be negative")
		}
	}
	if r.GroupInterval != nil && *r.GroupInterval == 0 {
		add(path+".group_interval", "must be above 0, e.g. 5m")
	}
	checkMatchers(path+".matchers", r.Matchers, add)
	for i := range r.Routes {
		r.Routes[i].validate(fmt.Sprintf("%s.routes[%d]", path, i), receivers, add)
	}
}

func checkMatchers(field string, ms []string, add func(field, format string, args ...any)) {
	for i, s := range ms {
		if _, err := ParseMatcher(s); err != nil {
			add(fmt.Sprintf("%s[%d]", field, i), "%v", err)
		}
	}
}

func checkLabelNames(field string, names []string, add func(field, format string, args ...any)) {
	for i, n := range names {
		if !labelNameRE.MatchString(n) {
			add(fmt.Sprintf("%s[%d]", field, i), "%q is not a label name (letters, digits and _, not starting with a digit)", n)
		}
	}
}

// times parses the silence's bounds; a silence without starts_at has always been on.
func (s SilenceConfig) times() (start, end time.Time, err error) {
	if s.StartsAt != "" {
		if start, err = time.Parse(time.RFC3339, s.StartsAt); err != nil {
			return start, end, fmt.Errorf("starts_at: want an RFC 3339 time, e.g. 2026-12-24T18:00:00Z: %v", err)
		}
	}
	if end, err = time.Parse(time.RFC3339, s.EndsAt); err != nil {
		return start, end, fmt.Errorf("ends_at: want an RFC 3339 time, e.g. 2026-12-26T08:00:00Z: %v", err)
	}
	if !end.After(start) {
		return start, end, errors.New("ends_at must be after starts_at")
	}
	return start, end, nil
}

// compile makes the dispatcher of a valid configuration.
func (c *Config) compile() *Dispatcher {
	intervals := map[string]timeInterval{}
	for _, ti := range c.TimeIntervals {
		var compiled timeInterval
		for _, r := range ti.TimeIntervals {
			tr, _ := r.compile()
			compiled = append(compiled, tr)
		}
		intervals[ti.Name] = compiled
	}
	root := c.Route.compile("0", nil, intervals)
	receivers := map[string]Receiver{}
	for _, r := range c.Receivers {
		receivers[r.Name] = Receiver{Name: r.Name, SendResolved: r.SendResolved == nil || *r.SendResolved}
	}
	var inhibit []InhibitRule
	for _, ir := range c.InhibitRules {
		src, _ := ParseMatchers(ir.SourceMatchers)
		dst, _ := ParseMatchers(ir.TargetMatchers)
		inhibit = append(inhibit, InhibitRule{Source: src, Target: dst, Equal: ir.Equal})
	}
	var silences []*Silence
	for i, s := range c.Silences {
		start, end, _ := s.times()
		ms, _ := ParseMatchers(s.Matchers)
		silences = append(silences, &Silence{ID: fmt.Sprintf("config-%d", i), Matchers: ms, Raw: s.Matchers,
			StartsAt: start, EndsAt: end, CreatedBy: s.CreatedBy, Comment: s.Comment})
	}
	return NewDispatcher(root, receivers, inhibit, silences)
}

// compile makes the route with id, inheriting what it does not set from parent.
func (r *RouteConfig) compile(id string, parent *Route, intervals map[string]timeInterval) *Route {
	out := &Route{ID: id, Receiver: r.Receiver, Continue: r.Continue,
		GroupWait: defaultGroupWait, GroupInterval: defaultGroupInterval, RepeatInterval: defaultRepeatInterval}
	if parent != nil {
		out.GroupBy, out.GroupByAll = parent.GroupBy, parent.GroupByAll
		out.GroupWait, out.GroupInterval, out.RepeatInterval = parent.GroupWait, parent.GroupInterval, parent.RepeatInterval
		if out.Receiver == "" {
			out.Receiver = parent.Receiver
		}
	}
	if r.GroupBy != nil {
		out.GroupByAll = slices.Equal(r.GroupBy, []string{"..."})
		out.GroupBy = nil
		if !out.GroupByAll {
			out.GroupBy = r.GroupBy
		}
	}
	for _, d := range []struct {
		set *config.Duration
		to  *time.Duration
	}{{r.GroupWait, &out.GroupWait}, {r.GroupInterval, &out.GroupInterval}, {r.RepeatInterval, &out.RepeatInterval}} {
		if d.set != nil {
			*d.to = d.set.D()
		}
	}
	out.Matchers, _ = ParseMatchers(r.Matchers)
	for _, n := range r.MuteTimeIntervals {
		out.Mute = append(out.Mute, intervals[n])
	}
	for _, n := range r.ActiveTimeIntervals {
		out.Active = append(out.Active, intervals[n])
	}
	for i := range r.Routes {
		out.Routes = append(out.Routes, r.Routes[i].compile(childID(id, i), out, intervals))
	}
	return out
}
