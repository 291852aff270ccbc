package anomaly

import (
	"math"
	"slices"
)

// DetectorConfig holds the detector's parameters. Defaults are what the processor ships
// with and what the NAB harness scores; nothing is tuned per series.
type DetectorConfig struct {
	// Warmup is how many values the detector learns from before it scores (it reports 0
	// meanwhile): they set the first ranges.
	Warmup int
	// Learn is how long (in the values' own time, seconds) a series learns before its
	// scores count: until then it reports 0, so that a new series does not alert on what it
	// has not seen yet. Two days: a day shows the daily cycle once, but a signal averaged
	// over 64 values has then seen only four or five independent windows of it, and noise
	// still sets new records.
	Learn int64
	// HalfLife (seconds of the values' time) is how fast the ranges forget: every HalfLife
	// they shrink halfway towards their middle, unless values hold them open. A series that
	// once spiked becomes sensitive again over months, not never.
	HalfLife int64
	// Margin is how far beyond its range (as a fraction of the range's width) a signal must
	// go to score 0.5: the score is m / (m + Margin) for a margin m.
	Margin float64
	// Quiet is how many values after a score a lower or equal score is reported as 0: an
	// incident is reported when it starts and again only if it grows.
	Quiet int
	// DailyAfter is how long (seconds of the values' time) the daily signal learns before
	// it scores: a week, so that weekdays and weekends have both shaped its range (and a
	// profile learnt over a few days has settled); negative: never.
	DailyAfter int64
	// WeeklyAfter is how long (seconds of the values' time) the weekly signal learns before
	// it scores: the distance from a profile of each half hour of the week (a Monday's
	// 10:00 is expected to look like the Mondays' 10:00 before it), averaged as the daily
	// one. Three weeks, so that every half hour of the week was seen three times; negative:
	// never.
	WeeklyAfter int64
	// Runs turns on the run signal: how many values in a row were exactly equal (log2,
	// counted from 12 on, and not at the lowest value the series has shown), scored against
	// the longest runs the series has shown — a stuck sensor.
	Runs bool
	// Combine weighs the signals' margins into one: the largest counts fully, the next
	// Combine times, the next Combine² times, and so on; 0: the largest alone.
	Combine float64
	// Calibrate makes a series' scores relative to its own incidents: the combined margin is
	// divided by 1 + Calibrate×n, where n counts the series' past incidents that scored at
	// least CalibrateLevel times as high, each weighted by 2^(-age/CalibrateHalfLife) (age in
	// the values' time). A series whose noise keeps setting records must go further than
	// before to score again; a first incident scores as it would without. 0: off.
	Calibrate         float64
	CalibrateLevel    float64
	CalibrateHalfLife int64
	// JumpWeight turns on the jump component, which needs no record: a value at least
	// JumpFrom robust deviations from the median of the 3 values before it (a spike, a
	// sudden drop) is scored by how rare such jumps have been in the series: its surprise is
	// log10((n+1)/(k+½)) for the n values and the k jumps at least 1/2.25 as large the
	// series made, both decaying with a half-life of JumpMemory values; beyond JumpSurprise,
	// each unit of surprise adds JumpWeight to the margins. A jump the series has not made in
	// weeks is news even inside its range (a spike smaller than an earlier one), and a young
	// series, which has not had the time to show its jumps, is not surprised yet. 0: off.
	JumpWeight   float64
	JumpSurprise float64
	JumpMemory   float64
}

// JumpFrom is how far (in robust deviations: the mean nonzero absolute change between
// values, each change counted at most four times the mean) a value must be from the median
// of the 3 values before it to count as a jump. Noise from any common distribution stays far
// below it; a count or metric that really jumps does not.
const JumpFrom = 10

// IncidentFloor is the lowest score (before calibration) an incident is remembered at, for
// Calibrate: about a 4% margin, well below any useful alert_above.
const IncidentFloor = 0.3

// WeeklyLearning is how long the weekly signal learns before it scores.
const WeeklyLearning = 21 * 86400

// DefaultDetectorConfig is the shipped configuration (chosen on NAB with bench/nab; see
// docs/anomaly.md).
var DefaultDetectorConfig = DetectorConfig{Warmup: 150, Learn: 2 * 86400, HalfLife: 90 * 86400, Margin: 0.1, Quiet: 20, DailyAfter: 7 * 86400, WeeklyAfter: WeeklyLearning, Runs: true,
	Combine: 0.5, Calibrate: 0.1, CalibrateLevel: 0.7, CalibrateHalfLife: 7 * 86400,
	JumpWeight: 0.8, JumpSurprise: 3.25, JumpMemory: 4032}

// The windows the signals are computed over, in values; fixed so that a series' state has
// a fixed size (see Size).
const (
	shortWindow = 16
	longWindow  = 64
	dailyWindow = 36 // residuals from the daily profile, averaged
	quietSlots  = 32 // the most Quiet can be
	// incidentSlots are the past incidents a series remembers for Calibrate.
	incidentSlots = 16
	// jumpLevels are the levels the jump component counts jumps at: a factor of 1.5 apart,
	// from jumpLevel0 of the value range's width.
	jumpLevels = 24
	jumpLevel0 = 0.001
	// jumpWindow values before a value give the median it is a jump from.
	jumpWindow = 3
	// dailyBuckets cut the day into half hours, each with its own expected value.
	dailyBuckets = 48
	// weeklyBuckets are the half hours of the week.
	weeklyBuckets = 7 * dailyBuckets
)

// The signals the detector watches; each has its own range.
const (
	sigValue = iota
	sigShortMean
	sigLongMean
	sigVolatility
	sigDaily
	sigWeekly
	sigRun
	numSignals
)

// Result is what the detector says about one value.
type Result struct {
	// Score is in [0, 1]: how far the most unusual signal went beyond anything the series
	// has shown (0 when nothing did, or when it is no more than what the last few values
	// already reported).
	Score float64
	// Raw is the score before quieting: how far the most unusual signal went beyond its
	// range at this value, whatever the last few values scored. Alerts hold on it (an
	// incident stays firing while it lasts); Score is what reports its start.
	Raw float64
	// Expected is the value the daily profile expects at this time of day (the recent
	// mean before the profile knows this half hour); Lower and Upper are the range the
	// series' values have held.
	Expected, Lower, Upper float64
	// Signal names what scored when Raw > 0: "new high", "new low", "level shift up",
	// "level shift down", "more volatile", "less volatile", "above the daily pattern",
	// "below the daily pattern", "above the weekly pattern", "below the weekly pattern",
	// "stuck", "sudden jump", "sudden drop".
	Signal string
}

// Detector scores one series, one value at a time, in a fixed size (see Size).
//
// It watches seven signals: the value, its mean over the last 16 and 64 values, its
// volatility (mean absolute change) over the last 64, its distance from a learnt daily and
// weekly profile (averaged over 36 values), and the run of equal values. Each signal keeps
// the range it has held, and its margin is how far it goes beyond it, relative to the
// range's width. A jump component adds a margin for a jump the series has not made lately,
// inside its range or not (JumpWeight). A value scores by the margins combined (the
// furthest counts fully, the others less: Combine), less when the series has had
// incidents as high lately (Calibrate). See docs/anomaly.md.
type Detector struct {
	cfg DetectorConfig
	st  detectorState
	// jumpDecay is what the jump counts keep of themselves at each value (JumpMemory).
	jumpDecay float32
}

// detectorState is the detector's whole state: fixed-size fields only, so that it encodes
// with encoding/binary as is (see state.go).
type detectorState struct {
	N           int64 // values seen
	First, Last int64 // the first and the latest value's time
	Interval    float64
	Values      [longWindow + 1]float64 // ring, the latest at (N-1) % len
	DailyDist   distances               // from the daily profile
	Hi, Lo      [numSignals]float64     // each signal's range
	Known       [numSignals]bool
	Profile     [dailyBuckets]float64 // the value expected in each half hour of the day
	ProfileN    [dailyBuckets]uint32
	Recent      [quietSlots]float64 // the last scores before quieting, ring at (N-1) % len
	// The weekly profile (float32: its values need no more, and the state stays small) and
	// the ring of distances from it, as the daily ones.
	Weekly     [weeklyBuckets]float32
	WeeklyN    [weeklyBuckets]uint16
	WeeklyDist distances
	// Run is how many values in a row have been equal (the run signal).
	Run int64
	// The series' last incidentSlots incidents (reported scores of at least IncidentFloor):
	// their score before calibration, and when (Calibrate).
	IncidentRaw [incidentSlots]float32
	IncidentAt  [incidentSlots]int64
	Incidents   int64
	// The jump component: the series' jumps, counted per level (their size in the value
	// range's widths, a factor of 1.5 apart) and the values, both decaying; the robust deviation; and the level of
	// the last value plus one (0: no jump), so that a jump is counted once, when it reaches
	// its level.
	JumpCounts [jumpLevels]float32
	JumpValues float32
	JumpScale  float64
	JumpLevel  int8
}

// distances is a ring of a series' last distances from one of its profiles, and when the
// first came.
type distances struct {
	Ring  [dailyWindow]float64
	N     int64
	First int64
}

// add puts the distance r (at t) in the ring and returns the ring's mean once it is full.
func (ds *distances) add(t int64, r float64) (mean float64, full bool) {
	if ds.N == 0 {
		ds.First = t
	}
	ds.Ring[ds.N%dailyWindow] = r
	ds.N++
	if ds.N < dailyWindow {
		return 0, false
	}
	sum := 0.0
	for _, x := range ds.Ring {
		sum += x
	}
	return sum / dailyWindow, true
}

// NewDetector returns a detector with cfg.
func NewDetector(cfg DetectorConfig) *Detector {
	cfg.Quiet = min(max(cfg.Quiet, 0), quietSlots)
	d := &Detector{cfg: cfg, jumpDecay: 1}
	if cfg.JumpMemory > 0 {
		d.jumpDecay = float32(math.Exp2(-1 / cfg.JumpMemory))
	}
	return d
}

// Update scores v, the series' next value, at t (Unix seconds).
func (d *Detector) Update(t int64, v float64) Result {
	d.advance(t)
	s := &d.st
	s.Values[s.N%int64(len(s.Values))] = v
	s.N++
	var sig signals
	expected := d.observe(t, v, &sig)
	m := d.margins(&sig)
	learning := int(s.N) <= d.cfg.Warmup || t-s.First < d.cfg.Learn
	if d.cfg.JumpWeight > 0 && sig.have[sigVolatility] {
		d.jump(v, sig.x[sigVolatility], learning, &m)
	}
	evidence := m.evidence(d.cfg.Combine)
	if learning {
		evidence = 0
	}
	uncalibrated := evidence / (evidence + d.cfg.Margin)
	evidence /= 1 + d.cfg.Calibrate*d.incidentsAsHigh(t, uncalibrated)
	raw := evidence / (evidence + d.cfg.Margin)
	score := d.quiet(raw)
	if score > 0 && uncalibrated >= IncidentFloor {
		d.recordIncident(t, uncalibrated)
	}
	r := Result{Score: score, Raw: raw, Expected: expected, Lower: s.Lo[sigValue], Upper: s.Hi[sigValue]}
	if raw > 0 {
		r.Signal = m.name()
	}
	return r
}

// advance moves the series' clock to t: the sampling interval, and the ranges' forgetting.
func (d *Detector) advance(t int64) {
	s := &d.st
	if s.N == 0 {
		s.First, s.Last = t, t
		return
	}
	dt := t - s.Last
	if dt <= 0 {
		return
	}
	if s.Interval == 0 {
		s.Interval = float64(dt)
	} else {
		s.Interval += 0.05 * (float64(dt) - s.Interval)
	}
	if d.cfg.HalfLife > 0 {
		d.forget(1 - math.Exp2(-float64(dt)/float64(d.cfg.HalfLife)))
	}
	s.Last = t
}

// signals are the values of the detector's signals at one value, which of them exist yet,
// and whether the daily and weekly ones score yet.
type signals struct {
	x                       [numSignals]float64
	have                    [numSignals]bool
	scoreDaily, scoreWeekly bool
}

// observe computes every signal at v (learning the profiles on the way) and returns the
// value the daily profile expects.
func (d *Detector) observe(t int64, v float64, sig *signals) (expected float64) {
	s := &d.st
	sig.x[sigValue], sig.have[sigValue] = v, true
	if d.cfg.Runs && s.N >= 2 {
		sig.x[sigRun], sig.have[sigRun] = d.run(v), true
	}
	if s.N >= longWindow+1 {
		sig.x[sigShortMean], sig.x[sigLongMean], sig.x[sigVolatility] = d.windows()
		sig.have[sigShortMean], sig.have[sigLongMean], sig.have[sigVolatility] = true, true, true
	}
	bucket := int((t%86400+86400)%86400) / (86400 / dailyBuckets)
	expected = v
	if s.ProfileN[bucket] > 0 {
		expected = s.Profile[bucket]
		if mean, full := s.DailyDist.add(t, v-expected); full {
			sig.x[sigDaily], sig.have[sigDaily] = mean, true
			sig.scoreDaily = d.cfg.DailyAfter >= 0 && t-s.DailyDist.First >= d.cfg.DailyAfter
		}
	} else if s.N >= longWindow+1 {
		expected = sig.x[sigLongMean]
	}
	d.learnProfile(bucket, v)
	sig.scoreWeekly = d.weekly(t, v, &sig.x, &sig.have)
	return expected
}

// run counts v into the run of equal values and returns the run signal. A run at the lowest
// value the series has shown is a quiet spell (no errors, an idle queue), not a stuck
// sensor; short runs say nothing (a quantised series repeats itself): a run counts from 12
// values on.
func (d *Detector) run(v float64) float64 {
	s := &d.st
	if v == s.Values[(s.N-2)%int64(len(s.Values))] && (!s.Known[sigValue] || v > s.Lo[sigValue]) {
		s.Run++
	} else {
		s.Run = 1
	}
	return math.Log2(float64(max(s.Run, 12)))
}

// margins are how far each signal went beyond its range at one value (0: within it), and
// which went furthest.
type margins struct {
	of                    [numSignals + 1]float64 // and the jump's, last
	top                   int                     // -1: none
	above                 bool
	valueLeft, valueAbove bool
}

// margins measures every signal against its range, then widens the ranges to hold it.
func (d *Detector) margins(sig *signals) margins {
	s := &d.st
	m := margins{top: -1}
	for i := range numSignals {
		if !sig.have[i] {
			continue
		}
		if !s.Known[i] {
			s.Hi[i], s.Lo[i], s.Known[i] = sig.x[i], sig.x[i], true
			continue
		}
		if (i != sigDaily || sig.scoreDaily) && (i != sigWeekly || sig.scoreWeekly) {
			m.measure(i, sig.x[i], s.Hi[i], s.Lo[i])
		}
		s.Hi[i], s.Lo[i] = math.Max(s.Hi[i], sig.x[i]), math.Min(s.Lo[i], sig.x[i])
	}
	return m
}

// measure sets signal i's margin at x against the range [lo, hi], in the range's widths.
func (m *margins) measure(i int, x, hi, lo float64) {
	width := hi - lo
	if width <= 0 {
		width = 1e-9 * math.Max(1, math.Abs(hi))
	}
	if i == sigWeekly {
		// Each half hour of the week is learnt from a seventh of the values the daily
		// profile has: its signal is noisier, and must go twice as far.
		width *= 2
	}
	up, down := (x-hi)/width, (lo-x)/width
	m.of[i] = max(up, down, 0)
	if m.of[i] > 0 && (m.top < 0 || m.of[i] > m.of[m.top]) {
		m.top, m.above = i, up > down
	}
	if i == sigValue && m.of[i] > 0 {
		m.valueLeft, m.valueAbove = true, up > down
	}
}

// evidence sums the margins, the largest first, each weighted by combine times the one
// before (1, ½, ¼, … for 0.5): an incident moves several signals at once (a drop takes the
// value, the level and the daily distance out of their ranges), noise mostly one.
func (m margins) evidence(combine float64) float64 {
	if m.top < 0 {
		return 0 // nothing left its range: most values
	}
	sorted := m.of
	slices.Sort(sorted[:])
	sum, w := 0.0, 1.0
	for k := len(sorted) - 1; k >= 0 && sorted[k] > 0 && w > 0; k-- {
		sum += w * sorted[k]
		w *= combine
	}
	return sum
}

// name is the signal that went furthest: the value's own when the value itself left its
// range (a spike also moves the volatility, further).
func (m margins) name() string {
	switch {
	case m.valueLeft:
		return signalNames[sigValue][btoi(!m.valueAbove)]
	case m.top == jumpSlot:
		return jumpNames[btoi(!m.above)]
	case m.top < 0:
		return ""
	}
	return signalNames[m.top][btoi(!m.above)]
}

// quiet reports raw, or 0 when one of the last Quiet raw scores was as high: an incident is
// reported when it starts, and again only if it grows.
func (d *Detector) quiet(raw float64) float64 {
	s := &d.st
	score := raw
	for i := 1; i <= d.cfg.Quiet && int64(i) < s.N; i++ {
		if s.Recent[(s.N-1-int64(i))%quietSlots] >= raw {
			score = 0
			break
		}
	}
	s.Recent[(s.N-1)%quietSlots] = raw
	return score
}

// incidentsAsHigh counts the series' past incidents that scored at least CalibrateLevel
// times raw (before calibration), each weighted by 2^(-age/CalibrateHalfLife).
func (d *Detector) incidentsAsHigh(t int64, raw float64) float64 {
	s := &d.st
	if d.cfg.Calibrate <= 0 || raw <= 0 {
		return 0
	}
	n := 0.0
	for i := range min(s.Incidents, incidentSlots) {
		if float64(s.IncidentRaw[i]) >= d.cfg.CalibrateLevel*raw {
			n += math.Exp2(-float64(t-s.IncidentAt[i]) / float64(d.cfg.CalibrateHalfLife))
		}
	}
	return n
}

// recordIncident remembers a reported incident's score before calibration, and when.
func (d *Detector) recordIncident(t int64, raw float64) {
	s := &d.st
	s.IncidentRaw[s.Incidents%incidentSlots], s.IncidentAt[s.Incidents%incidentSlots] = float32(raw), t
	s.Incidents++
}

// jumpSlot is the jump component's place among the margins.
const jumpSlot = numSignals

var jumpNames = [2]string{"sudden jump", "sudden drop"}

var signalNames = [numSignals][2]string{
	sigValue:      {"new high", "new low"},
	sigShortMean:  {"level shift up", "level shift down"},
	sigLongMean:   {"level shift up", "level shift down"},
	sigVolatility: {"more volatile", "less volatile"},
	sigDaily:      {"above the daily pattern", "below the daily pattern"},
	sigWeekly:     {"above the weekly pattern", "below the weekly pattern"},
	sigRun:        {"stuck", "stuck"},
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// windows returns the mean of the last shortWindow values, and the mean and the mean
// absolute change of the last longWindow values, in one pass: the short window is the long
// one's end.
func (d *Detector) windows() (shortMean, longMean, volatility float64) {
	s := &d.st
	size := int64(len(s.Values))
	prev := s.Values[(s.N-1-longWindow)%size]
	var sum, change, shortSum float64
	for i := s.N - longWindow; i < s.N; i++ {
		x := s.Values[i%size]
		sum += x
		change += math.Abs(x - prev)
		if i >= s.N-shortWindow {
			shortSum += x
		}
		prev = x
	}
	return shortSum / shortWindow, sum / longWindow, change / longWindow
}

// learnProfile moves the half hour's expected value towards v: a running mean over its
// first values, then an exponentially weighted one that remembers about 20 values a half
// hour at 5-minute sampling or slower (a few days), proportionally more when faster.
func (d *Detector) learnProfile(bucket int, v float64) {
	s := &d.st
	limit := 20.0
	if s.Interval > 0 {
		limit = math.Max(20, 20*300/s.Interval)
	}
	if float64(s.ProfileN[bucket]) < limit {
		s.ProfileN[bucket]++
	}
	s.Profile[bucket] += (v - s.Profile[bucket]) / float64(s.ProfileN[bucket])
}

// forget shrinks every range by the fraction f of its half-width, towards its middle.
func (d *Detector) forget(f float64) {
	s := &d.st
	for i := range numSignals {
		mid := (s.Hi[i] + s.Lo[i]) / 2
		s.Hi[i] -= f * (s.Hi[i] - mid)
		s.Lo[i] += f * (mid - s.Lo[i])
	}
}

// Size is the detector's state in bytes: fixed, whatever the series does.
func Size() int { return stateSize }

// weekly learns v into the half hour of the week of t and, once that half hour has a profile,
// sets the weekly signal (the mean distance from the profile over the last dailyWindow
// values); it says whether the signal scores yet (WeeklyAfter).
func (d *Detector) weekly(t int64, v float64, x *[numSignals]float64, have *[numSignals]bool) bool {
	s := &d.st
	if d.cfg.WeeklyAfter < 0 {
		return false
	}
	day := ((t/86400)%7 + 7) % 7 // the Unix epoch's weekday is as good a Monday as any
	b := int(day)*dailyBuckets + int((t%86400+86400)%86400)/(86400/dailyBuckets)
	scores := false
	if s.WeeklyN[b] > 0 {
		if mean, full := s.WeeklyDist.add(t, v-float64(s.Weekly[b])); full {
			x[sigWeekly], have[sigWeekly] = mean, true
			scores = t-s.WeeklyDist.First >= d.cfg.WeeklyAfter
		}
	}
	// A running mean over the half hour's first values, then one that remembers about 18
	// values a half hour at 5-minute steps (three weeks of that half hour).
	limit := 18.0
	if s.Interval > 0 {
		limit = math.Max(18, 18*300/s.Interval)
	}
	if float64(s.WeeklyN[b]) < limit {
		s.WeeklyN[b]++
	}
	s.Weekly[b] += float32((v - float64(s.Weekly[b])) / float64(s.WeeklyN[b]))
	return scores
}

// jump scores v by how far it is from the median of the 3 values before it, in robust
// deviations, and by how rare such jumps have been (JumpWeight); then it counts the value
// and the jump, and updates the deviation (started from the 64-value volatility, moved
// only by changes: the mean of the nonzero absolute changes, each at most four deviations).
func (d *Detector) jump(v, volatility float64, learning bool, m *margins) {
	s := &d.st
	if s.JumpScale == 0 {
		s.JumpScale = volatility
	}
	scale, median := s.JumpScale, d.recentMedian()
	// A value that repeats the last says nothing of how far values move: a series that
	// stays flat for hours keeps its deviation, and moving again is not a jump.
	if change := math.Abs(v - s.Values[(s.N-2)%int64(len(s.Values))]); change > 0 {
		s.JumpScale += (math.Min(change, 4*scale) - scale) / longWindow
	}
	if scale <= 0 {
		return
	}
	z := math.Abs(v-median) / scale
	level := -1
	if width := s.Hi[sigValue] - s.Lo[sigValue]; z >= JumpFrom/2.25 && width > 0 {
		// Levels are in the value range's widths, which move slowly, not in deviations,
		// which a quiet spell shrinks: a jump as large as the ones before stays at their level.
		level = min(max(int(math.Log(math.Abs(v-median)/width/jumpLevel0)/math.Log(1.5)), 0), jumpLevels-1)
	}
	if z >= JumpFrom && !learning {
		if mj := d.cfg.JumpWeight * (d.jumpSurprise(level) - d.cfg.JumpSurprise); mj > 0 {
			m.of[jumpSlot] = mj
			if m.top < 0 || mj > m.of[m.top] {
				m.top, m.above = jumpSlot, v > median
			}
		}
	}
	d.countJump(level)
}

// jumpSurprise is log10((n+1)/(k+½)) for the values n and the jumps k at level-2 or above.
func (d *Detector) jumpSurprise(level int) float64 {
	s := &d.st
	k := 0.0
	for l := max(level-2, 0); l < jumpLevels; l++ {
		k += float64(s.JumpCounts[l])
	}
	return math.Log10((float64(s.JumpValues) + 1) / (k + 0.5))
}

// countJump counts a value (at level, -1: none) into the decaying counts.
func (d *Detector) countJump(level int) {
	s := &d.st
	f := d.jumpDecay
	for l := range s.JumpCounts {
		s.JumpCounts[l] *= f
	}
	s.JumpValues = s.JumpValues*f + 1
	if level >= int(s.JumpLevel) && level >= 0 { // JumpLevel is the last value's level + 1
		s.JumpCounts[level]++
	}
	s.JumpLevel = int8(level + 1)
}

// recentMedian is the median of the jumpWindow values before the latest: what the next
// value is expected near, lagging little behind a trend.
func (d *Detector) recentMedian() float64 {
	s := &d.st
	var recent [jumpWindow]float64
	size := int64(len(s.Values))
	for k := range jumpWindow {
		recent[k] = s.Values[(s.N-2-int64(k))%size]
	}
	slices.Sort(recent[:])
	return recent[jumpWindow/2]
}
