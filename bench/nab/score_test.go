package main

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// nabDir is the NAB folder the tests read (it is not copied into the repository).
func nabDir(t *testing.T) string {
	t.Helper()
	// The shared data sits next to the repository on the team's machines.
	candidates := []string{os.Getenv("EVENTOPS_NAB"), "../../../shared/nab", "/work/shared/nab"}
	for _, dir := range candidates {
		if dir == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "labels", "combined_windows.json")); err == nil {
			return dir
		}
	}
	t.Skip("the NAB data is not there (looked in ../shared/nab next to the repository and /work/shared/nab); set EVENTOPS_NAB to a folder with NAB's layout")
	return ""
}

// publishedScores are a detector's published per-row scores for the corpus's files.
func publishedScores(t *testing.T, dir, detector string, corpus []*series) []*scored {
	t.Helper()
	var out []*scored
	for _, s := range corpus {
		file := filepath.Join(dir, "results", detector, s.category, detector+"_"+filepath.Base(s.name))
		scores, err := readScores(file)
		if err != nil {
			t.Fatal(err)
		}
		if len(scores) != len(s.values) {
			t.Fatalf("%s: %d scores for %d rows", file, len(scores), len(s.values))
		}
		out = append(out, &scored{name: s.name, scores: scores, windows: s.windows, probation: probation(len(scores))})
	}
	return out
}

// The scorer reproduces REFERENCE.md's check values: the published detectors' raw and
// normalised scores, windows detected and false-positive rows at NAB's published
// thresholds, and the optimum of the full threshold sweep with its threshold.
func TestScorerMatchesTheCheckValues(t *testing.T) {
	dir := nabDir(t)
	corpus, err := loadCorpus(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(corpus) != 41 {
		t.Fatalf("%d files, want 41", len(corpus))
	}
	windows := 0
	for _, s := range corpus {
		windows += len(s.windows)
	}
	if windows != 64 {
		t.Fatalf("%d windows, want 64", windows)
	}
	checks := []struct {
		detector, profile            string
		threshold, raw, normalised   float64
		detected, fpRows             int
		sweepRaw, sweepNorm, sweepAt float64
	}{
		{"numenta", "standard", 0.5421876907348634, 32.663967, 75.5187, 55, 59, 32.663967, 75.5187, 0.543099145074},
		{"numenta", "reward_low_FP_rate", 0.5751955032348636, 23.406085, 68.2860, 52, 47, 26.472908, 70.6820, 0.543099145074},
		{"numenta", "reward_low_FN_rate", 0.5421876907348634, 23.663967, 78.9916, 55, 59, 23.663967, 78.9916, 0.543099145074},
		{"contextOSE", "standard", 0.7655273437500002, 33.142165, 75.8923, 55, 42, 33.142165, 75.8923, 0.766433566434},
		{"contextOSE", "reward_low_FP_rate", 0.7656372070312502, 28.684105, 72.4095, 55, 42, 28.684105, 72.4095, 0.766433566434},
		{"contextOSE", "reward_low_FN_rate", 0.7047851562500003, 22.808474, 78.5461, 55, 70, 24.142165, 79.2407, 0.766433566434},
		{"windowedGaussian", "standard", 1.0, -11.018212, 41.3920, 39, 177, -10.976911, 41.4243, 0.999999999999},
		{"windowedGaussian", "reward_low_FP_rate", 1.0, -30.109597, 26.4769, 39, 177, -30.109597, 26.4769, 1.0},
		{"windowedGaussian", "reward_low_FN_rate", 1.0, -36.018212, 47.9072, 39, 177, -34.976911, 48.4495, 0.999999999999},
	}
	files := map[string][]*scored{}
	for _, c := range checks {
		if files[c.detector] == nil {
			files[c.detector] = publishedScores(t, dir, c.detector, corpus)
		}
		var p Profile
		for _, q := range Profiles {
			if q.Name == c.profile {
				p = q
			}
		}
		at := ScoreAt(files[c.detector], p, c.threshold)
		if math.Abs(at.Raw-c.raw) > 1e-6 || math.Abs(at.Normalised-c.normalised) > 1e-4 || at.Detected != c.detected || at.FPRows != c.fpRows {
			t.Errorf("%s %s at %v: raw %.6f, normalised %.4f, %d windows detected, %d FP rows; want %.6f, %.4f, %d, %d",
				c.detector, c.profile, c.threshold, at.Raw, at.Normalised, at.Detected, at.FPRows, c.raw, c.normalised, c.detected, c.fpRows)
		}
		best := Sweep(files[c.detector], p)
		if math.Abs(best.Raw-c.sweepRaw) > 1e-6 || math.Abs(best.Normalised-c.sweepNorm) > 1e-4 || math.Abs(best.Threshold-c.sweepAt) > 1e-12 {
			t.Errorf("%s %s sweep: raw %.6f, normalised %.4f at %v; want %.6f, %.4f at %v",
				c.detector, c.profile, best.Raw, best.Normalised, best.Threshold, c.sweepRaw, c.sweepNorm, c.sweepAt)
		}
	}
}
