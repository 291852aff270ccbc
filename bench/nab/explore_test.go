package main

import (
	"fmt"
	"os"
	"testing"

	"github.com/eventops/eventops-engine/processors/anomaly"
)

// TestExplore scores a grid of detector settings (only with EVENTOPS_NAB_EXPLORE=1): a tool
// for choosing the defaults, not a check.
func TestExplore(t *testing.T) {
	if os.Getenv("EVENTOPS_NAB_EXPLORE") == "" {
		t.Skip("set EVENTOPS_NAB_EXPLORE=1 to explore detector settings")
	}
	corpus, err := loadCorpus(nabDir(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, learn := range []int64{0, 86400} {
		cfg := anomaly.DefaultDetectorConfig
		cfg.Learn = learn
		files := detectWith(corpus, cfg)
		line := fmt.Sprintf("learn %v:", learn)
		for _, p := range Profiles {
			line += fmt.Sprintf(" %.2f", Sweep(files, p).Normalised)
		}
		t.Log(line)
	}
}

// TestExplainFiles prints, per file, the windows found and the false positives at the
// standard sweep's threshold (only with EVENTOPS_NAB_EXPLORE=1).
func TestExplainFiles(t *testing.T) {
	if os.Getenv("EVENTOPS_NAB_EXPLORE") == "" {
		t.Skip("set EVENTOPS_NAB_EXPLORE=1")
	}
	corpus, err := loadCorpus(nabDir(t))
	if err != nil {
		t.Fatal(err)
	}
	files := detect(corpus)
	best := Sweep(files, Profiles[0])
	for _, f := range files {
		o := ScoreAt([]*scored{f}, Profiles[0], best.Threshold)
		t.Logf("%-55s windows %d/%d  FP rows %3d  raw %+.2f", f.name, o.Detected, len(f.windows), o.FPRows, o.Raw)
	}
}

// TestExploreEnsemble scores the mean and the max of two detectors with different settings
// (only with EVENTOPS_NAB_EXPLORE=1).
func TestExploreEnsemble(t *testing.T) {
	if os.Getenv("EVENTOPS_NAB_EXPLORE") == "" {
		t.Skip("set EVENTOPS_NAB_EXPLORE=1")
	}
	corpus, err := loadCorpus(nabDir(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]int{{10, 5}, {10, 20}, {6, 14}} {
		a, b := anomaly.DefaultDetectorConfig, anomaly.DefaultDetectorConfig
		a.Levels, b.Levels = pair[0], pair[1]
		fa, fb := detectWith(corpus, a), detectWith(corpus, b)
		for _, mode := range []string{"mean", "max"} {
			var files []*scored
			for i := range fa {
				f := *fa[i]
				f.scores = make([]float64, len(fa[i].scores))
				for j := range f.scores {
					x, y := fa[i].scores[j], fb[i].scores[j]
					if mode == "mean" {
						f.scores[j] = (x + y) / 2
					} else {
						f.scores[j] = max(x, y)
					}
				}
				files = append(files, &f)
			}
			line := fmt.Sprintf("levels %v %s:", pair, mode)
			for _, p := range Profiles {
				line += fmt.Sprintf(" %.2f", Sweep(files, p).Normalised)
			}
			t.Log(line)
		}
	}
}
