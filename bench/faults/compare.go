package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// What the suite compares, per topic and table, and how it tells records apart.
//
// Identity (the same record in two runs):
//
//	signals.metric.v1, table metrics  tenant / host / metric @ ts_event (the input never repeats a series' time)
//	signals.rollup.v1                 tenant / host / metric @ window_start
//	ops.alert.v1, table alerts        fingerprint, state @ ts (ops.alert.v1 is compacted: only
//	                                  the newest record of each key is compared, see readTopics)
//	ops.late.v1, ops.deadletter.v1    stream / stage, source topic, and what the record is: its
//	                                  position in the input for input records (the source
//	                                  offset header), else the reading, rollup or alert identity
//	                                  of its value (offsets of the pipeline's own topics differ
//	                                  between runs: transaction markers, redeliveries)
//
// Content (must be equal): the whole record (JSON with sorted keys), its key and
// partition; for dead letters also the reason and the source partition. Left out: ts_ingest
// (the wall clock at normalize), a reading's event_id (record_id() folds in the broker's id of
// the input topic, new in every run), the dead letters' eventops.time header (wall clock),
// the source offset of a dead letter from a pipeline topic, and the tables' id column (a
// sequence). Alerts and rollups keep their event_id: it is made from event time and keys.
//
// Counts, per identity, against the clean run: lost = records the clean run has and this
// run has fewer of; duplicated = records beyond the clean run's count; differing =
// identities whose contents differ; extra = records whose identity the clean run does not
// have (for instance a reading declared late that was not late).

// comparison is one topic's or table's difference from the clean run.
type comparison struct {
	Name       string   `json:"name"`
	Clean      int      `json:"clean"`
	Run        int      `json:"run"`
	Lost       int      `json:"lost"`
	Duplicated int      `json:"duplicated"`
	Differing  int      `json:"differing"`
	Extra      int      `json:"extra"`
	Examples   []string `json:"examples,omitempty"`
}

func compareSnapshots(clean, run *snapshot) []comparison {
	var out []comparison
	for _, name := range append(slices.Clone(outputTopics), tableNames...) {
		c := compareSets(name, clean.sets[name], run.sets[name])
		if run.compacted[name] {
			c.Name += " (latest)" // the newest record of each key
		}
		out = append(out, c)
	}
	return out
}

const examplesPerKind = 3

func compareSets(name string, clean, run *recordSet) comparison {
	c := comparison{Name: name}
	if clean == nil {
		clean = newRecordSet(name)
	}
	if run == nil {
		run = newRecordSet(name)
	}
	c.Clean, c.Run = clean.total, run.total
	shown := map[string]int{}
	example := func(kind, id, detail string) {
		if shown[kind] < examplesPerKind {
			shown[kind]++
			c.Examples = append(c.Examples, fmt.Sprintf("%s: %s%s", kind, shorten(id, 160), detail))
		}
	}
	for _, id := range sortedKeys(clean.items) {
		want, got := clean.items[id], run.items[id]
		switch {
		case len(got) < len(want):
			c.Lost += len(want) - len(got)
			example("lost", id, "")
		case len(got) > len(want):
			c.Duplicated += len(got) - len(want)
			example("duplicated", id, fmt.Sprintf(" (%d times, clean run %d)", len(got), len(want)))
		}
		if len(got) > 0 && !sameContents(want, got) {
			c.Differing++
			example("differing", id, fmt.Sprintf("\n      clean: %s\n      run:   %s", want[0].show, differentOne(want, got).show))
		}
	}
	for _, id := range sortedKeys(run.items) {
		if _, ok := clean.items[id]; !ok {
			c.Extra += len(run.items[id])
			example("extra", id, "  "+run.items[id][0].show)
		}
	}
	return c
}

// sameContents reports whether two runs hold the same distinct contents for an identity
// (how many times each is counted as lost or duplicated).
func sameContents(a, b []entry) bool {
	set := func(es []entry) []uint64 {
		var hs []uint64
		for _, e := range es {
			hs = append(hs, e.hash)
		}
		slices.Sort(hs)
		return slices.Compact(hs)
	}
	return slices.Equal(set(a), set(b))
}

// differentOne is an entry of got whose content the clean run does not have.
func differentOne(want, got []entry) entry {
	for _, g := range got {
		if !slices.ContainsFunc(want, func(w entry) bool { return w.hash == g.hash }) {
			return g
		}
	}
	return got[0]
}

func sortedKeys(m map[string][]entry) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkOversized: each extra input record (the 5 MB event, the 1 MB host name) was
// dead-lettered once, by normalize, with a reason. (That the rest equals the clean run is
// the comparison's job; a reading of an oversized host anywhere shows there as extra.)
func checkOversized(snap *snapshot) []check {
	var out []check
	for _, off := range snap.extraOffsets {
		dls := snap.extraDeadLetters[off]
		c := check{Name: fmt.Sprintf("oversized record at input offset %d dead-lettered", off)}
		switch {
		case len(dls) == 0:
			c.Detail = "no dead letter names it"
		case len(dls) > 1:
			c.Detail = fmt.Sprintf("%d dead letters name it, want 1", len(dls))
		case dls[0].reason == "":
			c.Detail = "its dead letter gives no reason"
		default:
			c.OK = true
		}
		if len(dls) > 0 {
			c.Detail = strings.TrimSpace(fmt.Sprintf("%s (stream %s, stage %s, %d bytes kept: %q)", c.Detail, dls[0].stream, dls[0].stage, dls[0].size, shorten(dls[0].reason, 200)))
		}
		out = append(out, c)
	}
	return out
}

// printResults prints one table per scenario and the verdict.
func printResults(w io.Writer, res *results) {
	fmt.Fprintf(w, "machine: %s\n", res.Machine)
	fmt.Fprintf(w, "input: %d records (%d hosts, seed %d); clean run %.1fs: %s\n\n", res.Events, res.Hosts, res.Seed,
		res.Clean.Duration.Seconds(), countsLine(res.Clean.Counts))
	for _, f := range res.CleanFailures {
		fmt.Fprintf(w, "clean run failure (it is no reference; the scenarios may differ from it for that alone): %s\n", f)
	}
	for _, sr := range res.Scenarios {
		fmt.Fprintf(w, "== %s: %s (run %.1fs)\n", sr.Name, verdict(sr.Pass), sr.Run.Duration.Seconds())
		fmt.Fprintf(w, "  %-24s %9s %9s %9s %11s %10s %9s\n", "topic / table", "clean", "run", "lost", "duplicated", "differing", "extra")
		for _, c := range sr.Comparisons {
			fmt.Fprintf(w, "  %-24s %9d %9d %9d %11d %10d %9d\n", c.Name, c.Clean, c.Run, c.Lost, c.Duplicated, c.Differing, c.Extra)
		}
		printRecoveries(w, sr)
		for _, c := range sr.Checks {
			fmt.Fprintf(w, "  check: %s: %s %s\n", c.Name, map[bool]string{true: "ok", false: "FAILED"}[c.OK], c.Detail)
		}
		for _, n := range sr.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
		for _, f := range sr.Failures {
			fmt.Fprintf(w, "  failure: %s\n", strings.ReplaceAll(f, "\n", "\n    "))
		}
		for _, c := range sr.Comparisons {
			for _, e := range c.Examples {
				fmt.Fprintf(w, "  example %s %s\n", c.Name, e)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "overall: %s\n", verdict(res.Pass))
}

func printRecoveries(w io.Writer, sr *scenarioResult) {
	if len(sr.Recoveries) == 0 {
		return
	}
	if s := sr.Recovery; s != nil {
		fmt.Fprintf(w, "  recovery (start of the restarted process to first progress), %d measured: min %s / median %s / max %s\n",
			s.N, secs(s.Min), secs(s.Median), secs(s.Max))
	}
	var parts []string
	for _, r := range sr.Recoveries {
		p := secs(r.Progress)
		switch {
		case r.Idle:
			p = "nothing left to do"
		case r.Never:
			p = "never"
		}
		if r.Ready > 0 {
			p += fmt.Sprintf(" (ready %s)", secs(r.Ready))
		}
		parts = append(parts, fmt.Sprintf("%s: %s", r.What, p))
	}
	fmt.Fprintf(w, "  restarts: %s\n", strings.Join(parts, "; "))
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

func countsLine(counts map[string]int) string {
	var parts []string
	for _, name := range append(slices.Clone(outputTopics), tableNames...) {
		parts = append(parts, fmt.Sprintf("%s %d", name, counts[name]))
	}
	return strings.Join(parts, ", ")
}
