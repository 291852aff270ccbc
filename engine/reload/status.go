package reload

import (
	"errors"
	"sync"
	"time"

	"github.com/eventops/eventops-engine/config"
)

// Results of a reload attempt.
const (
	Applied   = "applied"   // the new pipeline runs
	Unchanged = "unchanged" // the files changed but say the same thing
	Rejected  = "rejected"  // the new pipeline did not load, build or start: the old one runs on
)

// Status is what GET /-/reload shows: the last attempt and what came of it.
type Status struct {
	Attempts    int       `json:"attempts"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	// Trigger says what started the last attempt: "file change: pipeline.yaml", "SIGHUP",
	// "POST /-/reload".
	Trigger string    `json:"trigger,omitempty"`
	Result  string    `json:"result,omitempty"`
	Errors  []Problem `json:"errors,omitempty"`
	// Changes is the diff of the last attempt (see Diff), also for a rejected one.
	Changes []string `json:"changes,omitempty"`
	// SwapPauseSeconds is, per stream the last attempt swapped in place, how long that stream
	// read nothing while it switched (see eventops_stream_swap_pause_seconds).
	SwapPauseSeconds map[string]float64 `json:"swap_pause_seconds,omitempty"`
	LastApplied      time.Time          `json:"last_applied,omitzero"`
}

// Rejected tells whether the attempt was refused (POST /-/reload answers 422).
func (s Status) Rejected() bool { return s.Result == Rejected }

// Problem is one reason a reload was rejected, placed where the file says it.
type Problem struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// Problems turns a load, build or start error into problems: config errors keep their
// file:line:col and path; anything else is one problem with its message.
func Problems(err error) []Problem {
	if err == nil {
		return nil
	}
	var out []Problem
	for _, e := range config.FlattenErrors(err) {
		var ce *config.Error
		if errors.As(e, &ce) {
			if ce.Warning {
				continue
			}
			out = append(out, Problem{File: ce.Pos.File, Line: ce.Pos.Line, Col: ce.Pos.Col, Path: ce.Path, Message: ce.Msg})
			continue
		}
		out = append(out, Problem{Message: e.Error()})
	}
	if len(out) == 0 {
		out = append(out, Problem{Message: err.Error()})
	}
	return out
}

// Tracker keeps the status; safe for concurrent use.
type Tracker struct {
	mu sync.Mutex
	s  Status
}

// Record notes an attempt's outcome at the given time; pauses are its streams' swap pauses.
func (t *Tracker) Record(at time.Time, trigger, result string, changes []string, pauses map[string]float64, err error) Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.s.Attempts++
	t.s.LastAttempt, t.s.Trigger, t.s.Result = at, trigger, result
	t.s.Changes, t.s.Errors, t.s.SwapPauseSeconds = changes, Problems(err), pauses
	if result == Applied {
		t.s.LastApplied = at
	}
	return t.s
}

// Status returns the current status.
func (t *Tracker) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.s
}
