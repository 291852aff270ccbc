package window

import (
	"fmt"
	"math"
)

// Quantile sketch.
//
// The pNN aggregates keep a relative-error sketch in the spirit of DDSketch (Masson, Rim and
// Lee, VLDB 2019): a value x > 0 is counted in bucket i = ceil(log_γ x), which holds the
// values in (γ^(i-1), γ^i], with γ = (1+α)/(1-α). Answering with 2γ^i/(γ+1) for any value
// of bucket i is wrong by at most α relative to that value. So a quantile read from the
// sketch is within α = 1% (relative) of the exact quantile of the window's values, where
// "the exact quantile q" of n values is the one of 0-based rank floor(q·(n-1)) in sorted
// order. Negative values are mirrored into a second set of buckets; values whose magnitude
// is below sketchMinValue count as 0.
//
// Why this sketch: it merges exactly (bucket counts add, which session windows need when an
// out-of-order record bridges two sessions), its error bound holds for every quantile and
// every input order (KLL and t-digest bounds are probabilistic or rank-based, and a 1%
// rank error on a latency tail can be a large value error), and a window of a few records
// costs a few bytes. Values from 1 to 100 span about 230 buckets (4 bytes each).
//
// The bound has one exception: at most sketchMaxBuckets buckets are kept per sign. When a
// window's magnitudes span more than that (a ratio above ~10^17 between the smallest and the
// largest), the smallest ones share the lowest kept bucket and their quantiles lose the
// guarantee. No metric we know of spans that much.
const (
	sketchAccuracy   = 0.01
	sketchMaxBuckets = 2048
	sketchMinValue   = 1e-9
)

var (
	sketchGamma   = (1 + sketchAccuracy) / (1 - sketchAccuracy)
	sketchLnGamma = math.Log(sketchGamma)
)

// sketch is a mergeable quantile sketch (see above). The zero value is empty.
type sketch struct {
	pos, neg buckets
	zero     uint64
	n        uint64
	// min and max are exact, to clamp estimates: p0 and p100 are exact, and no estimate
	// falls outside the values seen.
	min, max float64
}

// buckets are contiguous bucket counts: counts[i] is the count of bucket lo+i.
type buckets struct {
	lo     int32
	counts []uint32
}

func bucketIndex(abs float64) int32 {
	return int32(math.Ceil(math.Log(abs) / sketchLnGamma))
}

func bucketValue(i int32) float64 {
	return 2 * math.Pow(sketchGamma, float64(i)) / (sketchGamma + 1)
}

// add counts x, which must not be NaN.
func (s *sketch) add(x float64) {
	s.addN(x, 1)
}

func (s *sketch) addN(x float64, c uint64) {
	if s.n == 0 || x < s.min {
		s.min = x
	}
	if s.n == 0 || x > s.max {
		s.max = x
	}
	s.n += c
	switch {
	case x >= sketchMinValue:
		s.pos.add(bucketIndex(x), c)
	case x <= -sketchMinValue:
		s.neg.add(bucketIndex(-x), c)
	default:
		s.zero += c
	}
}

// add adds c to bucket i, growing the range as needed (and collapsing the lowest buckets
// when it would exceed sketchMaxBuckets).
func (b *buckets) add(i int32, c uint64) {
	if len(b.counts) == 0 {
		b.lo = i
		b.counts = make([]uint32, 1)
	}
	hi := b.lo + int32(len(b.counts)) - 1
	switch {
	case i < b.lo && hi-i+1 > sketchMaxBuckets:
		// Too far below the range: it joins the lowest bucket we may keep.
		b.grow(hi-sketchMaxBuckets+1, hi)
		i = b.lo
	case i < b.lo:
		b.grow(i, hi)
	case i > hi:
		b.grow(min(b.lo, i), i)
	}
	at := int(i - b.lo)
	// A bucket saturates instead of wrapping: four billion values of one window in one
	// bucket is beyond what a window is for.
	b.counts[at] = uint32(min(uint64(b.counts[at])+c, math.MaxUint32))
}

// grow makes the range [lo, hi]. When hi-lo+1 exceeds sketchMaxBuckets, the lowest
// buckets are folded into the lowest kept one.
func (b *buckets) grow(lo, hi int32) {
	if hi-lo+1 > sketchMaxBuckets {
		lo = hi - sketchMaxBuckets + 1
	}
	counts := make([]uint32, hi-lo+1)
	var folded uint64
	for j, c := range b.counts {
		idx := b.lo + int32(j)
		if idx < lo {
			folded += uint64(c)
			continue
		}
		counts[idx-lo] = c
	}
	counts[0] = uint32(min(uint64(counts[0])+folded, math.MaxUint32))
	b.lo, b.counts = lo, counts
}

// merge adds o's counts to s.
func (s *sketch) merge(o *sketch) {
	if o == nil || o.n == 0 {
		return
	}
	if s.n == 0 || o.min < s.min {
		s.min = o.min
	}
	if s.n == 0 || o.max > s.max {
		s.max = o.max
	}
	s.n += o.n
	s.zero += o.zero
	for j, c := range o.pos.counts {
		if c > 0 {
			s.pos.add(o.pos.lo+int32(j), uint64(c))
		}
	}
	for j, c := range o.neg.counts {
		if c > 0 {
			s.neg.add(o.neg.lo+int32(j), uint64(c))
		}
	}
}

// quantile estimates the value of rank floor(q·(n-1)); NaN when the sketch is empty.
func (s *sketch) quantile(q float64) float64 {
	switch {
	case s.n == 0:
		return math.NaN()
	case q <= 0:
		return s.min
	case q >= 1:
		return s.max
	}
	rank := q * float64(s.n-1)
	var seen float64
	est := s.max
	found := false
	// Most negative first: the negative buckets from the largest magnitude down.
	for j := len(s.neg.counts) - 1; j >= 0 && !found; j-- {
		if seen += float64(s.neg.counts[j]); seen > rank {
			est, found = -bucketValue(s.neg.lo+int32(j)), true
		}
	}
	if !found {
		if seen += float64(s.zero); seen > rank {
			est, found = 0, true
		}
	}
	for j := 0; j < len(s.pos.counts) && !found; j++ {
		if seen += float64(s.pos.counts[j]); seen > rank {
			est, found = bucketValue(s.pos.lo+int32(j)), true
		}
	}
	return math.Min(math.Max(est, s.min), s.max)
}

// encode appends s to b.
func (s *sketch) encode(e *encoder) {
	e.uvarint(s.n)
	if s.n == 0 {
		return
	}
	e.uvarint(s.zero)
	e.float(s.min)
	e.float(s.max)
	for _, b := range []*buckets{&s.pos, &s.neg} {
		e.varint(int64(b.lo))
		e.uvarint(uint64(len(b.counts)))
		for _, c := range b.counts {
			e.uvarint(uint64(c))
		}
	}
}

func (s *sketch) decode(d *decoder) error {
	*s = sketch{n: d.uvarint()}
	if s.n == 0 {
		return d.err
	}
	s.zero = d.uvarint()
	s.min = d.float()
	s.max = d.float()
	for _, b := range []*buckets{&s.pos, &s.neg} {
		b.lo = int32(d.varint())
		n := d.uvarint()
		if n > sketchMaxBuckets {
			return fmt.Errorf("sketch: %d buckets, at most %d", n, sketchMaxBuckets)
		}
		if n > 0 {
			b.counts = make([]uint32, n)
			for j := range b.counts {
				b.counts[j] = uint32(d.uvarint())
			}
		}
	}
	return d.err
}
