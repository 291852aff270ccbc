package notify

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // locations of time intervals, on hosts without a zoneinfo database
)

// TimeIntervalConfig names a set of time ranges, as Alertmanager's time_intervals: a route
// mutes during its mute_time_intervals, or notifies only during its active_time_intervals.
type TimeIntervalConfig struct {
	Name          string            `yaml:"name" required:"true" doc:"Name routes use in mute_time_intervals and active_time_intervals."`
	TimeIntervals []TimeRangeConfig `yaml:"time_intervals" required:"true" doc:"The ranges; the interval holds when any of them does."`
}

// TimeRangeConfig is one range: it holds when every field it sets holds.
type TimeRangeConfig struct {
	Times       []TimeOfDay `yaml:"times" doc:"Times of day, [start_time, end_time) as HH:MM (end_time up to 24:00)."`
	Weekdays    []string    `yaml:"weekdays" doc:"Days of the week or ranges of them: monday, saturday:sunday."`
	DaysOfMonth []string    `yaml:"days_of_month" doc:"Days of the month or ranges, negative from the end: 1, 1:5, -1 (the last day), -3:-1."`
	Months      []string    `yaml:"months" doc:"Months by name or number, or ranges: january, 1:3, november:december."`
	Years       []string    `yaml:"years" doc:"Years or ranges: 2026, 2026:2027."`
	Location    string      `yaml:"location" doc:"Time zone the range is read in, e.g. Europe/Berlin; default UTC."`
}

// TimeOfDay is a range of minutes of the day.
type TimeOfDay struct {
	StartTime string `yaml:"start_time" required:"true" doc:"HH:MM, included."`
	EndTime   string `yaml:"end_time" required:"true" doc:"HH:MM, excluded; 24:00 for the end of the day."`
}

// timeInterval is a compiled named interval.
type timeInterval []timeRange

// Contains says whether t is in any of the interval's ranges.
func (ti timeInterval) Contains(t time.Time) bool {
	for _, r := range ti {
		if r.contains(t) {
			return true
		}
	}
	return false
}

// timeRange is a compiled TimeRangeConfig: each list of [from, to] pairs, empty meaning any.
type timeRange struct {
	minutes  [][2]int // minutes of the day, [from, to)
	weekdays [][2]int // 0 = Sunday
	days     [][2]int // negative: from the end of the month
	months   [][2]int // 1 = January
	years    [][2]int
	loc      *time.Location
}

func (r timeRange) contains(t time.Time) bool {
	t = t.In(r.loc)
	minute := t.Hour()*60 + t.Minute()
	last := time.Date(t.Year(), t.Month()+1, 0, 0, 0, 0, 0, r.loc).Day()
	day := func(d int) int { // a negative day counted from the end
		if d < 0 {
			return last + d + 1
		}
		return d
	}
	return anyOf(r.minutes, func(p [2]int) bool { return minute >= p[0] && minute < p[1] }) &&
		anyOf(r.weekdays, func(p [2]int) bool { return int(t.Weekday()) >= p[0] && int(t.Weekday()) <= p[1] }) &&
		anyOf(r.days, func(p [2]int) bool { return t.Day() >= day(p[0]) && t.Day() <= day(p[1]) }) &&
		anyOf(r.months, func(p [2]int) bool { return int(t.Month()) >= p[0] && int(t.Month()) <= p[1] }) &&
		anyOf(r.years, func(p [2]int) bool { return t.Year() >= p[0] && t.Year() <= p[1] })
}

// anyOf holds for an empty list (the field is not set) or when one pair holds.
func anyOf(pairs [][2]int, holds func([2]int) bool) bool {
	if len(pairs) == 0 {
		return true
	}
	for _, p := range pairs {
		if holds(p) {
			return true
		}
	}
	return false
}

var weekdayNames = map[string]int{"sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6}

var monthNames = map[string]int{"january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
	"august": 8, "september": 9, "october": 10, "november": 11, "december": 12}

// compile checks the range and compiles it.
func (c TimeRangeConfig) compile() (timeRange, error) {
	r := timeRange{loc: time.UTC}
	var err error
	if c.Location != "" {
		if r.loc, err = time.LoadLocation(c.Location); err != nil {
			return r, fmt.Errorf("location: %v", err)
		}
	}
	for i, tod := range c.Times {
		from, err1 := minuteOfDay(tod.StartTime)
		to, err2 := minuteOfDay(tod.EndTime)
		switch {
		case err1 != nil:
			return r, fmt.Errorf("times[%d].start_time: %v", i, err1)
		case err2 != nil:
			return r, fmt.Errorf("times[%d].end_time: %v", i, err2)
		case to <= from:
			return r, fmt.Errorf("times[%d]: end_time %s is not after start_time %s", i, tod.EndTime, tod.StartTime)
		}
		r.minutes = append(r.minutes, [2]int{from, to})
	}
	fields := []struct {
		name     string
		list     []string
		into     *[][2]int
		value    func(string) (int, error)
		min, max int
	}{
		{"weekdays", c.Weekdays, &r.weekdays, named(weekdayNames, "a day of the week"), 0, 6},
		{"days_of_month", c.DaysOfMonth, &r.days, dayOfMonth, -31, 31},
		{"months", c.Months, &r.months, namedOrNumber(monthNames, "a month"), 1, 12},
		{"years", c.Years, &r.years, strconv.Atoi, 1, 9999},
	}
	for _, f := range fields {
		for i, s := range f.list {
			p, err := rangeOf(s, f.value)
			if err == nil && (p[0] < f.min || p[1] > f.max || p[0] > p[1] && !(f.name == "days_of_month" && p[0] > 0 && p[1] < 0)) {
				err = fmt.Errorf("%q is not a range from %d to %d", s, f.min, f.max)
			}
			if err != nil {
				return r, fmt.Errorf("%s[%d]: %v", f.name, i, err)
			}
			*f.into = append(*f.into, p)
		}
	}
	return r, nil
}

// rangeOf reads "a" or "a:b".
func rangeOf(s string, value func(string) (int, error)) ([2]int, error) {
	from, to, isRange := strings.Cut(strings.TrimSpace(s), ":")
	a, err := value(strings.TrimSpace(from))
	if err != nil {
		return [2]int{}, err
	}
	if !isRange {
		return [2]int{a, a}, nil
	}
	b, err := value(strings.TrimSpace(to))
	return [2]int{a, b}, err
}

func named(names map[string]int, what string) func(string) (int, error) {
	return func(s string) (int, error) {
		if v, ok := names[strings.ToLower(s)]; ok {
			return v, nil
		}
		return 0, fmt.Errorf("%q is not %s", s, what)
	}
}

func namedOrNumber(names map[string]int, what string) func(string) (int, error) {
	return func(s string) (int, error) {
		if n, err := strconv.Atoi(s); err == nil {
			return n, nil
		}
		return named(names, what)(s)
	}
}

func dayOfMonth(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a day of the month (1 to 31, or -1 for the last)", s)
	}
	return n, nil
}

// minuteOfDay reads HH:MM (00:00 to 24:00).
func minuteOfDay(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 || hh*60+mm > 24*60 {
		return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
	}
	return hh*60 + mm, nil
}
