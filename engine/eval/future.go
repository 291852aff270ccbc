package eval

import (
	"fmt"
	"strings"
	"time"
)

// CheckFuture refuses an event time more than maxFuture ahead of now (maxFuture < 0: no
// limit): the input policy's "in the future". A processor that keeps time from its records
// (a window's watermark, a series' clock) would otherwise move on by as much, and every later
// real record would be late.
func CheckFuture(t, now time.Time, maxFuture time.Duration) error {
	if maxFuture < 0 || t.Sub(now) <= maxFuture {
		return nil
	}
	return fmt.Errorf("event time %s is in the future: %s ahead of the clock (%s), more than max_future (%s)",
		t.UTC().Format(time.RFC3339Nano), ShortDuration(t.Sub(now)), now.UTC().Format(time.RFC3339Nano), ShortDuration(maxFuture))
}

// ShortDuration is d without Go's trailing zero units: 1h, not 1h0m0s.
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
