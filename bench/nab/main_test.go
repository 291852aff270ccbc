package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeNABFolder writes a folder with NAB's layout that none of the shared files are in: a
// category of two ten-day CPU series at 5-minute steps with a daily cycle, one of them
// with an hour-long spike on day 8 inside its one labelled window.
func writeNABFolder(t *testing.T, labels map[string][][2]string) string {
	t.Helper()
	dir := t.TempDir()
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	spikeAt := start.Add(8*24*time.Hour + 14*time.Hour)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, name := range []string{"calm", "spike"} {
		var b strings.Builder
		b.WriteString("timestamp,value\n")
		for i := range 10 * 288 {
			ts := start.Add(time.Duration(i) * 5 * time.Minute)
			v := 40 + 20*math.Sin(2*math.Pi*float64(ts.Hour()*60+ts.Minute())/1440) + rng.NormFloat64()
			if name == "spike" && !ts.Before(spikeAt) && ts.Before(spikeAt.Add(time.Hour)) {
				v = 97
			}
			fmt.Fprintf(&b, "%s,%g\n", ts.Format(nabTime), v)
		}
		if err := os.MkdirAll(filepath.Join(dir, "data", "synthCPU"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "data", "synthCPU", name+".csv"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if labels == nil {
		window := [2]string{spikeAt.Add(-6 * time.Hour).Format(nabTime + ".000000"), spikeAt.Add(6 * time.Hour).Format(nabTime + ".000000")}
		labels = map[string][][2]string{"synthCPU/calm.csv": {}, "synthCPU/spike.csv": {window}}
	}
	raw, err := json.Marshal(labels)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "labels"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "labels", "combined_windows.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The harness runs on any folder with NAB's layout, not only the shared files: it ends with
// the three profile lines, finds a spike it has never seen without a false positive on the
// calm series, and --json reports the same scores.
func TestHarnessRunsOnAnyNABFolder(t *testing.T) {
	dir := writeNABFolder(t, nil)
	var out, errs bytes.Buffer
	if rc := run([]string{"--nab", dir}, &out, &errs); rc != 0 {
		t.Fatalf("exit %d: %s", rc, errs.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("output:\n%s", out.String())
	}
	printed := map[string]float64{}
	for i, p := range Profiles {
		name, value, ok := strings.Cut(lines[len(lines)-3+i], ": ")
		score, err := strconv.ParseFloat(value, 64)
		if !ok || name != p.Name || err != nil {
			t.Fatalf("line %d from the end is %q, want %q: <score>", 3-i, lines[len(lines)-3+i], p.Name)
		}
		printed[name] = score
	}
	// Finding the one window at the spike's start and nothing else scores above 80 on
	// every profile; a miss, or a false positive on the calm series, scores well under.
	for name, score := range printed {
		if score < 80 {
			t.Errorf("%s: %v on a spike the detector should find\n%s", name, score, out.String())
		}
	}
	if !strings.Contains(out.String(), "at the shipped alert_above") {
		t.Errorf("no line for the shipped alert_above:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "synthCPU ") {
		t.Errorf("no per-category line for synthCPU:\n%s", out.String())
	}

	out.Reset()
	if rc := run([]string{"--nab", dir, "--json"}, &out, &errs); rc != 0 {
		t.Fatalf("--json: exit %d: %s", rc, errs.String())
	}
	var rep report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out.String())
	}
	for name, score := range printed {
		if got := rep.Sweep[name].Score; math.Abs(got-score) > 0.005 {
			t.Errorf("--json %s: %v, printed %v", name, got, score)
		}
		// The shipped alert_above finds it too, and raises nothing on the calm cycle.
		if got := rep.Default.Scores[name]; got < 80 {
			t.Errorf("--json %s at the shipped alert_above %v: %v", name, rep.Default.AlertAbove, got)
		}
	}
	if rep.Files != 2 || rep.Windows != 1 || rep.Sweep["standard"].Detected != 1 || rep.Sweep["standard"].FPRows != 0 {
		t.Errorf("--json: %d files, %d windows, %d detected, %d false-positive rows; want 2, 1, 1, 0", rep.Files, rep.Windows, rep.Sweep["standard"].Detected, rep.Sweep["standard"].FPRows)
	}
}

// A data file the labels do not mention is an error that names it: scoring without its
// windows would count every detection in it as a false positive.
func TestHarnessNamesAFileWithoutLabels(t *testing.T) {
	dir := writeNABFolder(t, map[string][][2]string{"synthCPU/calm.csv": {}})
	var out, errs bytes.Buffer
	if rc := run([]string{"--nab", dir}, &out, &errs); rc != 1 || !strings.Contains(errs.String(), "synthCPU/spike.csv: no entry in labels/combined_windows.json") {
		t.Fatalf("exit %d, stderr %q", rc, errs.String())
	}
}
