package ruletest

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/config"
)

// File is a rule test file: a pipeline, the records to feed it and what must come out.
type File struct {
	Pipeline string                    `yaml:"pipeline" required:"true" doc:"The pipeline file under test, relative to this file."`
	Streams  []string                  `yaml:"streams" doc:"Run only these streams (default: every stream and sink of the pipeline). Feed records to the input topic of the first one you keep."`
	Lookups  map[string]LookupOverride `yaml:"lookups" doc:"Replace lookup tables of the pipeline for the tests, by name: another file, or rows written here."`
	Start    string                    `yaml:"start" doc:"Where the virtual clock starts (RFC 3339); times in the tests may be given relative to it, as a duration (5m, 1h30m). Default 1970-01-01T00:00:00Z."`
	Tests    []Case                    `yaml:"tests" required:"true" doc:"The test cases. Each runs on a fresh pipeline: no state carries from one to the next."`
}

// LookupOverride replaces a lookup table's rows.
type LookupOverride struct {
	File string              `yaml:"file" doc:"A CSV or JSON file with the table's rows, relative to the test file."`
	Rows []map[string]string `yaml:"rows" doc:"The table's rows, written here (each a mapping of column to value)."`
}

// Validate checks that the override says where the rows are.
func (o *LookupOverride) Validate() error {
	if (o.File == "") == (o.Rows == nil) {
		return errors.New("give either file or rows")
	}
	return nil
}

// Case is one test case.
type Case struct {
	Name     string          `yaml:"name" required:"true" doc:"What the case checks; printed when it fails."`
	Start    string          `yaml:"start" doc:"Where this case's clock starts, if not at the file's start."`
	Interval config.Duration `yaml:"interval" default:"1m" doc:"Default step between the values of a series."`
	Inputs   []Input         `yaml:"inputs" doc:"Records produced to topics, each at its time."`
	Series   []Series        `yaml:"series" doc:"Series of readings in the expanding notation: one record per value."`
	Expect   []Expectation   `yaml:"expect" required:"true" doc:"What must hold at points of the virtual clock, in time order."`
}

// Input is one record produced to a topic.
type Input struct {
	Topic   string            `yaml:"topic" required:"true" doc:"The topic it is produced to."`
	At      string            `yaml:"at" required:"true" doc:"When it is produced: RFC 3339, or a duration after the start (90s, 5m)."`
	Key     string            `yaml:"key" doc:"The record key (it picks the partition, as Kafka's default partitioner does)."`
	Value   any               `yaml:"value" doc:"The record value, written as YAML and produced as JSON."`
	Raw     *string           `yaml:"raw" doc:"The record value as raw text, instead of value (for malformed records)."`
	Headers map[string]string `yaml:"headers" doc:"Record headers."`
}

// Validate checks the input's time and that it has a value.
func (in *Input) Validate() error {
	var errs []error
	if in.At != "" {
		if _, err := parseAt(in.At); err != nil {
			errs = append(errs, config.FieldErrorf("at", "%v", err))
		}
	}
	if (in.Value == nil) == (in.Raw == nil) {
		errs = append(errs, errors.New("give either value or raw"))
	}
	return errors.Join(errs...)
}

// Series is a run of readings of one series, written in the expanding notation.
type Series struct {
	Topic     string          `yaml:"topic" required:"true" doc:"The topic its records are produced to."`
	Key       string          `yaml:"key" doc:"The key of every record."`
	Record    map[string]any  `yaml:"record" doc:"The fields every record has (tenant, host, metric...)."`
	Field     string          `yaml:"field" default:"value" doc:"The field that gets each value (a dotted path)."`
	TimeField string          `yaml:"time_field" default:"ts_event" doc:"The field that gets each record's time, RFC 3339 (a dotted path); \"-\" for none."`
	Start     string          `yaml:"start" doc:"The time of the first value (RFC 3339 or a duration after the start); default the case's start."`
	Interval  config.Duration `yaml:"interval" doc:"Time between values; default the case's interval."`
	Values    string          `yaml:"values" required:"true" doc:"Values in promtool's expanding notation: 'a+bxn' is a, a+b, ..., a+n*b (n+1 values), 'a-bxn' counts down, 'axn' repeats a n+1 times, '_' (or 'stale') skips a step, '_xn' skips n steps; separated by spaces, e.g. '70 80+5x3 _ 50x2'."`
}

// Validate checks the notation and the times.
func (s *Series) Validate() error {
	var errs []error
	if s.Values != "" {
		if _, err := ExpandValues(s.Values); err != nil {
			errs = append(errs, config.FieldErrorf("values", "%v", err))
		}
	}
	if s.Start != "" {
		if _, err := parseAt(s.Start); err != nil {
			errs = append(errs, config.FieldErrorf("start", "%v", err))
		}
	}
	if s.Interval < 0 {
		errs = append(errs, config.FieldErrorf("interval", "must be positive"))
	}
	return errors.Join(errs...)
}

// Expectation is what must hold at one point of the virtual clock, once every record due by
// then went through the pipeline and the clock-driven processors were ticked.
type Expectation struct {
	At            string                         `yaml:"at" required:"true" doc:"When: RFC 3339, or a duration after the start."`
	Alerts        *[]AlertExpectation            `yaml:"alerts" doc:"The alerts active now (pending or firing: each alert's newest record), all of them; [] for none. Left out: not checked."`
	Records       map[string][]RecordExpectation `yaml:"records" doc:"Records written to each topic since the previous expectation, all of them, in order; [] for none."`
	Notifications *[]NotificationExpectation     `yaml:"notifications" doc:"Notifications the notify processors of the streams under test sent since the previous expectation, all of them, in order; [] for none. Only the fields given are compared."`
	DeadLetter    *[]DeadLetterExpectation       `yaml:"dead_letter" doc:"Records rejected since the previous expectation (dead-lettered, or late to a side output), all of them, in order; [] for none."`
}

// Validate checks the time.
func (e *Expectation) Validate() error {
	if e.At == "" {
		return nil
	}
	if _, err := parseAt(e.At); err != nil {
		return config.FieldErrorf("at", "%v", err)
	}
	return nil
}

// NotificationExpectation describes a notification (a notify processor's record, Alertmanager's
// webhook payload); only the fields given are compared.
type NotificationExpectation struct {
	Receiver    string            `yaml:"receiver" doc:"The receiver it goes to."`
	Status      string            `yaml:"status" enum:"firing,resolved" doc:"firing while any of its alerts fires."`
	GroupLabels map[string]string `yaml:"group_labels" doc:"The labels naming its group."`
	Firing      *[]string         `yaml:"firing" doc:"The alertname/source_id of each firing alert it carries, in order (e.g. cpu_load/host-a); all of them."`
	Resolved    *[]string         `yaml:"resolved" doc:"The same for the alerts that ended."`
}

// AlertExpectation describes an active alert; only the fields given are compared.
type AlertExpectation struct {
	Rule     string         `yaml:"rule" doc:"The rule's name."`
	State    string         `yaml:"state" enum:"pending,firing" doc:"pending or firing."`
	Severity string         `yaml:"severity" doc:"The alert's severity now."`
	Labels   map[string]any `yaml:"labels" doc:"The alert's labels, all of them."`
	Message  *string        `yaml:"message" doc:"The rendered message."`

	// Fields of the alert record tests often state, matched like fields.
	SourceID         string         `yaml:"source_id" doc:"The series' source (source.source_id of the triggering record)."`
	TenantID         string         `yaml:"tenant_id" doc:"The tenant."`
	Metric           string         `yaml:"metric" doc:"The metric."`
	Value            any            `yaml:"value" doc:"The value of the record that made the alert's newest transition."`
	PreviousSeverity string         `yaml:"previous_severity" doc:"The severity before the last move up or down the ladder."`
	StartedAt        string         `yaml:"started_at" doc:"When the condition started to hold (RFC 3339)."`
	FiredAt          string         `yaml:"fired_at" doc:"When the alert fired (RFC 3339)."`
	Annotations      map[string]any `yaml:"annotations" doc:"Annotations that must be there with these values."`

	Fields map[string]any `yaml:"fields" doc:"Any other fields of the alert record that must have these values, matched partially (tags, series, fingerprint...)."`
}

// fields are the record fields the expectation gives, besides rule, state, severity, labels
// and message.
func (a AlertExpectation) fields() map[string]any {
	out := map[string]any{}
	for k, v := range a.Fields {
		out[k] = v
	}
	set := func(k string, v any) {
		if v != nil && v != "" {
			out[k] = v
		}
	}
	set("source_id", a.SourceID)
	set("tenant_id", a.TenantID)
	set("metric", a.Metric)
	set("value", a.Value)
	set("previous_severity", a.PreviousSeverity)
	set("started_at", a.StartedAt)
	set("fired_at", a.FiredAt)
	if a.Annotations != nil {
		out["annotations"] = a.Annotations
	}
	return out
}

// RecordExpectation describes a record written to a topic.
type RecordExpectation struct {
	Key     *string           `yaml:"key" doc:"The record key."`
	Value   any               `yaml:"value" doc:"The record value: with match partial (the default) every field given must be there with that value (recursively); with match exact the value must be exactly this."`
	Match   string            `yaml:"match" default:"partial" enum:"partial,exact" doc:"How value is compared."`
	Headers map[string]string `yaml:"headers" doc:"Headers the record must have."`
}

// DeadLetterExpectation describes a rejected record.
type DeadLetterExpectation struct {
	Topic  string `yaml:"topic" doc:"Where it went: the dead-letter topic, or a side output such as a window's late: topic."`
	Stage  string `yaml:"stage" doc:"Where it failed: decode, input.schema, a processor (processors[1].window), output."`
	Reason string `yaml:"reason" doc:"Text the reason must contain."`
	Late   *bool  `yaml:"late" doc:"Whether it was late rather than failed."`
	Value  any    `yaml:"value" doc:"Fields the rejected record's value must have (partial match)."`
}

// epoch is where the clock starts by default.
var epoch = time.Unix(0, 0).UTC()

// at is a point of the virtual clock as written: absolute, or relative to a start.
type at struct {
	abs    time.Time
	offset time.Duration
	isAbs  bool
}

func (a at) from(start time.Time) time.Time {
	if a.isAbs {
		return a.abs
	}
	return start.Add(a.offset)
}

// parseAt reads an RFC 3339 time or a duration after the start ("90s", "1h30m", "0").
func parseAt(s string) (at, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return at{abs: t.UTC(), isAbs: true}, nil
	}
	d, err := config.ParseDuration(strings.TrimPrefix(s, "+"))
	if err != nil || d == config.Forever {
		return at{}, fmt.Errorf("%q is neither an RFC 3339 time (2025-10-16T09:00:00Z) nor a duration after the start (90s, 5m, 1h30m)", s)
	}
	return at{offset: d.D()}, nil
}

// ExpandValues expands promtool's series notation into values; a skipped step is NaN.
func ExpandValues(s string) ([]float64, error) {
	var out []float64
	for _, tok := range strings.Fields(s) {
		base, times, hasTimes := strings.Cut(tok, "x")
		n := 0
		if hasTimes {
			var err error
			if n, err = strconv.Atoi(times); err != nil || n < 0 {
				return nil, fmt.Errorf("%q: the count after x must be a whole number ≥ 0", tok)
			}
		}
		if base == "_" || base == "stale" { // no reading at that step (promtool's stale too)
			k := 1
			if hasTimes {
				k = n
			}
			for range k {
				out = append(out, math.NaN())
			}
			continue
		}
		start, step := base, "0"
		if i := strings.LastIndexAny(base, "+-"); i > 0 && base[i-1] != 'e' && base[i-1] != 'E' {
			start, step = base[:i], base[i:]
			if !hasTimes {
				return nil, fmt.Errorf("%q: a step (%s) needs a count: %sx<n>", tok, step, base)
			}
		}
		a, err := strconv.ParseFloat(start, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a value, '_', or a+bxn", tok)
		}
		b, err := strconv.ParseFloat(step, 64)
		if err != nil {
			return nil, fmt.Errorf("%q: bad step %q", tok, step)
		}
		if len(out)+n+1 > maxSeriesValues {
			return nil, fmt.Errorf("more than %d values", maxSeriesValues)
		}
		for i := 0; i <= n; i++ {
			out = append(out, a+float64(i)*b)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no values")
	}
	return out, nil
}

// maxSeriesValues bounds one series, so that a typo such as 1x1000000000 is an error rather
// than an out-of-memory crash.
const maxSeriesValues = 1_000_000

// JSONSchema is the JSON Schema of rule test files (schemas/pipeline-test.schema.json), made
// from the same tagged types the loader decodes them with.
func JSONSchema() ([]byte, error) {
	return config.JSONSchemaOf(reflect.TypeFor[File](), "eventops-engine rule test file",
		"A rule test file of eventops-engine (eventops-engine test): the pipeline under test, records to produce "+
			"at points of a virtual clock, and the alerts, records and rejected records expected. See docs/testing.md.")
}
