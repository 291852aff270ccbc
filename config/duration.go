package config

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Forever is the Duration written as "forever" or "infinite": no time limit.
const Forever Duration = -1

// durationUnits are the units ParseDuration accepts, longest first so "ms" wins over "m".
var durationUnits = []struct {
	name string
	d    time.Duration
}{
	{"ns", time.Nanosecond},
	{"us", time.Microsecond},
	{"µs", time.Microsecond},
	{"ms", time.Millisecond},
	{"s", time.Second},
	{"m", time.Minute},
	{"h", time.Hour},
	{"d", 24 * time.Hour},
	{"w", 7 * 24 * time.Hour},
}

// durationHint tells users what ParseDuration accepts; it ends every duration error.
const durationHint = `use a number with a unit (ms, s, m, h, d, w) such as 500ms, 30s, 5m, 3d or 1h30m, or "forever"`

// ParseDuration parses an operator-style duration: Go's units plus d (24h) and w (7d),
// combinations such as "1h30m" or "1d12h", and "forever"/"infinite" meaning Forever.
// Negative durations are rejected because no setting in a pipeline means "before now".
func ParseDuration(s string) (Duration, error) {
	switch s {
	case "forever", "infinite":
		return Forever, nil
	case "0":
		return 0, nil
	case "":
		return 0, fmt.Errorf("empty duration: %s", durationHint)
	}
	var total float64
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("invalid duration %q: %s", s, durationHint)
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: %s", s, durationHint)
		}
		rest = rest[i:]
		j := 0
		for j < len(rest) && !(rest[j] >= '0' && rest[j] <= '9' || rest[j] == '.') {
			j++
		}
		unit, ok := lookupDurationUnit(rest[:j])
		if !ok {
			if j == 0 {
				return 0, fmt.Errorf("invalid duration %q: missing unit; %s", s, durationHint)
			}
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q; %s", s, rest[:j], durationHint)
		}
		rest = rest[j:]
		total += n * float64(unit)
	}
	if total >= math.MaxInt64 {
		return 0, fmt.Errorf("duration %q is too long; use \"forever\" for no limit", s)
	}
	return Duration(total), nil
}

func lookupDurationUnit(name string) (time.Duration, bool) {
	for _, u := range durationUnits {
		if u.name == name {
			return u.d, true
		}
	}
	return 0, false
}

// String formats d the way ParseDuration reads it, using days and weeks where they fit
// exactly so that "3d" round-trips as "3d" rather than "72h0m0s".
func (d Duration) String() string {
	switch {
	case d == Forever:
		return "forever"
	case d == 0:
		return "0s"
	case d < 0:
		return time.Duration(d).String()
	}
	const day, week = Duration(24 * time.Hour), Duration(7 * 24 * time.Hour)
	if d%week == 0 {
		return strconv.FormatInt(int64(d/week), 10) + "w"
	}
	if d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return time.Duration(d).String()
}
