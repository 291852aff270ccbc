package api

import (
	"fmt"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/store"
)

// timeRangeOf reads a table route's from and to query parameters: an RFC 3339 time, now, or
// a duration before now (-1h, -30m, -7d). nil when the request has neither.
func timeRangeOf(query map[string]any, column string, now time.Time) (*store.Range, error) {
	from, hasFrom := query["from"].(string)
	to, hasTo := query["to"].(string)
	if !hasFrom && !hasTo {
		return nil, nil
	}
	if column == "" {
		return nil, fmt.Errorf("this route has no time column for from and to (set the route's time_column)")
	}
	r := &store.Range{Column: column}
	var err error
	if hasFrom {
		if r.From, err = timeParam("from", from, now); err != nil {
			return nil, err
		}
	}
	if hasTo {
		if r.To, err = timeParam("to", to, now); err != nil {
			return nil, err
		}
	}
	if !r.From.IsZero() && !r.To.IsZero() && !r.From.Before(r.To) {
		return nil, fmt.Errorf("from (%s) must be before to (%s)", r.From.Format(time.RFC3339Nano), r.To.Format(time.RFC3339Nano))
	}
	return r, nil
}

// timeParam reads one end of a range.
func timeParam(name, v string, now time.Time) (time.Time, error) {
	switch {
	case v == "now":
		return now, nil
	case strings.HasPrefix(v, "-"):
		d, err := config.ParseDuration(v[1:])
		if err == nil && d > 0 {
			return now.Add(-time.Duration(d)), nil
		}
	default:
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q is neither an RFC 3339 time (2025-10-16T09:00:00Z), now, nor a duration before now (-1h, -30m, -7d)", name, v)
}
