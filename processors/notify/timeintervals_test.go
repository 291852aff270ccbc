package notify

import (
	"strings"
	"testing"
	"time"
)

func TestTimeRangeContains(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	for _, tc := range []struct {
		name string
		r    TimeRangeConfig
		at   time.Time
		want bool
	}{
		{"in business hours", TimeRangeConfig{Times: []TimeOfDay{{"09:00", "17:00"}}, Weekdays: []string{"monday:friday"}}, time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), true},
		{"the end is excluded", TimeRangeConfig{Times: []TimeOfDay{{"09:00", "17:00"}}}, time.Date(2026, 12, 7, 17, 0, 0, 0, time.UTC), false},
		{"a weekend day", TimeRangeConfig{Weekdays: []string{"monday:friday"}}, time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC), false},
		{"until midnight", TimeRangeConfig{Times: []TimeOfDay{{"18:00", "24:00"}}}, time.Date(2026, 12, 7, 23, 59, 0, 0, time.UTC), true},
		{"the last day of the month", TimeRangeConfig{DaysOfMonth: []string{"-1"}}, time.Date(2026, 2, 28, 12, 0, 0, 0, time.UTC), true},
		{"not the last day", TimeRangeConfig{DaysOfMonth: []string{"-1"}}, time.Date(2028, 2, 28, 12, 0, 0, 0, time.UTC), false}, // 2028 is a leap year
		{"first to last", TimeRangeConfig{DaysOfMonth: []string{"1:-1"}}, time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC), true},
		{"months by name", TimeRangeConfig{Months: []string{"november:december"}}, time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), true},
		{"years", TimeRangeConfig{Years: []string{"2027:2030"}}, time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), false},
		// 08:30 UTC is 09:30 in Berlin in winter.
		{"read in a location", TimeRangeConfig{Times: []TimeOfDay{{"09:00", "10:00"}}, Location: "Europe/Berlin"}, time.Date(2026, 12, 7, 8, 30, 0, 0, time.UTC), true},
		{"the same instant in UTC", TimeRangeConfig{Times: []TimeOfDay{{"09:00", "10:00"}}}, time.Date(2026, 12, 7, 8, 30, 0, 0, berlin).UTC(), false},
	} {
		r, err := tc.r.compile()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := r.contains(tc.at); got != tc.want {
			t.Errorf("%s: contains(%s) = %v, want %v", tc.name, tc.at, got, tc.want)
		}
	}
}

func TestTimeRangeMistakes(t *testing.T) {
	for _, tc := range []struct {
		r    TimeRangeConfig
		want string
	}{
		{TimeRangeConfig{Times: []TimeOfDay{{"9", "17:00"}}}, `times[0].start_time: "9" is not a time of day`},
		{TimeRangeConfig{Times: []TimeOfDay{{"17:00", "09:00"}}}, "end_time 09:00 is not after start_time 17:00"},
		{TimeRangeConfig{Weekdays: []string{"funday"}}, `weekdays[0]: "funday" is not a day of the week`},
		{TimeRangeConfig{DaysOfMonth: []string{"0"}}, "days_of_month[0]"},
		{TimeRangeConfig{Months: []string{"13"}}, "months[0]"},
		{TimeRangeConfig{Location: "Mars/Olympus"}, "location"},
	} {
		if _, err := tc.r.compile(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.r, err, tc.want)
		}
	}
}

// A route muted by a time interval sends nothing while it holds, and notifies its group at
// the first flush after it; a route with active intervals sends only within them.
func TestMuteAndActiveTimeIntervals(t *testing.T) {
	c := &Config{
		Route: RouteConfig{Receiver: "ops", GroupBy: []string{"alertname"}, GroupWait: dur(30 * time.Second), GroupInterval: dur(5 * time.Minute),
			Routes: []RouteConfig{
				{Matchers: []string{`severity="warning"`}, MuteTimeIntervals: []string{"nine-to-ten"}},
				{Matchers: []string{`severity="info"`}, ActiveTimeIntervals: []string{"nine-to-ten"}},
			}},
		Receivers:     []ReceiverConfig{{Name: "ops"}},
		TimeIntervals: []TimeIntervalConfig{{Name: "nine-to-ten", TimeIntervals: []TimeRangeConfig{{Times: []TimeOfDay{{"09:00", "10:00"}}}}}},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	run(t, c.compile(), []step{ // t0 is 09:00 UTC
		{at: 0, in: []Alert{firing("disk", "a", "warning"), firing("backup", "a", "info")}},
		{at: 30 * time.Second, want: []string{"ops: backup/a=firing"}},
		{at: 55*time.Minute + 30*time.Second},
		{at: 60*time.Minute + 30*time.Second, want: []string{"ops: disk/a=firing"}},
	})
}

func TestTimeIntervalReferencesAreChecked(t *testing.T) {
	c := &Config{
		Route:     RouteConfig{Receiver: "ops", MuteTimeIntervals: []string{"x"}, Routes: []RouteConfig{{ActiveTimeIntervals: []string{"weekend"}}}},
		Receivers: []ReceiverConfig{{Name: "ops"}},
	}
	err := c.Validate()
	for _, want := range []string{"the root route cannot have mute_time_intervals", `route.routes[0].active_time_intervals[0]: time interval "weekend" is not declared`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want it to say %q", err, want)
		}
	}
}
