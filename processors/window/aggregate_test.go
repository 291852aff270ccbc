package window

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
)

// TestAggregates checks every aggregate on one window's records, given out of event-time
// order so that first, last and rate must order them.
func TestAggregates(t *testing.T) {
	// (second, value) pairs; a counter that resets between 30 and 40.
	type point struct {
		sec float64
		v   any
	}
	counter := []point{{10, 100.0}, {30, 160.0}, {20, 130.0}, {40, 20.0}, {50, 50.0}, {0, 90.0}}
	values := []point{{5, 3.0}, {1, 1.0}, {9, 7.0}, {3, nil}, {7, 5.0}}
	tests := []struct {
		agg    string
		points []point
		want   any
	}{
		{"count()", values, 5},
		{"count(value)", values, 4},
		{"sum(value)", values, 16.0},
		{"avg(value)", values, 4.0},
		{"min(value)", values, 1.0},
		{"max(value)", values, 7.0},
		{"first(value)", values, 1.0},
		{"last(value)", values, 7.0},
		{"stddev(value)", values, math.Sqrt(5)}, // population: values 1,3,5,7
		{"p50(value)", values, 3.0},
		{"p99(value)", values, 5.0},
		{"p00(value)", values, 1.0},
		{"distinct(value)", []point{{1, "x"}, {2, "y"}, {3, "x"}, {4, 1.0}, {5, 1}, {6, nil}}, 3},
		// Increases in time order: 90->100 10, ->130 30, ->160 30, reset ->20 20, ->50 30:
		// 120 over 50 s.
		{"rate(value)", counter, 120.0 / 50},
		{"rate()", values, 5.0 / 60},
		{"avg(value)", []point{{1, nil}}, nil},
		{"min(value)", []point{{1, nil}}, nil},
		{"rate(value)", []point{{1, 5.0}}, nil},
		{"p95(value)", []point{{1, nil}}, nil},
		{"sum(value)", []point{{1, nil}}, 0.0},
		{"distinct(value)", []point{{1, nil}}, 0},
		{"first(value)", []point{{2, "b"}, {1, "a"}, {1, "c"}}, "a"},
		{"last(value)", []point{{1, "a"}, {2, "b"}, {2, "c"}}, "c"}, // a tie goes to the later record
		{"sum(value * 2)", []point{{1, 1.5}, {2, 2.5}}, 8.0},
	}
	for _, tt := range tests {
		t.Run(tt.agg, func(t *testing.T) {
			p := newProc(t, &Config{Type: Tumbling, Size: config.Duration(time.Minute), Aggregate: aggs("out", tt.agg)}, nil)
			var recs []*engine.Record
			for i, pt := range tt.points {
				recs = append(recs, ev("a", pt.sec, pt.v, int64(i)))
			}
			recs = append(recs, ev("a", 60, 0.0, 99))
			out, rejects := process(t, p, recs...)
			if rejects.Len() > 0 {
				t.Fatal(lateReasons(rejects))
			}
			if len(out) != 1 {
				t.Fatalf("got %d windows, want 1", len(out))
			}
			got := out[0].Value["out"]
			if f, ok := tt.want.(float64); ok {
				g, isFloat := got.(float64)
				if !isFloat || math.Abs(g-f) > 0.01*math.Abs(f)+1e-12 {
					t.Errorf("%s = %v (%T), want %v", tt.agg, got, got, f)
				}
				return
			}
			if got != tt.want {
				t.Errorf("%s = %v (%T), want %v (%T)", tt.agg, got, got, tt.want, tt.want)
			}
		})
	}
}

// exactQuantile is the value of rank floor(q·(n-1)) of sorted, the definition the sketch's
// bound is stated for.
func exactQuantile(sorted []float64, q float64) float64 {
	return sorted[int(math.Floor(q*float64(len(sorted)-1)))]
}

// TestSketchRelativeError checks the documented bound: every quantile within 1% of the
// exact one, whatever the distribution and whether the sketch was built in one piece or
// merged from parts (as session windows are).
func TestSketchRelativeError(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() float64{
		"uniform 0-100":      func() float64 { return rng.Float64() * 100 },
		"latency lognormal":  func() float64 { return math.Exp(rng.NormFloat64()*1.5 + 3) },
		"normal around zero": func() float64 { return rng.NormFloat64() * 10 },
		"heavy tail":         func() float64 { return 1 / (rng.Float64() + 1e-6) },
		"with zeros":         func() float64 { return float64(rng.IntN(3)) },
		// The widest span the bucket cap keeps within the bound (a ratio of 10^16).
		"tiny and huge": func() float64 { return math.Pow(10, rng.Float64()*16-8) },
	}
	for name, draw := range dists {
		t.Run(name, func(t *testing.T) {
			for _, n := range []int{1, 2, 10, 1000, 100000} {
				vals := make([]float64, n)
				whole, a, b := &sketch{}, &sketch{}, &sketch{}
				for i := range vals {
					vals[i] = draw()
					whole.add(vals[i])
					if i%3 == 0 {
						a.add(vals[i])
					} else {
						b.add(vals[i])
					}
				}
				a.merge(b)
				slices.Sort(vals)
				for _, q := range []float64{0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1} {
					want := exactQuantile(vals, q)
					for form, s := range map[string]*sketch{"whole": whole, "merged": a} {
						got := s.quantile(q)
						if math.Abs(got-want) > sketchAccuracy*math.Abs(want)*(1+1e-9) {
							t.Errorf("n=%d q=%v (%s): got %v, exact %v: relative error %.4f > %v", n, q, form, got, want, math.Abs(got-want)/math.Abs(want), sketchAccuracy)
						}
					}
				}
			}
		})
	}
}

func TestSketchStaysSmall(t *testing.T) {
	s := &sketch{}
	for i := range 1_000_000 {
		s.add(1 + float64(i%100)) // 1..100
	}
	if n := len(s.pos.counts); n > 240 {
		t.Errorf("values 1..100 take %d buckets, want about 230", n)
	}
	// Beyond the cap (here 1e300 next to 1..100), the smallest magnitudes share the lowest
	// bucket, as documented; memory stays bounded and the extremes stay exact.
	s.add(1e300)
	s.add(1e-300)
	if n := len(s.pos.counts); n > sketchMaxBuckets {
		t.Errorf("%d buckets, more than the cap %d", n, sketchMaxBuckets)
	}
	if got := s.quantile(1); got != 1e300 {
		t.Errorf("p100 after collapsing = %v, want 1e300", got)
	}
	if got := s.quantile(0); got != 1e-300 {
		t.Errorf("p0 after collapsing = %v, want 1e-300", got)
	}

}

// TestDistinctError checks the documented bounds: exact up to 512 values, then within
// 5% (over three standard errors) on these seeds.
func TestDistinctError(t *testing.T) {
	for _, n := range []int{0, 1, 100, 512, 513, 1000, 5000, 20000, 100000, 1000000} {
		a, b := &distinct{}, &distinct{}
		for i := range n {
			v := "host-" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + itoa(i)
			a.add(v)
			a.add(v) // repeats do not count
			if i%2 == 0 {
				b.add(v)
			}
		}
		got := a.count()
		if n <= distinctExactMax && got != n {
			t.Errorf("n=%d: got %d, want exactly %d", n, got, n)
		}
		if rel := math.Abs(float64(got-n)) / math.Max(1, float64(n)); rel > 0.05 {
			t.Errorf("n=%d: got %d, relative error %.3f > 0.05", n, got, rel)
		}
		// Merging with a subset changes nothing.
		a.merge(b)
		if again := a.count(); again != got {
			t.Errorf("n=%d: merging a subset changed the count from %d to %d", n, got, again)
		}
	}
	if a, b := hashValue(1.0), hashValue(1); a != b {
		t.Error("1 and 1.0 hash differently")
	}
	if a, b := hashValue("1"), hashValue(1.0); a == b {
		t.Error(`"1" and 1 hash alike`)
	}
}

func itoa(i int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		if i /= 10; i == 0 {
			return string(b)
		}
	}
}

func TestParseCall(t *testing.T) {
	tests := []struct {
		src, fn, arg string
		q            float64
		err          string // "col N: message substring"
	}{
		{src: "count()", fn: "count"},
		{src: " avg( value ) ", fn: "avg", arg: "value"},
		{src: "p95(latency_ms / 1000)", fn: "p95", arg: "latency_ms / 1000", q: 0.95},
		{src: "p999(x)", fn: "p999", arg: "x", q: 0.999},
		{src: "p05(x)", fn: "p05", arg: "x", q: 0.05},
		{src: `last(tags["a)b"])`, fn: "last", arg: `tags["a)b"]`},
		{src: "avgg(value)", err: `col 1: unknown aggregate "avgg" (did you mean "avg"?)`},
		{src: "p5(x)", err: `col 1: unknown aggregate "p5"`},
		{src: "avg", err: "col 1: avg is a function: write avg(value)"},
		{src: "avg(value) * 2", err: "col 12: an aggregate is one call and nothing else"},
		{src: "avg(value", err: "col 4: ( without a closing )"},
		{src: "sum()", err: "col 4: sum needs an argument"},
		{src: "value", err: `col 1: unknown aggregate "value"`},
		{src: "42", err: "col 1: an aggregate is one call"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e := config.Expr{Src: tt.src, Pos: config.Pos{File: "p.yaml", Line: 3, Col: 10}, Path: "aggregate.x"}
			c, err := parseCall(e)
			if tt.err != "" {
				var col int
				var msg string
				if _, scanErr := fmtSscanCol(tt.err, &col, &msg); scanErr != nil {
					t.Fatal(scanErr)
				}
				ce, ok := err.(*config.Error)
				if !ok {
					t.Fatalf("got %v, want a *config.Error", err)
				}
				if ce.Pos.Col != 10+col-1 || !strings.Contains(ce.Msg, msg) {
					t.Errorf("got col %d %q, want col %d containing %q", ce.Pos.Col-9, ce.Msg, col, msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			arg := ""
			if c.arg != nil {
				arg = c.arg.Src
				if want := 10 + strings.Index(tt.src, tt.arg); c.arg.Pos.Col != want {
					t.Errorf("argument at col %d, want %d", c.arg.Pos.Col, want)
				}
			}
			if c.name != tt.fn || arg != tt.arg || c.q != tt.q {
				t.Errorf("got %s(%s) q=%v, want %s(%s) q=%v", c.name, arg, c.q, tt.fn, tt.arg, tt.q)
			}
		})
	}
}

// fmtSscanCol splits "col N: message".
func fmtSscanCol(s string, col *int, msg *string) (int, error) {
	head, rest, _ := strings.Cut(s, ": ")
	*msg = rest
	n := 0
	for _, r := range strings.TrimPrefix(head, "col ") {
		n = n*10 + int(r-'0')
	}
	*col = n
	return 2, nil
}

// TestDistinctStandardError measures what the docs claim of distinct beyond 512 values:
// about 1.6% standard error. Over 200 windows of 20,000 different values each the root mean
// square of the relative error must be near that, and the estimate unbiased.
func TestDistinctStandardError(t *testing.T) {
	const windows, n = 200, 20000
	var sumSq, sum float64
	for w := range windows {
		c := &distinct{}
		for i := range n {
			c.add("w" + itoa(w) + "-host-" + itoa(i))
		}
		rel := float64(c.count()-n) / n
		sum += rel
		sumSq += rel * rel
	}
	rms, bias := math.Sqrt(sumSq/windows), sum/windows
	if rms > 0.02 || rms < 0.012 {
		t.Errorf("relative standard error %.4f, the docs say about 0.016", rms)
	}
	if math.Abs(bias) > 0.004 { // 3 standard errors of the mean of 200
		t.Errorf("mean relative error %.4f: biased", bias)
	}
}
