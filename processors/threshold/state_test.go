package threshold

import (
	"strconv"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
)

// m is minute n after t0 in Unix nanoseconds, as State stores times.
func m(n int) int64 { return t0.Add(time.Duration(n) * time.Minute).UnixNano() }

func TestEvaluate(t *testing.T) {
	dur := func(n int) config.Duration { return config.Duration(time.Duration(n) * time.Minute) }
	plain := Rule{}
	for2 := Rule{For: dur(2)}
	keep3 := Rule{KeepFiringFor: dur(3)}
	hyst := Rule{ClearWhen: &config.Expr{Src: "value < 85"}}
	ladder := Rule{Severities: []Level{{Severity: SeverityCritical}, {Severity: SeverityWarning}}}
	absent5 := Rule{Absent: dur(5)}
	match := func(level int) Input { return Input{Level: level} }
	noMatch := Input{Level: -1}
	firing := func(level uint8, active, fired int) State {
		return State{Phase: Firing, Level: level, ActiveAt: m(active), FiredAt: m(fired)}
	}
	tests := []struct {
		name   string
		rule   Rule
		state  State
		in     Input
		at     int
		want   State
		wantTr Transition
	}{
		// for
		{"inactive stays inactive without a match", for2, State{}, noMatch, 0, State{}, NoChange},
		{"a match without for fires at once", plain, State{}, match(0), 0, firing(0, 0, 0), ToFiring},
		{"a match with for goes pending", for2, State{}, match(0), 0, State{Phase: Pending, ActiveAt: m(0)}, ToPending},
		{"pending before for has elapsed stays pending", for2, State{Phase: Pending, ActiveAt: m(0)}, match(0), 1, State{Phase: Pending, ActiveAt: m(0)}, NoChange},
		{"pending fires once for has elapsed; started_at stays the start of pending", for2, State{Phase: Pending, ActiveAt: m(0)}, match(0), 2, firing(0, 0, 2), ToFiring},
		{"pending is cancelled by a non-match", for2, State{Phase: Pending, ActiveAt: m(0)}, noMatch, 1, State{}, Cancelled},
		{"pending does not fire on an older record", for2, State{Phase: Pending, ActiveAt: m(5)}, match(0), 1, State{Phase: Pending, ActiveAt: m(5)}, NoChange},
		{"firing stays firing while matching", for2, firing(0, 0, 2), match(0), 9, firing(0, 0, 2), NoChange},
		{"firing resolves on a non-match", for2, firing(0, 0, 2), noMatch, 9, State{}, ToResolved},

		// keep_firing_for
		{"keep_firing_for: a non-match starts the grace period", keep3, firing(0, 0, 0), noMatch, 4, State{Phase: Firing, ActiveAt: m(0), FiredAt: m(0), ClearedAt: m(4)}, NoChange},
		{"keep_firing_for: still firing within the grace period", keep3, State{Phase: Firing, ActiveAt: m(0), FiredAt: m(0), ClearedAt: m(4)}, noMatch, 6, State{Phase: Firing, ActiveAt: m(0), FiredAt: m(0), ClearedAt: m(4)}, NoChange},
		{"keep_firing_for: a match within the grace period just continues", keep3, State{Phase: Firing, ActiveAt: m(0), FiredAt: m(0), ClearedAt: m(4)}, match(0), 6, firing(0, 0, 0), NoChange},
		{"keep_firing_for: resolves once the grace period is over", keep3, State{Phase: Firing, ActiveAt: m(0), FiredAt: m(0), ClearedAt: m(4)}, noMatch, 7, State{}, ToResolved},

		// clear_when
		{"clear_when: firing holds on a non-match while clear_when is false", hyst, firing(0, 0, 0), Input{Level: -1, Clear: false}, 3, firing(0, 0, 0), NoChange},
		{"clear_when: resolves when clear_when is true", hyst, firing(0, 0, 0), Input{Level: -1, Clear: true}, 3, State{}, ToResolved},
		{"clear_when: does not hold a pending alert", Rule{For: dur(2), ClearWhen: hyst.ClearWhen}, State{Phase: Pending, ActiveAt: m(0)}, Input{Level: -1}, 1, State{}, Cancelled},
		{"clear_when with keep_firing_for: grace starts when clear_when is true", Rule{ClearWhen: hyst.ClearWhen, KeepFiringFor: dur(3)}, firing(0, 0, 0), Input{Level: -1, Clear: true}, 3, State{Phase: Firing, ActiveAt: m(0), FiredAt: m(0), ClearedAt: m(3)}, NoChange},

		// severity ladder (level 0 = critical, 1 = warning)
		{"ladder: fires at the highest level matching", ladder, State{}, match(1), 0, firing(1, 0, 0), ToFiring},
		{"ladder: escalation while firing", ladder, firing(1, 0, 0), match(0), 3, firing(0, 0, 0), Escalated},
		{"ladder: de-escalation while firing", ladder, firing(0, 0, 0), match(1), 3, firing(1, 0, 0), Deescalated},
		{"ladder: same level is no event", ladder, firing(1, 0, 0), match(1), 3, firing(1, 0, 0), NoChange},
		{"ladder: pending follows the level silently and fires at the current one", Rule{For: dur(2), Severities: ladder.Severities}, State{Phase: Pending, Level: 1, ActiveAt: m(0)}, match(0), 2, firing(0, 0, 2), ToFiring},
		{"ladder: no level matching resolves", ladder, firing(0, 0, 0), noMatch, 3, State{}, ToResolved},
		{"ladder with clear_when: no level matching keeps the severity", Rule{Severities: ladder.Severities, ClearWhen: hyst.ClearWhen}, firing(1, 0, 0), Input{Level: -1}, 3, firing(1, 0, 0), NoChange},

		// absent
		{"absent: a first heartbeat starts watching", absent5, State{}, match(0), 0, State{LastSeen: m(0)}, NoChange},
		{"absent: a check before the deadline does nothing", absent5, State{LastSeen: m(0)}, noMatch, 4, State{LastSeen: m(0)}, NoChange},
		{"absent: fires at the deadline, dated at the deadline", absent5, State{LastSeen: m(0)}, noMatch, 7, State{Phase: Firing, ActiveAt: m(5), FiredAt: m(5), LastSeen: m(0)}, ToFiring},
		{"absent: a heartbeat resolves it", absent5, State{Phase: Firing, ActiveAt: m(5), FiredAt: m(5), LastSeen: m(0)}, match(0), 8, State{LastSeen: m(8)}, ToResolved},
		{"absent: an older heartbeat does not move last seen back", absent5, State{LastSeen: m(4)}, match(0), 2, State{LastSeen: m(4)}, NoChange},
		{"absent: never seen, never absent", absent5, State{}, noMatch, 100, State{}, NoChange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := t0.Add(time.Duration(tt.at) * time.Minute)
			got, tr := Evaluate(tt.state, tt.in, at, tt.rule)
			if got != tt.want || tr != tt.wantTr {
				t.Fatalf("Evaluate = %+v, %v; want %+v, %v", got, tr, tt.want, tt.wantTr)
			}
		})
	}
}

// TestEvaluateFlapping runs a series that flaps around its threshold through the state
// machine: with for, short spikes never fire; with keep_firing_for, short dips never resolve.
func TestEvaluateFlapping(t *testing.T) {
	flaps := []bool{true, false, true, false, true, true, true, false, true, false, false, false, false}
	run := func(r Rule) []string {
		var s State
		var trs []string
		for i, match := range flaps {
			in := Input{Level: -1}
			if match {
				in.Level = 0
			}
			var tr Transition
			s, tr = Evaluate(s, in, t0.Add(time.Duration(i)*time.Minute), r)
			if tr != NoChange {
				trs = append(trs, tr.String()+"@"+strconv.Itoa(i))
			}
		}
		return trs
	}
	tests := []struct {
		name string
		rule Rule
		want string
	}{
		{"no for: fires and resolves with every flap", Rule{}, "[firing@0 resolved@1 firing@2 resolved@3 firing@4 resolved@7 firing@8 resolved@9]"},
		{"for 2m: only the sustained stretch fires", Rule{For: config.Duration(2 * time.Minute)}, "[pending@0 cancelled@1 pending@2 cancelled@3 pending@4 firing@6 resolved@7 pending@8 cancelled@9]"},
		{"keep_firing_for 2m: dips shorter than 2m do not resolve", Rule{KeepFiringFor: config.Duration(2 * time.Minute)}, "[firing@0 resolved@11]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatList(run(tt.rule)); got != tt.want {
				t.Fatalf("transitions %s, want %s", got, tt.want)
			}
		})
	}
}

func formatList(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}
