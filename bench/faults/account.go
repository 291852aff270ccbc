package main

import (
	"fmt"
	"strconv"
	"time"
)

// windowAccount checks a run against itself, with no clean run to compare with: every
// reading in signals.metric.v1 is either counted by the rollup of its minute or was set
// aside by the rollup stream (late, or dead-lettered). A rollup whose n is not the number of
// its minute's readings that were not set aside lost (or counted twice) readings: seen in a
// clean run, whose every other run then "differed" from it.
type windowAccount struct {
	readings map[string]int // window id → readings in signals.metric.v1
	setAside map[string]int // window id → readings the rollup stream sent to late or dead letters
	counted  map[string]int // window id → the n of its rollup
}

func newWindowAccount() *windowAccount {
	return &windowAccount{readings: map[string]int{}, setAside: map[string]int{}, counted: map[string]int{}}
}

// windowOf is the rollup id (see rollupID) of the minute a reading falls in, or "" when its
// event time cannot be read.
func windowOf(reading map[string]any) string {
	t, err := time.Parse(time.RFC3339Nano, str(reading["ts_event"]))
	if err != nil {
		return ""
	}
	return seriesAt(reading, t.UTC().Truncate(time.Minute).Format(time.RFC3339))
}

func (a *windowAccount) reading(v map[string]any) {
	if w := windowOf(v); w != "" {
		a.readings[w]++
	}
}

func (a *windowAccount) setAsideReading(v map[string]any) {
	if w := windowOf(v); w != "" {
		a.setAside[w]++
	}
}

func (a *windowAccount) rollup(v map[string]any) {
	n, err := strconv.Atoi(str(v["n"]))
	if err != nil {
		return
	}
	a.counted[rollupID(v)] = n
}

// check compares each rollup's n with its minute's readings.
func (a *windowAccount) check() check {
	c := check{Name: "every rollup counts its minute's readings (signals.metric.v1 minus late and dead-lettered)"}
	wrong, first := 0, ""
	for w, n := range a.counted {
		if n != a.readings[w]-a.setAside[w] {
			wrong++
			if first == "" || w < first {
				first = w
			}
		}
	}
	c.OK = wrong == 0
	c.Detail = fmt.Sprintf("%d rollups checked", len(a.counted))
	if wrong > 0 {
		c.Detail = fmt.Sprintf("%d of %d rollups wrong; first: %s: n=%d, %d readings, %d set aside",
			wrong, len(a.counted), first, a.counted[first], a.readings[first], a.setAside[first])
	}
	return c
}
