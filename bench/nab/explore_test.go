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
	for _, levels := range []int{8, 10, 14} {
		for _, decay := range []float64{0.999, 0.9995} {
			cfg := anomaly.DefaultDetectorConfig
			cfg.Levels, cfg.Decay = levels, decay
			files := detectWith(corpus, cfg)
			line := fmt.Sprintf("levels %d decay %v:", levels, decay)
			for _, p := range Profiles {
				line += fmt.Sprintf(" %.2f", Sweep(files, p).Normalised)
			}
			t.Log(line)
		}
	}
}
