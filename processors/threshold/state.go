package threshold

import "time"

// Phase is where an alert of one rule and series stands.
type Phase string

// Phases. Resolved is not a phase: a resolved alert goes back to Inactive, and its state is
// forgotten.
const (
	Inactive Phase = ""
	Pending  Phase = "pending"
	Firing   Phase = "firing"
)

// Transition is a change of phase that Evaluate reports.
type Transition string

// Transitions. Only ToFiring and ToResolved produce alert records.
const (
	NoChange  Transition = ""
	ToPending Transition = "pending"
	ToFiring  Transition = "firing"
	// Cancelled is pending going back to inactive: the condition did not hold for long enough.
	Cancelled  Transition = "cancelled"
	ToResolved Transition = "resolved"
)

// State is the alert state of one rule for one series. It is plain data so that it can be
// checkpointed and restored.
type State struct {
	Phase Phase `json:"phase"`
	// Since is the event time at which the condition started to hold.
	Since time.Time `json:"since"`
	// FiredAt is the event time at which the alert started firing.
	FiredAt time.Time `json:"fired_at"`
}

// Evaluate is one step of the alert state machine: the condition was (or was not) true for a
// record with event time at. It is a pure function of its arguments; all timing is event
// time, so replaying the same records gives the same transitions.
//
//	inactive --match--> pending (for > 0) or firing (for = 0)
//	pending  --match, at - since >= for--> firing
//	pending  --no match--> inactive (cancelled)
//	firing   --no match--> inactive (resolved)
func Evaluate(s State, matched bool, at time.Time, rule Rule) (State, Transition) {
	switch s.Phase {
	case Inactive:
		if !matched {
			return s, NoChange
		}
		if rule.For.D() <= 0 {
			return State{Phase: Firing, Since: at, FiredAt: at}, ToFiring
		}
		return State{Phase: Pending, Since: at}, ToPending
	case Pending:
		if !matched {
			return State{}, Cancelled
		}
		if at.Sub(s.Since) >= rule.For.D() {
			s.Phase, s.FiredAt = Firing, at
			return s, ToFiring
		}
		return s, NoChange
	case Firing:
		if !matched {
			return State{}, ToResolved
		}
		return s, NoChange
	}
	return s, NoChange
}
