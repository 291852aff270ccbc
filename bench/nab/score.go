package main

import (
	"math"
	"sort"
)

// Profile is one of NAB's cost profiles.
type Profile struct {
	Name       string
	TP, FN, FP float64
}

// Profiles are NAB v1.0's three profiles, in the order the harness prints them.
var Profiles = []Profile{
	{Name: "standard", TP: 1, FN: 1, FP: 0.11},
	{Name: "reward_low_FP_rate", TP: 1, FN: 1, FP: 0.22},
	{Name: "reward_low_FN_rate", TP: 1, FN: 2, FP: 0.11},
}

// scored is one file ready to score: the detector's score per row, its labelled windows as
// row indices, and the probation length.
type scored struct {
	name      string
	scores    []float64
	windows   [][2]int // [a, b], inclusive, sorted, not overlapping
	probation int
}

// probation is NAB's: 15% of the file, at most 750 rows.
func probation(n int) int { return min(int(math.Floor(0.15*float64(n))), 750) }

// sigma is NAB's scaled sigmoid, with its overflow guard kept for exact agreement.
func sigma(x float64) float64 {
	if x > 3 {
		return -1
	}
	return 2/(1+math.Exp(5*x)) - 1
}

// weights gives every row of f its weight under profile p (see REFERENCE.md): positive
// inside windows (tp at the first row, decaying), negative outside; and the window each row
// is in (-1 outside).
func (f *scored) weights(p Profile) (w []float64, window []int) {
	n := len(f.scores)
	w, window = make([]float64, n), make([]int, n)
	norm := sigma(-1)
	last := -1 // the most recent window ended before row i
	k := 0
	for i := range n {
		window[i] = -1
		for k < len(f.windows) && f.windows[k][1] < i {
			last = k
			k++
		}
		if k < len(f.windows) && f.windows[k][0] <= i {
			a, b := f.windows[k][0], f.windows[k][1]
			width := float64(b - a + 1)
			w[i] = p.TP * sigma(-float64(b-i+1)/width) / norm
			window[i] = k
			continue
		}
		if last < 0 {
			w[i] = -p.FP
			continue
		}
		a, b := f.windows[last][0], f.windows[last][1]
		width := float64(b - a + 1)
		w[i] = p.FP * sigma(float64(i-b)/(width-1))
	}
	return w, window
}

// Outcome is a score at a threshold.
type Outcome struct {
	Threshold  float64 // NaN: detect nothing
	Raw        float64
	Normalised float64
	Detected   int // windows with a detection
	FPRows     int // detections outside windows
	Windows    int
}

func normalise(raw float64, p Profile, windows int) float64 {
	perfect, null := p.TP*float64(windows), -p.FN*float64(windows)
	if perfect == null {
		return 0
	}
	return 100 * (raw - null) / (perfect - null)
}

// ScoreAt scores the files at one threshold (NaN: detect nothing).
func ScoreAt(files []*scored, p Profile, threshold float64) Outcome {
	out := Outcome{Threshold: threshold}
	if math.IsNaN(threshold) {
		threshold = math.Inf(1)
	}
	for _, f := range files {
		w, window := f.weights(p)
		hit := make([]bool, len(f.windows))
		for i := f.probation; i < len(f.scores); i++ {
			if f.scores[i] < threshold {
				continue
			}
			if k := window[i]; k >= 0 {
				if !hit[k] {
					hit[k] = true
					out.Raw += w[i] // the earliest detection: rows come in order
					out.Detected++
				}
				continue
			}
			out.Raw += w[i]
			out.FPRows++
		}
		for _, h := range hit {
			if !h {
				out.Raw -= p.FN
			}
		}
		out.Windows += len(f.windows)
	}
	out.Normalised = normalise(out.Raw, p, out.Windows)
	return out
}

// Sweep scores the files at every distinct score of a scored row (and at "detect nothing")
// and returns the best outcome; among thresholds that tie, the highest.
func Sweep(files []*scored, p Profile) Outcome {
	type row struct {
		score float64
		file  int
		index int
	}
	var rows []row
	var weights [][]float64
	var windowOf [][]int
	windows := 0
	for fi, f := range files {
		w, window := f.weights(p)
		weights, windowOf = append(weights, w), append(windowOf, window)
		windows += len(f.windows)
		for i := f.probation; i < len(f.scores); i++ {
			rows = append(rows, row{score: f.scores[i], file: fi, index: i})
		}
	}
	sort.Slice(rows, func(a, b int) bool { return rows[a].score > rows[b].score })
	// earliest[f][k] is the earliest detected row of window k of file f (-1: none yet).
	earliest := make([][]int, len(files))
	for fi, f := range files {
		earliest[fi] = make([]int, len(f.windows))
		for k := range earliest[fi] {
			earliest[fi][k] = -1
		}
	}
	cur := Outcome{Threshold: math.NaN(), Raw: -p.FN * float64(windows), Windows: windows}
	best := cur
	for i := 0; i < len(rows); {
		j := i
		for j < len(rows) && rows[j].score == rows[i].score {
			r := rows[j]
			w := weights[r.file][r.index]
			if k := windowOf[r.file][r.index]; k >= 0 {
				switch e := earliest[r.file][k]; {
				case e < 0:
					cur.Raw += p.FN + w
					cur.Detected++
					earliest[r.file][k] = r.index
				case r.index < e:
					cur.Raw += w - weights[r.file][e]
					earliest[r.file][k] = r.index
				}
			} else {
				cur.Raw += w
				cur.FPRows++
			}
			j++
		}
		cur.Threshold = rows[i].score
		// Sums built in another order differ in the last bits: a lower threshold must beat
		// a higher one by more than that to win.
		if cur.Raw > best.Raw+1e-9 {
			best = cur
		}
		i = j
	}
	best.Normalised = normalise(best.Raw, p, windows)
	return best
}
