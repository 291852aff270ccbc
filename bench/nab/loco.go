package main

import (
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/eventops/eventops-engine/processors/anomaly"
)

// Variants are the detector configurations the leave-one-category-out protocol chooses
// among, on the training categories only. Every variant ever tried is logged with its fold
// scores in docs/anomaly.md; a variant stays here only while it is a candidate.
var Variants = map[string]anomaly.DetectorConfig{
	shipped: anomaly.DefaultDetectorConfig,
}

// shipped names the shipped configuration: the one a candidate must beat, on a fold's
// training files, to be chosen (a tie keeps it).
const shipped = "shipped"

// fold is one held-out category: the variant and threshold chosen on the others, per profile,
// and the held-out category's outcome at them.
type fold struct {
	Category string             `json:"category"`
	Files    int                `json:"files"`
	Windows  int                `json:"windows"`
	Variant  map[string]string  `json:"variant"`   // per profile
	Chosen   map[string]float64 `json:"threshold"` // per profile
	Train    map[string]float64 `json:"train"`     // the chosen variant's score on the training files
	Score    map[string]float64 `json:"score"`     // on the held-out category
	raw      map[string]float64
}

// locoReport is what --loco prints: each fold, and the score pooled over them (every held-out
// file scored at its fold's threshold: NAB's normalisation over the sum of the folds).
type locoReport struct {
	Folds  []fold             `json:"folds"`
	Pooled map[string]float64 `json:"pooled"`
}

// leaveOneCategoryOut holds out each category with anomaly windows in turn: the variant and
// threshold are chosen by the best score on every other file (artificialNoAnomaly included),
// then the held-out category is scored at them. Nothing of a held-out category reaches a choice
// made for it.
func leaveOneCategoryOut(corpus []*series, variants map[string]anomaly.DetectorConfig) locoReport {
	scoredBy := map[string][]*scored{}
	for _, name := range slices.Sorted(maps.Keys(variants)) {
		scoredBy[name] = detectWith(corpus, variants[name])
	}
	var rep locoReport
	for _, cat := range labelledCategories(corpus) {
		rep.Folds = append(rep.Folds, holdOut(corpus, scoredBy, cat))
	}
	rep.Pooled = map[string]float64{}
	for _, p := range Profiles {
		raw, windows := 0.0, 0
		for _, f := range rep.Folds {
			raw, windows = raw+f.raw[p.Name], windows+f.Windows
		}
		rep.Pooled[p.Name] = normalise(raw, p, windows)
	}
	return rep
}

func holdOut(corpus []*series, scoredBy map[string][]*scored, cat string) fold {
	f := fold{Category: cat, Variant: map[string]string{}, Chosen: map[string]float64{}, Train: map[string]float64{}, Score: map[string]float64{}, raw: map[string]float64{}}
	split := func(files []*scored) (train, test []*scored) {
		for i, s := range files {
			if corpus[i].category == cat {
				test = append(test, s)
			} else {
				train = append(train, s)
			}
		}
		return train, test
	}
	for _, p := range Profiles {
		best := Outcome{Normalised: -1e18}
		for _, name := range candidatesFirstShipped(scoredBy) {
			train, _ := split(scoredBy[name])
			if o := Sweep(train, p); o.Normalised > best.Normalised {
				best, f.Variant[p.Name] = o, name
			}
		}
		_, test := split(scoredBy[f.Variant[p.Name]])
		out := ScoreAt(test, p, best.Threshold)
		f.Chosen[p.Name], f.Train[p.Name] = best.Threshold, best.Normalised
		f.Score[p.Name], f.raw[p.Name] = out.Normalised, out.Raw
		f.Files, f.Windows = len(test), out.Windows
	}
	return f
}

// labelledCategories are the categories with anomaly windows, sorted.
func labelledCategories(corpus []*series) []string {
	seen := map[string]bool{}
	for _, s := range corpus {
		if len(s.windows) > 0 {
			seen[s.category] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

func (r locoReport) print(w io.Writer) {
	fmt.Fprintln(w, "leave one category out: variant and threshold chosen on the other categories (artificialNoAnomaly always among them)")
	for _, f := range r.Folds {
		fmt.Fprintf(w, "  %-22s %2d files %3d windows: standard %6.2f  low_FP %6.2f  low_FN %6.2f  (variant %s, threshold %.4g; training %.2f)\n",
			f.Category, f.Files, f.Windows, f.Score["standard"], f.Score["reward_low_FP_rate"], f.Score["reward_low_FN_rate"],
			f.Variant["standard"], f.Chosen["standard"], f.Train["standard"])
	}
	for _, p := range Profiles {
		fmt.Fprintf(w, "pooled %s: %.2f\n", p.Name, r.Pooled[p.Name])
	}
}

// candidatesFirstShipped lists the variants, the shipped one first and the rest sorted, so
// that a variant that only ties it is not chosen.
func candidatesFirstShipped(scoredBy map[string][]*scored) []string {
	names := slices.Sorted(maps.Keys(scoredBy))
	if i := slices.Index(names, shipped); i > 0 {
		names = append([]string{shipped}, slices.Delete(names, i, i+1)...)
	}
	return names
}
