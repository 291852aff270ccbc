package window

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/eval"
)

// Window types.
const (
	Tumbling = "tumbling"
	Hopping  = "hopping"
	Session  = "session"
)

// maxWindowsPerRecord bounds size/hop: every record is added to that many hopping windows.
const maxWindowsPerRecord = 1000

// Fields every output record has; group keys and aggregates may not use these names.
var reservedOutputFields = []string{"window_start", "window_end", "ts_event", "event_id"}

// Config is the window processor's configuration.
type Config struct {
	Type        string                 `yaml:"type" required:"true" enum:"tumbling,hopping,session" doc:"tumbling: back-to-back windows of size; hopping: windows of size starting every hop, so each record is in size/hop of them; session: a window per group that stays open while records come less than gap apart. Window boundaries are aligned to the Unix epoch (a 1m window starts at a whole minute, UTC)."`
	Size        config.Duration        `yaml:"size" doc:"Window length (tumbling and hopping)."`
	Hop         config.Duration        `yaml:"hop" doc:"How often a hopping window starts; at most size, and size/hop at most 1000."`
	Gap         config.Duration        `yaml:"gap" doc:"Session windows: a record less than gap after the previous one of its group joins its session; the session closes gap after its last record."`
	Time        *config.Expr           `yaml:"time" doc:"Expression giving the record's event time (RFC 3339 or epoch seconds/milliseconds); default ts_event. A record without a readable time is rejected with the reason."`
	GroupBy     []config.Expr          `yaml:"group_by" doc:"Field paths (tenant_id, source.source_id) whose values together identify a group; each group has its own windows, and the output record has each value at the same path. Default: one group for everything."`
	GroupAs     map[string]config.Expr `yaml:"group_as" doc:"Computed group keys: output field name to expression, e.g. {host: 'lower(source.source_id)'}. Grouped together with group_by."`
	Aggregate   map[string]config.Expr `yaml:"aggregate" required:"true" doc:"Output field name to one aggregate call: count(), count(x), sum(x), avg(x), min(x), max(x), first(x), last(x) (by event time), stddev(x) (population), rate() (records per second of window), rate(x) (per-second increase of counter x, resets handled), p50(x) p90(x) p95(x) p99(x) (any pNN; within 1% of the value of rank floor(NN/100 × (n-1)) among the window's n values sorted, counting from 0: p95 of 10 values is the 9th smallest, within 1%), distinct(x) (exact up to 512 values, then about 1.6% standard error). x is an expression; nil values are skipped."`
	Lateness    config.Duration        `yaml:"lateness" default:"0s" doc:"How far behind the newest event time of its input partition a record may be: the watermark is that newest time minus lateness, and a window closes (is emitted) when the watermark reaches its end."`
	IdleTimeout config.Duration        `yaml:"idle_timeout" default:"1m" doc:"When an input partition has had no record for this long (wall clock), its watermark moves on with the wall clock, so its last windows close; 0 turns this off. A partition restored (on start, or taken over from another instance) counts its silence from the restore."`
	Late        string                 `yaml:"late" ref:"topics" doc:"Topic for late records (those whose windows have all closed), with the reason in headers. Default: the stream's dead-letter topic. Late records are counted either way."`
	// nil (a Config built in code) turns the check off; a pipeline file always has it, 1h
	// unless it says otherwise.
	MaxFuture *config.Duration `yaml:"max_future" default:"1h" doc:"How far ahead of the engine's clock (the wall clock) a record's event time may be. A record stamped further in the future goes to the dead-letter topic with the reason (\"in the future\"), instead of moving its partition's watermark so far on that every later real record would be late. forever turns the check off; 0 accepts no event time ahead of the clock."`
}

// Validate checks the window shape, durations, group keys and aggregate calls, reporting
// every problem.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, config.FieldErrorf(field, format, args...))
	}
	positive := func(field string, d config.Duration) bool {
		switch {
		case d == 0:
			bad(field, "is required for %s windows", c.Type)
		case d < 0:
			bad(field, "must be a positive duration")
		default:
			return true
		}
		return false
	}
	unused := func(field string, d config.Duration) {
		if d != 0 {
			bad(field, "does not apply to %s windows", c.Type)
		}
	}
	switch c.Type {
	case Tumbling:
		positive("size", c.Size)
		unused("hop", c.Hop)
		unused("gap", c.Gap)
	case Hopping:
		okSize, okHop := positive("size", c.Size), positive("hop", c.Hop)
		switch {
		case !okSize || !okHop:
		case c.Hop > c.Size:
			bad("hop", "must not exceed size (%s); windows would leave gaps between them", c.Size)
		case c.Size/c.Hop > maxWindowsPerRecord:
			bad("hop", "size/hop is %d; at most %d windows may overlap (use a longer hop)", c.Size/c.Hop, maxWindowsPerRecord)
		}
		unused("gap", c.Gap)
	case Session:
		positive("gap", c.Gap)
		unused("size", c.Size)
		unused("hop", c.Hop)
	}
	if c.Lateness < 0 {
		bad("lateness", "must be a duration of 0 or more")
	}
	if c.IdleTimeout < 0 && c.IdleTimeout != config.Forever {
		bad("idle_timeout", "must be a duration of 0 or more")
	}
	if c.MaxFuture != nil && *c.MaxFuture < 0 && *c.MaxFuture != config.Forever {
		bad("max_future", "must be a duration of 0 or more, or forever")
	}
	if c.Time != nil && c.Time.IsZero() {
		bad("time", "an expression is required (or leave time out for ts_event)")
	}

	// Output names: group keys and aggregates share the output record. taken maps a
	// top-level output field to what writes it.
	taken := map[string]string{}
	for _, r := range reservedOutputFields {
		taken[r] = "a field every window record has"
	}
	var paths []string
	for i, g := range c.GroupBy {
		at := fmt.Sprintf("group_by[%d]", i)
		parts := eval.FieldPath(g.Src)
		if parts == nil {
			src := strings.TrimSpace(g.Src)
			errs = append(errs, config.ExprError(g, 1, "%q is not a field path; group_by takes paths such as source.source_id, reproduced at the same path in the output. Name a computed key under group_as instead, e.g. group_as: {key: '%s'}", src, src))
			continue
		}
		path := strings.Join(parts, ".")
		clash := ""
		for _, p := range paths {
			if p == path || strings.HasPrefix(path, p+".") || strings.HasPrefix(p, path+".") {
				clash = p
				break
			}
		}
		switch {
		case clash != "":
			bad(at, "%q overlaps group_by %q: one would overwrite the other in the output", path, clash)
		case strings.HasPrefix(taken[parts[0]], "a field"):
			bad(at, "%q is %s", parts[0], taken[parts[0]])
		default:
			paths = append(paths, path)
			taken[parts[0]] = "written by group_by " + path
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.GroupAs)) {
		at := "group_as." + name
		if c.GroupAs[name].IsZero() {
			bad(at, "an expression is required")
		}
		switch prev, dup := taken[name]; {
		case !eval.IsIdentifier(name):
			bad(at, "%q is not a usable field name (letters, digits and _, not starting with a digit)", name)
		case dup:
			bad(at, "the output field %q is already %s", name, prev)
		default:
			taken[name] = "written by group_as." + name
		}
	}
	if len(c.Aggregate) == 0 {
		bad("aggregate", "at least one aggregate is required, e.g. {n: count(), avg: avg(value)}")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Aggregate)) {
		at := "aggregate." + name
		switch prev, dup := taken[name]; {
		case !eval.IsIdentifier(name):
			bad(at, "%q is not a usable field name (letters, digits and _, not starting with a digit)", name)
		case dup:
			bad(at, "the output field %q is already %s", name, prev)
		}
		if e := c.Aggregate[name]; e.IsZero() {
			bad(at, "an aggregate call is required, e.g. avg(value)")
		} else if _, err := parseCall(e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// durations of the config, as nanoseconds.
func (c *Config) sizeHop() (size, hop int64) {
	switch c.Type {
	case Tumbling:
		return int64(c.Size), int64(c.Size)
	case Hopping:
		return int64(c.Size), int64(c.Hop)
	}
	return 0, 0
}

// idle is the idle timeout, 0 when off.
func (c *Config) idle() time.Duration {
	if c.IdleTimeout <= 0 {
		return 0
	}
	return c.IdleTimeout.D()
}

// maxFuture is max_future in nanoseconds, or -1 when the check is off.
func (c *Config) maxFuture() int64 {
	if c.MaxFuture == nil || *c.MaxFuture == config.Forever {
		return -1
	}
	return int64(*c.MaxFuture)
}
