package main

import "testing"

// A held-out category is scored at the threshold its fold chose on the other categories,
// never at its own best: with category a's window scored 0.6 and b's best threshold 0.95, a
// scores as missed.
func TestLeaveOneCategoryOutChoosesOnTheOthersOnly(t *testing.T) {
	file := func(name string, windowScore, noise float64) *scored {
		s := make([]float64, 200)
		for i := range s {
			s[i] = noise
		}
		for i := 150; i < 160; i++ {
			s[i] = windowScore
		}
		return &scored{name: name, scores: s, windows: [][2]int{{150, 170}}, probation: probation(len(s))}
	}
	corpus := []*series{{name: "a/1.csv", category: "a"}, {name: "b/1.csv", category: "b"}, {name: "calm/1.csv", category: "calm"}}
	calm := &scored{name: "calm/1.csv", scores: make([]float64, 200), probation: 30}
	calm.scores[100] = 0.85 // a false positive only a threshold above 0.85 avoids
	scoredBy := map[string][]*scored{"v": {file("a/1.csv", 0.6, 0), file("b/1.csv", 0.95, 0), calm}}

	a := holdOut(corpus, scoredBy, "a")
	if a.Chosen["standard"] != 0.95 {
		t.Fatalf("holding out a chose threshold %v, want 0.95 (b's window, above calm's false positive)", a.Chosen["standard"])
	}
	if want := ScoreAt(scoredBy["v"][:1], Profiles[0], 0.95).Normalised; a.Score["standard"] != want || a.Score["standard"] != 0 {
		t.Errorf("a held out scores %v, want %v: its window (0.6) is missed at b's threshold", a.Score["standard"], want)
	}
	b := holdOut(corpus, scoredBy, "b")
	if b.Chosen["standard"] != 0.6 {
		t.Errorf("holding out b chose %v, want 0.6: a's window, calm's false positive costs less than missing it", b.Chosen["standard"])
	}
}

// A variant that only ties the shipped detector on a fold's training files is not chosen:
// the fold reports the shipped one.
func TestATieKeepsTheShippedVariant(t *testing.T) {
	scores := func() []*scored {
		s := make([]float64, 200)
		for i := 150; i < 160; i++ {
			s[i] = 0.9
		}
		f := func(name string) *scored {
			return &scored{name: name, scores: s, windows: [][2]int{{150, 170}}, probation: probation(len(s))}
		}
		return []*scored{f("a/1.csv"), f("b/1.csv")}
	}
	corpus := []*series{{name: "a/1.csv", category: "a"}, {name: "b/1.csv", category: "b"}}
	f := holdOut(corpus, map[string][]*scored{"a tie": scores(), shipped: scores()}, "a")
	if f.Variant["standard"] != shipped {
		t.Errorf("chose %q on a tie, want %q", f.Variant["standard"], shipped)
	}
}
