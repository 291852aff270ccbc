package anomaly

import (
	"math"
	"math/rand/v2"
	"testing"
)

// capability is a synthetic series with one anomaly the detector should report: the values
// at 5-minute steps from Monday 2024-01-01, and the anomaly's first and last index.
type capability struct {
	name       string
	values     []float64
	start, end int
	// earlier are intended events before the anomaly (an earlier, bigger spike): their
	// scores, and those of the three hours after them, are not false positives.
	earlier [][2]int
	// today is what the shipped detector does with it (outcome): the test fails when that
	// changes either way, so a gap closed is recorded, and a capability lost is seen.
	today string
}

// Outcomes: reported (at or above the shipped alert_above within three hours of the start,
// and nothing that high before); noisy (reported, but a false alert came before it);
// missed (nothing that high within three hours).
const (
	reported = "reported"
	noisy    = "reported, after a false alert"
	missed   = "missed"
)

const (
	capStep    = 300 // seconds
	capDay     = 86400 / capStep
	capMonday  = 1704067200 // 2024-01-01T00:00:00Z, a Monday
	capDetectN = 36         // the anomaly must be reported within 3 hours of its start
)

func dailyCycle(i int) float64 { return 50 + 20*math.Sin(2*math.Pi*float64(i%capDay)/capDay) }

// capabilities are the list (issue 23), each built from its own seed.
func capabilities() []capability {
	var out []capability
	add := func(name string, days, start, length int, today string, earlier [][2]int, value func(rng *rand.Rand, i int, in bool) float64) {
		rng := rand.New(rand.NewPCG(uint64(len(out)+1), 23))
		c := capability{name: name, start: start, end: start + length - 1, today: today, earlier: earlier}
		for i := range days * capDay {
			c.values = append(c.values, value(rng, i, i >= c.start && i <= c.end))
		}
		out = append(out, c)
	}
	bigSpike := 10 * capDay
	add("a spike smaller than an earlier spike", 28, 21*capDay+150, 6, reported, [][2]int{{bigSpike, bigSpike + 5}}, func(rng *rand.Rand, i int, in bool) float64 {
		v := dailyCycle(i) + rng.NormFloat64()
		switch {
		case i >= bigSpike && i < bigSpike+6:
			v += 120
		case in:
			v += 45
		}
		return v
	})
	add("a transient in the first hours", 28, 18*capDay+100, 6, reported, nil, func(rng *rand.Rand, i int, in bool) float64 {
		v := 50 + rng.NormFloat64()
		switch {
		case i < 24: // the first two hours: a start-up transient
			v = 200 - float64(i)*5
		case in:
			v += 40
		}
		return v
	})
	add("a ramp inside the range", 28, 20*capDay, 72, noisy, [][2]int{{5 * capDay, 5 * capDay}, {7 * capDay, 7 * capDay}}, func(rng *rand.Rand, i int, in bool) float64 {
		v := 50 + rng.NormFloat64()
		switch {
		case i == 5*capDay: // a rare reading that opened the range wide
			v = 95
		case i == 7*capDay:
			v = 5
		case in:
			v += 35 * float64(i-20*capDay) / 72 // up a third of the range over six hours
		}
		return v
	})
	add("a weekday shaped like a weekend", 35, 30*capDay+9*12, 8*12, reported, nil, func(rng *rand.Rand, i int, in bool) float64 {
		day, minute := (i/capDay)%7, (i%capDay)*5
		busy := day < 5 && minute >= 9*60 && minute < 17*60
		v := 20 + 2*rng.NormFloat64()
		if busy && !in { // the anomaly: a Wednesday without its working hours (9:00 to 17:00)
			v += 60
		}
		return v
	})
	add("a burst in a count series", 28, 20*capDay+200, 4, noisy, nil, func(rng *rand.Rand, i int, in bool) float64 {
		if in {
			return float64(poisson(rng, 30))
		}
		return float64(poisson(rng, 5))
	})
	add("a level shift", 28, 20*capDay, 7*capDay, noisy, nil, func(rng *rand.Rand, i int, in bool) float64 {
		v := dailyCycle(i) + rng.NormFloat64()
		if i >= 20*capDay {
			v += 12
		}
		return v
	})
	add("a stuck sensor", 28, 20*capDay, 3*capDay, noisy, nil, func(rng *rand.Rand, i int, in bool) float64 {
		if in {
			return 51.2 // the last reading, repeated
		}
		return 50 + 3*rng.NormFloat64()
	})
	return out
}

func poisson(rng *rand.Rand, mean float64) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func (c capability) nearEarlier(i int) bool {
	for _, e := range c.earlier {
		if i >= e[0] && i <= e[1]+capDetectN {
			return true
		}
	}
	return false
}

// run scores c and returns the highest score before the anomaly (after the detector learnt,
// two days in) and within capDetectN values of its start.
func (c capability) run(cfg DetectorConfig) (before, within float64) {
	d := NewDetector(cfg)
	for i, v := range c.values {
		s := d.Update(int64(capMonday+i*capStep), v).Score
		switch {
		case i >= 2*capDay && i < c.start && !c.nearEarlier(i):
			before = math.Max(before, s)
		case i >= c.start && i < c.start+capDetectN:
			within = math.Max(within, s)
		}
	}
	return before, within
}

// outcome is what the detector did with c at alert_above.
func (c capability) outcome(cfg DetectorConfig, alertAbove float64) (string, float64, float64) {
	before, within := c.run(cfg)
	switch {
	case within < alertAbove:
		return missed, before, within
	case before >= alertAbove:
		return noisy, before, within
	}
	return reported, before, within
}

// The capabilities, each on a synthetic series, at the shipped alert_above. The -v
// output is the table in docs/anomaly.md.
func TestDetectorCapabilities(t *testing.T) {
	for _, c := range capabilities() {
		got, before, within := c.outcome(DefaultDetectorConfig, DefaultAlertAbove)
		t.Logf("%-40s highest before %.3f, within 3 h %.3f: %s", c.name, before, within, got)
		if got != c.today {
			t.Errorf("%s: %s (before %.3f, within %.3f), recorded as %s: update the record if a gap closed, or find what was lost", c.name, got, before, within, c.today)
		}
	}
}

// Each component is what reports its capability: without it, that capability is missed and
// nothing else of the capability table changes. The weekly signal (weekly: false) reports
// the Wednesday without its working hours, the jump component the spike smaller than an
// earlier one, the run signal the stuck sensor.
func TestEachComponentReportsItsCapability(t *testing.T) {
	off := false
	noJumps, noRuns := DefaultDetectorConfig, DefaultDetectorConfig
	noJumps.JumpWeight, noRuns.Runs = 0, false
	for _, without := range []struct {
		component, capability string
		cfg                   DetectorConfig
	}{
		{"the weekly signal", "a weekday shaped like a weekend", detectorConfig(&Config{Weekly: &off})},
		{"the jump component", "a spike smaller than an earlier spike", noJumps},
		{"the run signal", "a stuck sensor", noRuns},
	} {
		for _, c := range capabilities() {
			got, before, within := c.outcome(without.cfg, DefaultAlertAbove)
			want := c.today
			if c.name == without.capability {
				want = missed
			}
			if got != want {
				t.Errorf("without %s: %s: %s (before %.3f, within %.3f), want %s", without.component, c.name, got, before, within, want)
			}
		}
	}
}

// The weekly signal raises nearly no false alert on calm cycles that the detector without it
// does not: at most one per twenty series over eight weeks (its margin joins the combined
// evidence even when another signal leads).
func TestWeeklySeasonalityAddsNoFalseAlerts(t *testing.T) {
	off := false
	daily := detectorConfig(&Config{Weekly: &off})
	for _, noise := range []float64{0.5, 2, 5} {
		with, without := fleetCalmAlerts(DefaultDetectorConfig, noise), fleetCalmAlerts(daily, noise)
		t.Logf("noise %.1f: %d false alerts from 40 calm series over eight weeks with the weekly signal, %d without it", noise, with, without)
		if with > without+40/20 {
			t.Errorf("noise %.1f: the weekly signal raised %d false alerts against %d without it", noise, with, without)
		}
	}
}

// A count series that goes quiet at night (no errors, an idle queue: 0 for hours) after days
// of being busy around the clock is quiet, not stuck: the run signal does not count runs at
// the lowest value the series has shown, so it adds nothing to what the other signals say of
// those nights.
func TestQuietNightsAreNotAStuckSensor(t *testing.T) {
	highest := func(cfg DetectorConfig) float64 {
		d := NewDetector(cfg)
		rng := rand.New(rand.NewPCG(1, 2))
		h := 0.0
		for i := range 21 * capDay {
			v := float64(poisson(rng, 5))
			if hour := (i % capDay) / 12; i >= 5*capDay && (hour < 7 || hour >= 23) {
				v = 0
			}
			h = math.Max(h, d.Update(int64(capMonday+i*capStep), v).Score)
		}
		return h
	}
	noRuns := DefaultDetectorConfig
	noRuns.Runs = false
	if with, without := highest(DefaultDetectorConfig), highest(noRuns); with != without {
		t.Errorf("counts with quiet nights scored up to %.3f with the run signal, %.3f without it: the nights' zeros count as a stuck sensor", with, without)
	}
}

// Combining the signals' margins and calibrating each series by its own incidents (issue 23)
// raise fewer false alerts on calm cycles than the detector before them (the largest margin
// alone, uncalibrated): the "calm-cycle false-alert rate no higher than today's".
func TestCalibrationRaisesNoMoreCalmAlerts(t *testing.T) {
	before := DefaultDetectorConfig
	before.Combine, before.Calibrate = 0, 0
	for _, noise := range []float64{0.5, 2, 5} {
		now, then := fleetCalmAlerts(DefaultDetectorConfig, noise), fleetCalmAlerts(before, noise)
		t.Logf("noise %.1f: %d false alerts from 40 calm series over eight weeks, %d before calibration", noise, now, then)
		if now > then {
			t.Errorf("noise %.1f: %d false alerts, %d before calibration", noise, now, then)
		}
	}
}

// fleetCalmAlerts counts the false alerts at the shipped alert_above from 40 calm series (a
// daily cycle with Gaussian noise) over eight weeks.
func fleetCalmAlerts(cfg DetectorConfig, noise float64) int {
	n := 0
	for seed := range uint64(40) {
		a, b := calmAlertsWith(cfg, []float64{DefaultAlertAbove}, noise, seed)
		n += a[0] + b[0]
	}
	return n
}
