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

func TestDetectorStateIsBounded(t *testing.T) {
	if Size() > 8<<10 {
		t.Fatalf("a series' state is up to %d bytes; the bound is 8 KiB", Size())
	}
	d := NewDetector(DefaultDetectorConfig)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 200_000 {
		d.Update(int64(i*60), rng.ExpFloat64()*1000) // a long tail: ever new levels and pairs
	}
	for name, tab := range map[string]countTable{"levels": d.levels, "transitions": d.transitions, "daily": d.daily} {
		if len(tab.keys) > cap(tab.keys) || cap(tab.keys) > 256 {
			t.Errorf("%s table: %d keys, capacity %d", name, len(tab.keys), cap(tab.keys))
		}
	}
	if d.warm != nil || len(d.short) > DefaultDetectorConfig.Short {
		t.Errorf("warm-up buffer %d, recent scores %d", len(d.warm), len(d.short))
	}
}

func BenchmarkDetector(b *testing.B) {
	d := NewDetector(DefaultDetectorConfig)
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
		if len(state) > Size()+4096 && at > DefaultDetectorConfig.Warmup {
			t.Errorf("a checkpoint after the warm-up is %d bytes", len(state))
		}
	}
	if err := NewDetector(DefaultDetectorConfig).UnmarshalBinary([]byte{99}); !errors.Is(err, errStateVersion) {
		t.Errorf("another version's checkpoint: %v", err)
	}
}
