package anomaly

import (
	"math"
	"slices"
)

// DetectorConfig holds the detector's parameters. Defaults are what the processor ships
// with and what the NAB harness scores; nothing is tuned per series.
type DetectorConfig struct {
	// Warmup is how many values the detector learns from before it scores (it reports 0
	// meanwhile): they set the size of a value level.
	Warmup int
	// Levels is how many levels the warm-up's range is cut into.
	Levels int
	// Decay is how much of its count a level (or a transition between levels) keeps at each
	// value: one seen long ago becomes rare again.
	Decay float64
	// Short and Alpha shape the anomaly likelihood: the mean of the last Short raw scores
	// is compared with the raw score's long run, an exponentially weighted mean and
	// variance with weight Alpha.
	Short int
	Alpha float64
	// Learn is how long (in the values' own time, seconds) a series learns before its
	// scores count: until then it reports 0, so that a new series does not alert on what it
	// has not seen a whole day of (the night's levels in its first evening, say).
	Learn int64
	// Daily weighs, in the raw score, the rarity of the value's level at its hour of the
	// day: a daily cycle is learnt, so its peaks are not rare, and a level unusual for the
	// hour is.
	Daily float64
}

// DefaultDetectorConfig is the shipped configuration (chosen on NAB with bench/nab; see
// docs/anomaly.md).
var DefaultDetectorConfig = DetectorConfig{Warmup: 150, Levels: 10, Decay: 0.999, Short: 5, Alpha: 0.002, Daily: 0.2, Learn: 86400}

// Result is what the detector says about one value.
type Result struct {
	// Score is in [0, 1]: how unusual the recent values are against the series' history.
	Score float64
	// Expected is the middle of the value's level; Lower and Upper bound the levels the
	// series spends most of its time in (the warm-up's range, widened by what was seen).
	Expected, Lower, Upper float64
	// Signal names what made the values unusual: "rare level", "rare transition", or "".
	Signal string
}

// Detector scores one series, one value at a time, in bounded memory (see Size).
//
// It cuts the warm-up's range into levels; for each value it scores how rare the value's
// level and the transition from the previous level have been (decayed counts), and turns
// that raw rarity into an anomaly likelihood: how unusual the recent rarity is against its
// long run. See docs/anomaly.md.
type Detector struct {
	cfg DetectorConfig

	first    int64     // the first value's time
	warm     []float64 // the warm-up's values, until it ends
	warmT    []int64
	lo       float64 // where level 0 starts
	width    float64 // of a level; 0 during the warm-up
	last     int32   // the previous value's level
	hasLast  bool
	min, max float64 // seen since the warm-up

	// scale is what a count is added as now: counts decay by growing it (exact, and no pass
	// over the tables) until it is renormalised.
	scale       float64
	levels      countTable
	transitions countTable
	daily       countTable // (hour of day, level)

	// The likelihood: the last raw scores, and the raw score's long-run mean and variance.
	short      []float64
	mean, vari float64
}

// NewDetector returns a detector with cfg.
func NewDetector(cfg DetectorConfig) *Detector {
	return &Detector{cfg: cfg, scale: 1, levels: newCountTable(levelSlots), transitions: newCountTable(transitionSlots), daily: newCountTable(dailySlots)}
}

// Table sizes bound a series' state: a level is one of the few tens the range is cut into
// (plus the outliers), a transition one of their pairs seen; the rarest entries make room
// for new ones.
const (
	levelSlots      = 48
	transitionSlots = 128
	dailySlots      = 192
)

// Update scores v, the series' next value, at t (Unix seconds).
func (d *Detector) Update(t int64, v float64) Result {
	if d.width == 0 {
		if len(d.warm) == 0 {
			d.first = t
		}
		d.warm = append(d.warm, v)
		d.warmT = append(d.warmT, t)
		if len(d.warm) < d.cfg.Warmup {
			return Result{Expected: v, Lower: v, Upper: v}
		}
		d.endWarmup()
		return Result{Expected: v, Lower: d.min, Upper: d.max}
	}
	lvl := d.level(v)
	seenLevel, seenTransition, seenDaily := d.learn(t, lvl)
	rareLevel, rareTransition := 1/(1+seenLevel), 1/(1+seenTransition)
	raw := (rareLevel + rareTransition) / 2
	raw = (1-d.cfg.Daily)*raw + d.cfg.Daily/(1+seenDaily)

	signal := ""
	switch {
	case seenLevel < 0.5:
		signal = "rare level"
	case seenTransition < 0.5:
		signal = "rare transition"
	}
	d.min, d.max = math.Min(d.min, v), math.Max(d.max, v)
	score := d.likelihood(raw)
	if t-d.first < d.cfg.Learn {
		score, signal = 0, ""
	}
	return Result{Score: score, Signal: signal, Expected: d.lo + (float64(lvl)+0.5)*d.width, Lower: d.min, Upper: d.max}
}

// endWarmup sets the levels from the warm-up's values and learns them.
func (d *Detector) endWarmup() {
	s := slices.Clone(d.warm)
	slices.Sort(s)
	lo, hi := s[len(s)/100], s[len(s)-1-len(s)/100]
	d.width = (hi - lo) / float64(d.cfg.Levels)
	if d.width <= 0 || math.IsNaN(d.width) {
		d.width = math.Max(math.Abs(lo)*0.01, 1e-9)
	}
	d.lo, d.min, d.max = lo, s[0], s[len(s)-1]
	for i, x := range d.warm {
		d.learn(d.warmT[i], d.level(x))
	}
	d.warm, d.warmT = nil, nil
}

func (d *Detector) level(v float64) int32 {
	l := math.Floor((v - d.lo) / d.width)
	return int32(math.Max(math.Min(l, 1<<30), -(1 << 30)))
}

// learn counts lvl and the transition to it, and returns how often (decayed) each was seen
// before.
func (d *Detector) learn(t int64, lvl int32) (seenLevel, seenTransition, seenDaily float64) {
	d.scale /= d.cfg.Decay
	if d.scale > 1e100 {
		d.levels.rescale(d.scale)
		d.transitions.rescale(d.scale)
		d.daily.rescale(d.scale)
		d.scale = 1
	}
	hour := uint64((t % 86400) / 3600)
	seenDaily = d.daily.add(hour<<32|uint64(uint32(lvl)), d.scale) / d.scale
	seenLevel = d.levels.add(uint64(uint32(lvl)), d.scale) / d.scale
	if d.hasLast {
		seenTransition = d.transitions.add(uint64(uint32(d.last))<<32|uint64(uint32(lvl)), d.scale) / d.scale
	}
	d.last, d.hasLast = lvl, true
	return seenLevel, seenTransition, seenDaily
}

// likelihood turns a raw rarity into how unusual the recent rarity is against its long run:
// the probability, under a normal fit of the long run, of a mean of recent raw scores below
// the one seen (Numenta's anomaly likelihood), stretched so that its range near certainty
// spreads over [0, 1]: log(1.0000000001 − p) / log(1e-10).
func (d *Detector) likelihood(raw float64) float64 {
	if len(d.short) == d.cfg.Short {
		copy(d.short, d.short[1:])
		d.short = d.short[:len(d.short)-1]
	}
	d.short = append(d.short, raw)
	s := 0.0
	for _, x := range d.short {
		s += x
	}
	s /= float64(len(d.short))
	sd := math.Max(math.Sqrt(d.vari), 0.03)
	p := 0.5 * math.Erfc(-(s-d.mean)/sd/math.Sqrt2) // Φ(z)
	delta := raw - d.mean
	d.mean += d.cfg.Alpha * delta
	d.vari = (1 - d.cfg.Alpha) * (d.vari + d.cfg.Alpha*delta*delta)
	return math.Max(0, math.Log(1.0000000001-p)/math.Log(1-0.9999999999))
}

// countTable holds decayed counts of keys in a fixed number of slots; when it is full, the
// key with the lowest count makes room.
type countTable struct {
	keys   []uint64
	counts []float64
}

func newCountTable(slots int) countTable {
	return countTable{keys: make([]uint64, 0, slots), counts: make([]float64, 0, slots)}
}

// add adds w to key's count and returns the count before.
func (t *countTable) add(key uint64, w float64) float64 {
	if i := slices.Index(t.keys, key); i >= 0 {
		before := t.counts[i]
		t.counts[i] += w
		return before
	}
	if len(t.keys) < cap(t.keys) {
		t.keys, t.counts = append(t.keys, key), append(t.counts, w)
		return 0
	}
	low := 0
	for i, c := range t.counts {
		if c < t.counts[low] {
			low = i
		}
	}
	t.keys[low], t.counts[low] = key, w
	return 0
}

func (t *countTable) rescale(by float64) {
	for i := range t.counts {
		t.counts[i] /= by
	}
}

// Size is the detector's state in bytes, at most (its tables full, no warm-up buffer).
func Size() int {
	const word = 8
	return (levelSlots+transitionSlots+dailySlots)*2*word + // the count tables: key and count per slot
		DefaultDetectorConfig.Short*word + // recent raw scores
		16*word // the scalars and slice headers
}
