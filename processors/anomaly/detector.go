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
	// Context is the longest run of levels whose rarity is scored.
	Context int
	// Decay is how much of its count a run of levels keeps at each value: a level seen
	// long ago becomes rare again.
	Decay float64
}

// DefaultDetectorConfig is the shipped configuration (chosen on NAB with bench/nab; see
// docs/anomaly.md).
var DefaultDetectorConfig = DetectorConfig{Warmup: 150, Levels: 10, Context: 2, Decay: 0.999}

// Result is what the detector says about one value.
type Result struct {
	Score float64
	// Expected is the middle of the level band the value was expected in, and Lower and
	// Upper the band the detector has seen values in.
	Expected, Lower, Upper float64
	// Signal names what made the score: "new level", "new transition", "new pattern", "".
	Signal string
}

// Detector scores one series, one value at a time. This first version (issue 8 is in
// progress) cuts the warm-up's range into levels, scores how rare the current level and the
// last transition between levels have been (decayed counts), and turns that into an anomaly
// likelihood against the rarity's long run. Its state is not bounded yet.
type Detector struct {
	cfg DetectorConfig
	// post-processing of the raw novelty: its recent values, and its long-run mean and
	// variance (anomaly likelihood).
	short      []float64
	mean, vari float64
	n          int
	warm       []float64
	lo         float64              // level 0 starts here
	width      float64              // of a level
	recent     []int32              // the last Context levels, oldest first
	seen       []map[uint64]float64 // decayed counts of each run of levels, by length
	decay      float64
}

// NewDetector returns a detector with cfg.
func NewDetector(cfg DetectorConfig) *Detector {
	d := &Detector{cfg: cfg, decay: 1}
	for range cfg.Context {
		d.seen = append(d.seen, map[uint64]float64{})
	}
	return d
}

// Update scores v, the series' next value.
func (d *Detector) Update(v float64) Result {
	d.n++
	if d.width == 0 {
		d.warm = append(d.warm, v)
		if len(d.warm) < d.cfg.Warmup {
			return Result{Expected: v, Lower: v, Upper: v}
		}
		s := slices.Clone(d.warm)
		slices.Sort(s)
		lo, hi := s[len(s)/100], s[len(s)-1-len(s)/100]
		d.width = (hi - lo) / float64(d.cfg.Levels)
		if d.width <= 0 {
			d.width = math.Max(math.Abs(lo)*0.01, 1e-9)
		}
		d.lo = lo
		for _, x := range d.warm {
			d.learn(d.level(x))
		}
		d.warm = nil
		return Result{Expected: v, Lower: lo, Upper: hi}
	}
	lvl := d.level(v)
	counts := d.learn(lvl)
	score := 0.0
	signal := ""
	for k, c := range counts {
		r := 1 / (1 + c)
		score += r / float64(len(counts))
		if c < 0.5 && signal == "" {
			signal = [...]string{"new level", "new transition", "new pattern"}[min(k, 2)]
		}
	}
	return Result{Score: d.likelihood(score), Signal: signal, Expected: d.lo + (float64(lvl)+0.5)*d.width}
}

// likelihood turns a raw novelty into how unusual the recent novelty is against its long
// run: the probability, under a normal fit of the long run, of a mean of recent raw scores
// below the one seen (Numenta's anomaly likelihood), stretched so that 1 − 1e-10 is 1.
func (d *Detector) likelihood(raw float64) float64 {
	const shortN, alpha = 5, 0.002
	d.short = append(d.short, raw)
	if len(d.short) > shortN {
		d.short = d.short[1:]
	}
	s := 0.0
	for _, x := range d.short {
		s += x
	}
	s /= float64(len(d.short))
	sd := math.Max(math.Sqrt(d.vari), 0.03)
	z := (s - d.mean) / sd
	p := 0.5 * math.Erfc(-z/math.Sqrt2) // Φ(z)
	delta := raw - d.mean
	d.mean += alpha * delta
	d.vari = (1 - alpha) * (d.vari + alpha*delta*delta)
	return math.Log(1.0000000001-p) / math.Log(1-0.9999999999)
}

func (d *Detector) level(v float64) int32 {
	return int32(math.Floor((v - d.lo) / d.width))
}

// learn adds lvl to the recent levels and returns, per context length, how often (decayed)
// the run of levels ending with it was seen before.
func (d *Detector) learn(lvl int32) []float64 {
	d.recent = append(d.recent, lvl)
	if len(d.recent) > d.cfg.Context {
		d.recent = d.recent[1:]
	}
	// Counts decay by scaling the unit added each step up (exact, no pass over the table).
	d.decay /= d.cfg.Decay
	out := make([]float64, 0, d.cfg.Context)
	for k := 1; k <= len(d.recent); k++ {
		h := uint64(14695981039346656037)
		for _, l := range d.recent[len(d.recent)-k:] {
			h ^= uint64(uint32(l))
			h *= 1099511628211
		}
		c := d.seen[k-1][h]
		out = append(out, c/d.decay)
		d.seen[k-1][h] = c + d.decay
	}
	return out
}
