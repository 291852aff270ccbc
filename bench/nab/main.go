// Command nab scores the anomaly processor's detector on the Numenta Anomaly Benchmark:
//
//	go run ./bench/nab --nab DIR [--json] [--explain] [--loco]
//
// DIR has NAB's layout (data/<category>/*.csv, labels/combined_windows.json). Every file
// runs through the same detector code and default configuration the anomaly processor
// ships with, one value at a time; the scores are NAB v1.0's (score.go), with a full
// threshold sweep per profile. The last three lines are the normalised scores:
//
//	standard: X
//	reward_low_FP_rate: Y
//	reward_low_FN_rate: Z
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	"github.com/eventops/eventops-engine/processors/anomaly"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// report is what --json prints.
type report struct {
	Files      int                           `json:"files"`
	Windows    int                           `json:"windows"`
	Categories map[string]map[string]float64 `json:"categories"`
	Default    struct {
		AlertAbove float64            `json:"alert_above"`
		Scores     map[string]float64 `json:"scores"`
	} `json:"default_alert_above"`
	Sweep map[string]struct {
		Score     float64 `json:"score"`
		Threshold float64 `json:"threshold"`
		Detected  int     `json:"windows_detected"`
		FPRows    int     `json:"fp_rows"`
	} `json:"sweep"`
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("nab", "", "a folder with NAB's layout (data/<category>/*.csv, labels/combined_windows.json)")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	explain := fs.Bool("explain", false, "also list, per file, the windows found and the false positives at the standard threshold")
	only := fs.String("variant", "", "with --loco: offer only this variant (of bench/nab/loco.go's Variants), to see its fold scores alone")
	loco := fs.Bool("loco", false, "leave one category out: per labelled category, choose the variant and threshold on the other categories and score the one left out; print each fold and the pooled score (the figure that cannot flatter)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "nab: --nab DIR is required")
		return 2
	}
	corpus, err := loadCorpus(*dir)
	if err != nil {
		fmt.Fprintln(stderr, "nab:", err)
		return 1
	}
	if *loco {
		variants := Variants
		if *only != "" {
			cfg, ok := Variants[*only]
			if !ok {
				fmt.Fprintf(stderr, "nab: no variant %q; variants: %v\n", *only, slices.Sorted(maps.Keys(Variants)))
				return 2
			}
			variants = map[string]anomaly.DetectorConfig{*only: cfg}
		}
		rep := leaveOneCategoryOut(corpus, variants)
		if *asJSON {
			return writeJSON(stdout, stderr, rep)
		}
		rep.print(stdout)
		return 0
	}
	files := detect(corpus)
	var rep report
	rep.Files = len(files)
	for _, f := range files {
		rep.Windows += len(f.windows)
	}
	rep.Sweep = map[string]struct {
		Score     float64 `json:"score"`
		Threshold float64 `json:"threshold"`
		Detected  int     `json:"windows_detected"`
		FPRows    int     `json:"fp_rows"`
	}{}
	thresholds := map[string]float64{}
	for _, p := range Profiles {
		best := Sweep(files, p)
		thresholds[p.Name] = best.Threshold
		rep.Sweep[p.Name] = struct {
			Score     float64 `json:"score"`
			Threshold float64 `json:"threshold"`
			Detected  int     `json:"windows_detected"`
			FPRows    int     `json:"fp_rows"`
		}{best.Normalised, best.Threshold, best.Detected, best.FPRows}
	}
	// Per category, at the threshold the whole corpus's sweep chose for each profile.
	rep.Categories = map[string]map[string]float64{}
	byCategory := map[string][]*scored{}
	for i, f := range files {
		byCategory[corpus[i].category] = append(byCategory[corpus[i].category], f)
	}
	for cat, fs := range byCategory {
		rep.Categories[cat] = map[string]float64{}
		for _, p := range Profiles {
			rep.Categories[cat][p.Name] = ScoreAt(fs, p, thresholds[p.Name]).Normalised
		}
	}
	rep.Default.AlertAbove = anomaly.DefaultAlertAbove
	rep.Default.Scores = map[string]float64{}
	for _, p := range Profiles {
		rep.Default.Scores[p.Name] = ScoreAt(files, p, anomaly.DefaultAlertAbove).Normalised
	}

	if *asJSON {
		return writeJSON(stdout, stderr, rep)
	}
	fmt.Fprintf(stdout, "%d files, %d anomaly windows\n", rep.Files, rep.Windows)
	if *explain {
		fmt.Fprintln(stdout, "per file, at the standard profile's best threshold:")
		for _, f := range files {
			o := ScoreAt([]*scored{f}, Profiles[0], thresholds["standard"])
			fmt.Fprintf(stdout, "  %-58s windows %d/%d  false-positive rows %3d  raw %+.2f\n", f.name, o.Detected, len(f.windows), o.FPRows, o.Raw)
		}
	}
	fmt.Fprintln(stdout, "per category, at each profile's best threshold over all files:")
	for _, cat := range slices.Sorted(maps.Keys(rep.Categories)) {
		c := rep.Categories[cat]
		if windows(byCategory[cat]) == 0 {
			out := ScoreAt(byCategory[cat], Profiles[0], thresholds["standard"])
			fmt.Fprintf(stdout, "  %-24s no anomaly windows: %d false-positive rows at the standard threshold (%d files)\n", cat, out.FPRows, len(byCategory[cat]))
			continue
		}
		fmt.Fprintf(stdout, "  %-24s standard %6.2f  low_FP %6.2f  low_FN %6.2f  (%d files)\n", cat, c["standard"], c["reward_low_FP_rate"], c["reward_low_FN_rate"], len(byCategory[cat]))
	}
	fmt.Fprintf(stdout, "at the shipped alert_above %g: standard %.2f, reward_low_FP_rate %.2f, reward_low_FN_rate %.2f\n",
		rep.Default.AlertAbove, rep.Default.Scores["standard"], rep.Default.Scores["reward_low_FP_rate"], rep.Default.Scores["reward_low_FN_rate"])
	for _, p := range Profiles {
		s := rep.Sweep[p.Name]
		fmt.Fprintf(stdout, "  sweep %s: threshold %.6g, %d/%d windows detected, %d false-positive rows\n", p.Name, s.Threshold, s.Detected, rep.Windows, s.FPRows)
	}
	for _, p := range Profiles {
		fmt.Fprintf(stdout, "%s: %.2f\n", p.Name, rep.Sweep[p.Name].Score)
	}
	return 0
}

func windows(files []*scored) int {
	n := 0
	for _, f := range files {
		n += len(f.windows)
	}
	return n
}

// detect runs every file through a fresh detector with the shipped configuration.
func detect(corpus []*series) []*scored { return detectWith(corpus, anomaly.DefaultDetectorConfig) }

func detectWith(corpus []*series, cfg anomaly.DetectorConfig) []*scored {
	out := make([]*scored, len(corpus))
	for i, s := range corpus {
		d := anomaly.NewDetector(cfg)
		scores := make([]float64, len(s.values))
		for j, v := range s.values {
			scores[j] = d.Update(s.times[j].Unix(), v).Score
		}
		out[i] = &scored{name: s.name, scores: scores, windows: s.windows, probation: probation(len(scores))}
	}
	return out
}

func writeJSON(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintln(stderr, "nab:", err)
		return 1
	}
	return 0
}
