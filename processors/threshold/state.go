package threshold

import (
	"time"
)

// Phase is where an alert of one rule and series stands.
type Phase uint8

// Phases. Resolved is not a phase: a resolved alert goes back to Inactive, and its state is
// forgotten (a heartbeat rule keeps the series' last-seen time).
const (
	Inactive Phase = iota
	Pending
	Firing
)

func (p Phase) String() string {
	switch p {
	case Pending:
		return "pending"
	case Firing:
		return "firing"
	}
	return "inactive"
}

// Transition is what Evaluate reports about a step. Every transition but NoChange makes an
// alert record.
type Transition uint8

// Transitions.
const (
	NoChange Transition = iota
	// ToPending: the condition started to hold; the alert waits for `for`.
	ToPending
	// ToFiring: the alert fires (at once without `for`, or once `for` has elapsed; for a
	// heartbeat rule, once the series has been silent for `absent`).
	ToFiring
	// Cancelled: a pending alert whose condition stopped holding before `for` elapsed. Its
	// alert record has state resolved and reason cancelled, so that the latest record of
	// the fingerprint in a compacted topic does not stay pending forever.
	Cancelled
	// ToResolved: a firing alert resolves.
	ToResolved
	// Escalated and Deescalated: a firing alert moved up or down its severity ladder.
	Escalated
	Deescalated
)

var transitionNames = [...]string{"", "pending", "firing", "cancelled", "resolved", "escalated", "deescalated"}

func (t Transition) String() string { return transitionNames[t] }

// State is the alert state of one rule for one series: plain data, so that it can be
// checkpointed and restored. Times are event times in Unix nanoseconds (0: unset), kept
// as integers to keep a series' state small.
type State struct {
	Phase Phase
	// Level is the index in the rule's severity ladder of the alert's current severity (0
	// for a rule with one severity); lower is more severe.
	Level uint8
	// ActiveAt is when the condition started to hold (Prometheus's activeAt): the start of
	// pending, or the firing time when there is no `for`. Alerts carry it as started_at. For
	// a heartbeat rule it is the moment the series had been silent for `absent`.
	ActiveAt int64
	// FiredAt is when the alert started firing.
	FiredAt int64
	// ClearedAt is, for a firing alert under keep_firing_for, when its condition stopped
	// holding; 0 while it holds.
	ClearedAt int64
	// LastSeen is, for a heartbeat rule, the event time of the series' newest heartbeat.
	LastSeen int64
}

// Input is what one record (or, for a heartbeat rule, one check of the clock) tells a rule
// about a series.
type Input struct {
	// Level is the index of the highest ladder level whose condition holds (0 for a rule
	// with one severity), or -1 when the rule's condition does not hold. For a heartbeat
	// rule, 0 means the record is a heartbeat and -1 a check of the clock without one.
	Level int
	// Clear is the value of clear_when; only read for a firing alert of a rule that has it.
	Clear bool
}

// Evaluate is one step of the alert state machine for a record (or clock check) at event
// time at. It is a pure function of its arguments: all timing is event time, so replaying
// the same records gives the same transitions.
//
//	inactive --match--> pending (for > 0) or firing (for = 0)
//	pending  --match, at - activeAt >= for--> firing (severity: the level matching now)
//	pending  --no match--> inactive (cancelled)
//	firing   --not cleared, another level matches--> firing (escalated/deescalated)
//	firing   --cleared--> inactive (resolved), or after keep_firing_for of being cleared
//
// "Cleared" is clear_when when the rule has it, else "no level matches". Heartbeat rules
// (absent > 0):
//
//	any       --heartbeat--> lastSeen = max(lastSeen, at); firing resolves
//	inactive  --check at, at - lastSeen >= absent--> firing, activeAt = lastSeen + absent
func Evaluate(s State, in Input, at time.Time, r Rule) (State, Transition) {
	t := at.UnixNano()
	if r.Absent > 0 {
		return evaluateAbsent(s, in, t, r)
	}
	switch s.Phase {
	case Inactive:
		if in.Level < 0 {
			return s, NoChange
		}
		if r.For <= 0 {
			return State{Phase: Firing, Level: uint8(in.Level), ActiveAt: t, FiredAt: t}, ToFiring
		}
		return State{Phase: Pending, Level: uint8(in.Level), ActiveAt: t}, ToPending
	case Pending:
		if in.Level < 0 {
			return State{}, Cancelled
		}
		s.Level = uint8(in.Level)
		if t-s.ActiveAt >= int64(r.For) {
			s.Phase, s.FiredAt = Firing, t
			return s, ToFiring
		}
		return s, NoChange
	case Firing:
		cleared := in.Level < 0
		if r.ClearWhen != nil && !r.ClearWhen.IsZero() {
			cleared = in.Clear
		}
		if !cleared {
			s.ClearedAt = 0
			if in.Level < 0 || uint8(in.Level) == s.Level {
				return s, NoChange
			}
			tr := Deescalated
			if uint8(in.Level) < s.Level {
				tr = Escalated
			}
			s.Level = uint8(in.Level)
			return s, tr
		}
		if r.KeepFiringFor > 0 {
			if s.ClearedAt == 0 {
				s.ClearedAt = t
			}
			if t-s.ClearedAt < int64(r.KeepFiringFor) {
				return s, NoChange
			}
		}
		return State{}, ToResolved
	}
	return s, NoChange
}

func evaluateAbsent(s State, in Input, t int64, r Rule) (State, Transition) {
	if in.Level >= 0 { // a heartbeat
		if s.Phase == Firing {
			return State{LastSeen: max(s.LastSeen, t)}, ToResolved
		}
		s.LastSeen = max(s.LastSeen, t)
		return s, NoChange
	}
	if s.Phase == Firing || s.LastSeen == 0 {
		return s, NoChange
	}
	if due := s.LastSeen + int64(r.Absent); t >= due {
		return State{Phase: Firing, ActiveAt: due, FiredAt: due, LastSeen: s.LastSeen}, ToFiring
	}
	return s, NoChange
}
