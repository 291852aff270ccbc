package main

import (
	"fmt"
	"slices"
	"time"
)

type result struct {
	misses                            []string // why top-1 missed, one line per failure
	rawAlerts, byAlertname, incidents int
	top1, top3, falseMerges           int
	finalIncidents                    int
	pages                             int // incidents the example pages: more than one alert, or a critical one
	openDelay                         []time.Duration
}

// score reads the incident records against the scenario.
func score(sc *scenario, recs []incident) result {
	var r result
	byFP := map[string]alert{}
	for _, a := range sc.alerts {
		byFP[a.Fingerprint] = a
		r.rawAlerts++
	}
	r.byAlertname = groupByAlertname(sc.alerts)
	latest := map[string]incident{} // each incident's last record before it merged or resolved
	merged := map[string]string{}
	for _, inc := range recs {
		switch inc.Change {
		case "opened":
			r.incidents++
			latest[inc.ID] = inc
		case "merged":
			merged[inc.ID] = inc.MergedInto
		case "updated":
			latest[inc.ID] = inc
		}
	}
	for id := range merged {
		delete(latest, id)
	}
	r.finalIncidents = len(latest)
	holder := map[string]incident{} // fingerprint → its incident
	for _, inc := range latest {
		failures := map[int]bool{}
		first := time.Time{}
		for _, m := range inc.Members {
			holder[m.Fingerprint] = inc
			if f := byFP[m.Fingerprint].failure; f >= 0 {
				failures[f] = true
			}
			if first.IsZero() || m.StartedAt.Before(first) {
				first = m.StartedAt
			}
		}
		if len(failures) > 1 {
			r.falseMerges++
		}
		if len(inc.Members) > 1 || slices.ContainsFunc(inc.Members, func(m member) bool { return byFP[m.Fingerprint].Severity == "critical" }) {
			r.pages++
		}
		r.openDelay = append(r.openDelay, inc.OpenedAt.Sub(first))
	}
	for _, f := range sc.failures {
		inc, ok := holder[f.root]
		if !ok {
			continue
		}
		if inc.RootCause == f.node {
			r.top1++
		} else {
			r.misses = append(r.misses, miss(f, inc, byFP))
		}
		if slices.ContainsFunc(inc.Candidates, func(c candidate) bool { return c.Node == f.node }) {
			r.top3++
		}
	}
	return r
}

// groupByAlertname counts the notifications Alertmanager would send with group_by:
// [alertname], group_wait 30s and group_interval 5m: a group's first after group_wait, then
// one per group_interval in which a new alert joined it.
func groupByAlertname(alerts []alert) int {
	starts := map[string][]time.Time{}
	for _, a := range alerts {
		starts[a.Rule] = append(starts[a.Rule], a.StartedAt)
	}
	n := 0
	for _, name := range sortedKeys(starts) {
		ts := starts[name]
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
		next := ts[0].Add(30 * time.Second)
		n++
		for _, t := range ts[1:] {
			if t.After(next) {
				n++
				next = t.Add(5 * time.Minute)
			}
		}
	}
	return n
}

func (r result) print(failures int) {
	pct := func(n, of int) float64 { return 100 * float64(n) / float64(max(of, 1)) }
	fmt.Printf("notifications per injected failure: incidents %.2f (%d), raw alerts %.2f (%d), group_by [alertname] %.2f (%d)\n",
		float64(r.incidents)/float64(failures), r.incidents, float64(r.rawAlerts)/float64(failures), r.rawAlerts, float64(r.byAlertname)/float64(failures), r.byAlertname)
	fmt.Printf("fewer notifications than raw alerts: %.1fx; than group_by [alertname]: %.2fx\n", float64(r.rawAlerts)/float64(max(r.incidents, 1)), float64(r.byAlertname)/float64(max(r.incidents, 1)))
	fmt.Printf("pages under examples/incidents.yaml's policy (no lone warning): %.2f per failure (%d): %.1fx fewer than raw alerts, %.2fx fewer than group_by [alertname]\n",
		float64(r.pages)/float64(failures), r.pages, float64(r.rawAlerts)/float64(max(r.pages, 1)), float64(r.byAlertname)/float64(max(r.pages, 1)))
	fmt.Printf("root cause top-1 %.1f%% (%d/%d), top-3 %.1f%% (%d/%d)\n", pct(r.top1, failures), r.top1, failures, pct(r.top3, failures), r.top3, failures)
	fmt.Printf("false merges: %.1f%% of incidents (%d/%d) hold alerts of two or more injected failures\n", pct(r.falseMerges, r.finalIncidents), r.falseMerges, r.finalIncidents)
	slices.Sort(r.openDelay)
	if len(r.openDelay) > 0 {
		fmt.Printf("incident opened after its first symptom (event time): max %v\n", r.openDelay[len(r.openDelay)-1])
	}
}

// miss says what the incident of a failure whose cause was missed held.
func miss(f failure, inc incident, byFP map[string]alert) string {
	var members []string
	for _, m := range inc.Members {
		a := byFP[m.Fingerprint]
		members = append(members, fmt.Sprintf("%s(f%d,+%ds)", a.SourceID, a.failure, int(a.StartedAt.Sub(f.start).Seconds())))
	}
	var cands []string
	for _, c := range inc.Candidates {
		cands = append(cands, fmt.Sprintf("%s %.3f", c.Node, c.Score))
	}
	return fmt.Sprintf("injected %s: named %s; candidates %v; members %v", f.node, inc.RootCause, cands, members)
}
