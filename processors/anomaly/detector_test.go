package anomaly

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// A daily cycle with noise, 5-minute steps, then a spike: the warm-up scores nothing, the
// learnt cycle stays far below the spike's score, and the state stays within its bound
// whatever the series does.
func TestDetectorScoresASpikeAboveADailyCycle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	d := NewDetector(DefaultDetectorConfig)
	const step = 300
	value := func(i int) float64 {
		return 50 + 30*math.Sin(2*math.Pi*float64(i*step%86400)/86400) + rng.NormFloat64()
	}
	maxCycle := 0.0
	for i := range 288 * 6 {
		r := d.Update(int64(i*step), value(i))
		if i < DefaultDetectorConfig.Warmup && r.Score != 0 {
			t.Fatalf("value %d of the warm-up scored %v", i, r.Score)
		}
		if i >= 288*3 { // after three days
			maxCycle = math.Max(maxCycle, r.Score)
		}
	}
	spike := d.Update(int64(288*6*step), 400)
	if spike.Score <= maxCycle || spike.Signal == "" {
		t.Errorf("spike scored %v (%q); the learnt daily cycle scored up to %v", spike.Score, spike.Signal, maxCycle)
	}
	if maxCycle >= DefaultAlertAbove {
		t.Errorf("the daily cycle alone scored %v, at or above the default alert_above %v", maxCycle, DefaultAlertAbove)
	}
}

// The state has one size whatever the series does: a long tail of ever new values, then
// hours without a value, checkpoint to exactly Size bytes (plus the version byte).
func TestDetectorStateIsBounded(t *testing.T) {
	if Size() > 8<<10 {
		t.Fatalf("a series' state is %d bytes; the bound is 8 KiB", Size())
	}
	d := NewDetector(DefaultDetectorConfig)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 200_000 {
		d.Update(int64(i*60), rng.ExpFloat64()*1000)
	}
	d.Update(200_000*60+86400, 1)
	b, err := d.MarshalBinary()
	if err != nil || len(b) != 1+Size() {
		t.Fatalf("checkpoint of %d bytes (%v), want %d", len(b), err, 1+Size())
	}
}

// Each signal catches what the others miss, and says which it was. A flat series at 50
// with a little noise, sampled every 5 minutes for three days (with one early reading at
// 60 and one at 40), then:
func TestDetectorSignals(t *testing.T) {
	noise := func(rng *rand.Rand) float64 { return rng.NormFloat64() * 0.5 }
	for _, tc := range []struct {
		name   string
		after  func(i int, rng *rand.Rand) float64 // the value i steps after the three days
		signal string
	}{
		{"a spike", func(i int, rng *rand.Rand) float64 { return 80 }, "new high"},
		{"a dip", func(i int, rng *rand.Rand) float64 { return 20 }, "new low"},
		// Inside the range earlier lone readings opened: only the mean sees it.
		{"a level shift within the range", func(i int, rng *rand.Rand) float64 { return 56 + noise(rng) }, "level shift up"},
		// Inside that range too: only the volatility sees it.
		{"noise grows", func(i int, rng *rand.Rand) float64 { return 50 + 4*noise(rng) }, "more volatile"},
		// A flat line: the same value again and again, a run longer than any the series
		// showed (the volatility only falls slowly, under the default alert_above).
		{"a flat line", func(i int, rng *rand.Rand) float64 { return 50 }, "stuck"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(9, 10))
			d := NewDetector(DefaultDetectorConfig)
			const day = 288
			quiet := 0.0
			for i := range 3 * day {
				v := 50 + noise(rng)
				switch i {
				case 200:
					v = 60 // an early lone spike: the value's range now reaches 60
				case 400:
					v = 40 // and a lone dip: down to 40
				}
				r := d.Update(int64(i*300), v)
				if i > day+day/2 {
					quiet = math.Max(quiet, r.Score)
				}
			}
			if quiet >= DefaultAlertAbove {
				t.Fatalf("the flat series alone scored %v", quiet)
			}
			best := Result{}
			for i := range 64 {
				if r := d.Update(int64((3*day+i)*300), tc.after(i, rng)); r.Score > best.Score {
					best = r
				}
			}
			want := DefaultAlertAbove
			if best.Score < want || best.Signal != tc.signal {
				t.Errorf("scored %v (%q), want at least %v (%q)", best.Score, best.Signal, want, tc.signal)
			}
		})
	}
}

// A sustained new level is reported once, when it starts: its later values score 0 while
// their raw score says they are still beyond what the series had shown.
func TestDetectorReportsAnIncidentOnce(t *testing.T) {
	d := NewDetector(DefaultDetectorConfig)
	rng := rand.New(rand.NewPCG(11, 12))
	i := 0
	for ; i < 3*288; i++ {
		d.Update(int64(i*300), 50+rng.NormFloat64())
	}
	reported, held := 0, 0
	for j := range 10 {
		r := d.Update(int64((i+j)*300), 90+float64(j)*0.01) // rising very slowly: each a new high
		if r.Score >= DefaultAlertAbove {
			reported++
		}
		if r.Raw > 0 {
			held++
		}
	}
	if reported != 1 || held != 10 {
		t.Errorf("reported %d times, raw score above 0 for %d of 10 values; want 1 and 10", reported, held)
	}
}

// A range opened by a spike closes again over months: two days later the value's range
// still reaches the spike; half a year later it has closed and the same spike alerts again.
func TestDetectorForgets(t *testing.T) {
	d := NewDetector(DefaultDetectorConfig)
	rng := rand.New(rand.NewPCG(13, 14))
	const hour = 3600
	at := func(i int) int64 { return int64(i) * hour }
	i := 0
	for ; i < 24*10; i++ {
		d.Update(at(i), 50+rng.NormFloat64())
	}
	if r := d.Update(at(i), 150); r.Score < DefaultAlertAbove {
		t.Fatalf("the first spike scored %v", r.Score)
	}
	for i++; i < 24*12; i++ {
		d.Update(at(i), 50+rng.NormFloat64())
	}
	if r := d.Update(at(i), 50); r.Upper < 145 {
		t.Errorf("two days after the spike to 150 the range reaches only %v", r.Upper)
	}
	var before Result
	for i++; i < 24*220; i++ {
		before = d.Update(at(i), 50+rng.NormFloat64())
	}
	if r := d.Update(at(i), 150); r.Score < DefaultAlertAbove || before.Upper > 100 {
		t.Errorf("half a year later the range reached %v, and the same spike scored %v", before.Upper, r.Score)
	}
}

// calmAlerts counts the alerts a calm series raises at each of alertAbove (a raw score
// reaching it after one below it): a daily cycle between 15 and 85 with Gaussian noise of
// the given standard deviation, every 5 minutes for eight weeks; month 1 is the first 28
// days, month 2 the rest.
func calmAlerts(alertAbove []float64, noise float64, seed uint64) (month1, month2 []int) {
	return calmAlertsWith(DefaultDetectorConfig, alertAbove, noise, seed)
}

func calmAlertsWith(cfg DetectorConfig, alertAbove []float64, noise float64, seed uint64) (month1, month2 []int) {
	rng := rand.New(rand.NewPCG(seed, 99))
	d := NewDetector(cfg)
	month1, month2 = make([]int, len(alertAbove)), make([]int, len(alertAbove))
	prev := 0.0
	for i := range 288 * 56 {
		v := 50 + 35*math.Sin(2*math.Pi*float64(i%288)/288) + rng.NormFloat64()*noise
		raw := d.Update(int64(i*300), v).Raw
		for k, above := range alertAbove {
			if raw >= above && prev < above {
				if i < 288*28 {
					month1[k]++
				} else {
					month2[k]++
				}
			}
		}
		prev = raw
	}
	return month1, month2
}

// How often a calm series alerts, which is what a user pays for the detector's
// sensitivity: 40 series of a noisy daily cycle for eight weeks, at three noise levels. At
// the shipped alert_above a series raises at most one false alert in its first month on
// average, and fewer in its second, as its ranges fill in. The -v output is the table in
// docs/anomaly.md.
func TestDetectorCalmCyclesRarelyAlert(t *testing.T) {
	const series = 40
	alertAbove := []float64{DefaultAlertAbove, 0.45, 0.5, 0.55}
	for _, noise := range []float64{0.5, 2, 5} {
		first, second := make([]int, len(alertAbove)), make([]int, len(alertAbove))
		for seed := range uint64(series) {
			a, b := calmAlerts(alertAbove, noise, seed)
			for k := range alertAbove {
				first[k], second[k] = first[k]+a[k], second[k]+b[k]
			}
		}
		for k, above := range alertAbove {
			t.Logf("noise %.1f, alert_above %.2f: %.3f false alerts per series in month 1, %.3f in month 2", noise, above, float64(first[k])/series, float64(second[k])/series)
		}
		if first[0] > series || second[0] >= first[0] {
			t.Errorf("noise %.1f: %d alerts from %d calm series in their first month and %d in their second; want at most one a series, then fewer", noise, first[0], series, second[0])
		}
	}
}

func BenchmarkDetector(b *testing.B) { benchmarkDetector(b, DefaultDetectorConfig) }

// BenchmarkDetectorDailyOnly is the detector without the weekly signal (weekly: false).
func BenchmarkDetectorDailyOnly(b *testing.B) {
	off := false
	benchmarkDetector(b, detectorConfig(&Config{Weekly: &off}))
}

func benchmarkDetector(b *testing.B, cfg DetectorConfig) {
	d := NewDetector(cfg)
	rng := rand.New(rand.NewPCG(5, 6))
	values := make([]float64, 4096)
	for i := range values {
		values[i] = 50 + 30*math.Sin(float64(i)/40) + rng.NormFloat64()
	}
	i := 0
	for b.Loop() {
		d.Update(int64(i*300), values[i%len(values)])
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "values/s")
}

// BenchmarkEWMAFloor is the cheapest streaming detector there is, an exponentially weighted
// mean and deviation with a z-score: the floor the detector's cost is quoted against.
func BenchmarkEWMAFloor(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	values := make([]float64, 4096)
	for i := range values {
		values[i] = 50 + 30*math.Sin(float64(i)/40) + rng.NormFloat64()
	}
	var mean, dev, sink float64
	i := 0
	for b.Loop() {
		v := values[i%len(values)]
		z := math.Abs(v-mean) / math.Max(dev, 1e-9)
		mean += 0.01 * (v - mean)
		dev += 0.01 * (math.Abs(v-mean) - dev)
		sink += z
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "values/s")
	_ = sink
}

// A detector restored from its checkpoint goes on exactly as the one that was checkpointed,
// in the warm-up and after it.
func TestDetectorCheckpointRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, at := range []int{0, 100, DefaultDetectorConfig.Warmup, 2000} {
		a := NewDetector(DefaultDetectorConfig)
		i := 0
		for ; i < at; i++ {
			a.Update(int64(i*300), rng.NormFloat64()*10+50)
		}
		state, err := a.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		b := NewDetector(DefaultDetectorConfig)
		if err := b.UnmarshalBinary(state); err != nil {
			t.Fatalf("after %d values: %v", at, err)
		}
		for ; i < at+500; i++ {
			v := rng.NormFloat64()*10 + 50
			if i%97 == 0 {
				v = 500
			}
			ra, rb := a.Update(int64(i*300), v), b.Update(int64(i*300), v)
			if ra != rb {
				t.Fatalf("checkpointed after %d values: value %d scored %+v, the original %+v", at, i, rb, ra)
			}
		}
	}
	if err := NewDetector(DefaultDetectorConfig).UnmarshalBinary([]byte{99}); !errors.Is(err, errStateVersion) {
		t.Errorf("another version's checkpoint: %v", err)
	}
}

// The margins combine, the largest first, each weighted by Combine times the one before: two
// signals out of range say more than one; with Combine 0 the largest alone counts.
func TestEvidenceCombinesMargins(t *testing.T) {
	for _, tc := range []struct {
		margins []float64
		combine float64
		want    float64
	}{
		{[]float64{0.3}, 0.5, 0.3},
		{[]float64{0.1, 0.3}, 0.5, 0.35},
		{[]float64{0.1, 0.3, 0.2}, 0.5, 0.3 + 0.1 + 0.025},
		{[]float64{0.1, 0.3, 0.2}, 0, 0.3},
		{nil, 0.5, 0},
	} {
		var m margins
		copy(m.of[:], tc.margins)
		if got := m.evidence(tc.combine); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("margins %v, combine %v: evidence %v, want %v", tc.margins, tc.combine, got, tc.want)
		}
	}
}

// A series whose incidents keep coming scores each new one lower than an uncalibrated
// detector does, its first as high, and, after weeks without one, nearly as high again. A
// calm series (50 ± 1, 5-minute steps) gets a spike at noon every day from day 3 on, each a
// fifth higher than the one before (so each is a new high); then a bigger one after four
// quiet weeks.
func TestCalibrationLowersRepeatedIncidents(t *testing.T) {
	uncalibrated := DefaultDetectorConfig
	uncalibrated.Calibrate = 0
	spikes := func(cfg DetectorConfig) (raws []float64) {
		d := NewDetector(cfg)
		rng := rand.New(rand.NewPCG(5, 6))
		height := 20.0
		for i := range 288 * 40 {
			v := 50 + rng.NormFloat64()
			day, noon := i/288, i%288 == 144
			spike := noon && (day >= 3 && day < 10 || day == 38)
			if spike {
				v += height
				height *= 1.2
			}
			if r := d.Update(int64(i*300), v); spike {
				raws = append(raws, r.Raw)
			}
		}
		return raws
	}
	with, without := spikes(DefaultDetectorConfig), spikes(uncalibrated)
	t.Logf("calibrated %.3f\nuncalibrated %.3f", with, without)
	if with[0] != without[0] {
		t.Errorf("the first incident scored %.3f calibrated, %.3f without", with[0], without[0])
	}
	for k := 3; k < 7; k++ {
		if with[k] >= without[k] {
			t.Errorf("incident %d of a daily series of them scored %.3f calibrated, %.3f without", k+1, with[k], without[k])
		}
	}
	if last := len(with) - 1; with[last] < 0.9*without[last] || with[last] <= with[last-1] {
		t.Errorf("after four quiet weeks an incident scored %.3f calibrated, %.3f without (the one before: %.3f)", with[last], without[last], with[last-1])
	}
}

// The jump component scores a jump the series has not made lately, whatever its range
// says, and nothing else: noise never reaches it, a series that jumps every day stops
// scoring its jumps within days, and a series that moves again after a flat spell has not
// jumped.
func TestJumps(t *testing.T) {
	jumps := func(value func(rng *rand.Rand, i int) float64) (days []int) {
		d := NewDetector(DefaultDetectorConfig)
		rng := rand.New(rand.NewPCG(7, 8))
		for i := range 288 * 28 {
			r := d.Update(int64(capMonday+i*300), value(rng, i))
			if r.Signal == jumpNames[0] || r.Signal == jumpNames[1] {
				days = append(days, i/288)
			}
		}
		return days
	}
	for _, tc := range []struct {
		name  string
		value func(rng *rand.Rand, i int) float64
		want  func(days []int) bool
	}{
		{"Gaussian noise on a daily cycle", func(rng *rand.Rand, i int) float64 { return dailyCycle(i) + 3*rng.NormFloat64() },
			func(days []int) bool { return len(days) == 0 }},
		{"Poisson counts", func(rng *rand.Rand, i int) float64 { return float64(poisson(rng, 5)) },
			func(days []int) bool { return len(days) == 0 }},
		{"a square wave, 20 to 80 and back every day", func(rng *rand.Rand, i int) float64 {
			if i%288 < 144 {
				return 20 + rng.NormFloat64()
			}
			return 80 + rng.NormFloat64()
		}, func(days []int) bool { return len(days) == 0 || days[len(days)-1] < 7 }},
		{"flat for a day each week, then moving again", func(rng *rand.Rand, i int) float64 {
			if (i/288)%7 == 3 {
				return 50
			}
			return 50 + 2*rng.NormFloat64()
		}, func(days []int) bool { return len(days) == 0 }},
		{"a spike (+60 on ±1) on day 20, inside the range a bigger one (+120) opened on day 5", func(rng *rand.Rand, i int) float64 {
			switch i {
			case 5*288 + 100:
				return 170
			case 20*288 + 100:
				return 110
			}
			return 50 + rng.NormFloat64()
		}, func(days []int) bool { return len(days) == 1 && days[0] == 20 }},
	} {
		if days := jumps(tc.value); !tc.want(days) {
			t.Errorf("%s: jumps scored on days %v", tc.name, days)
		}
	}
}
