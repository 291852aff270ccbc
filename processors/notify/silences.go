package notify

import (
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/eventops/eventops-engine/engine"
)

var _ engine.AlertDispatcher = (*Processor)(nil)

// book is what the API and the processor share: the run-time silences (the API changes
// them at once; the processor copies them into its partitions' state, which checkpoints
// them, at its next batch or tick) and a view of the alerts (the processor publishes it
// after each step).
type book struct {
	mu       sync.Mutex
	silences map[string]*Silence
	version  uint64 // counts changes of silences
	alerts   []engine.DispatchedAlert
}

// Silences returns every run-time silence (engine.AlertDispatcher).
func (p *Processor) Silences() []engine.Silence {
	p.book.mu.Lock()
	defer p.book.mu.Unlock()
	out := make([]engine.Silence, 0, len(p.book.silences))
	for _, id := range slices.Sorted(maps.Keys(p.book.silences)) {
		out = append(out, apiSilence(p.book.silences[id]))
	}
	return out
}

// PutSilence creates or replaces a silence (engine.AlertDispatcher).
func (p *Processor) PutSilence(s engine.Silence) (string, error) {
	ns, err := fromAPI(s)
	if err != nil {
		return "", err
	}
	now := p.clock.Now()
	if !ns.EndsAt.After(now) {
		return "", errors.New("endsAt is in the past: the silence would never mute anything")
	}
	p.book.mu.Lock()
	defer p.book.mu.Unlock()
	if ns.ID == "" {
		ns.ID = newSilenceID()
	}
	ns.UpdatedAt = now
	p.book.silences[ns.ID] = ns
	p.book.version++
	return ns.ID, nil
}

// ExpireSilence ends a silence now (engine.AlertDispatcher).
func (p *Processor) ExpireSilence(id string) error {
	now := p.clock.Now()
	p.book.mu.Lock()
	defer p.book.mu.Unlock()
	s, ok := p.book.silences[id]
	if !ok {
		return engine.ErrUnknownSilence
	}
	c := *s
	if c.EndsAt.After(now) {
		c.EndsAt = now
		if c.StartsAt.After(now) {
			c.StartsAt = now
		}
	}
	c.UpdatedAt = now
	p.book.silences[id] = &c
	p.book.version++
	return nil
}

// DispatchedAlerts returns the alerts the processor holds (engine.AlertDispatcher).
func (p *Processor) DispatchedAlerts() []engine.DispatchedAlert {
	p.book.mu.Lock()
	defer p.book.mu.Unlock()
	return slices.Clone(p.book.alerts)
}

// silenceRetention is how long an expired silence stays listed (Alertmanager's default
// --data.retention), after which it is dropped from the state.
const silenceRetention = 120 * time.Hour

// syncSilences drops the silences expired for longer than silenceRetention, and copies the
// API's silences into every partition's state if they changed.
func (p *Processor) syncSilences() {
	now := p.clock.Now()
	p.book.mu.Lock()
	defer p.book.mu.Unlock()
	for id, s := range p.book.silences {
		if now.Sub(s.EndsAt) > silenceRetention {
			delete(p.book.silences, id)
			p.book.version++
		}
	}
	if p.book.version == p.applied {
		return
	}
	for _, part := range p.parts {
		part.st.Silences = map[string]*Silence{}
		for id, s := range p.book.silences {
			c := *s
			part.st.Silences[id] = &c
		}
	}
	p.applied = p.book.version
}

// adoptSilences takes the silences of a restored partition into the book, the newest
// version of each.
func (p *Processor) adoptSilences(st *State) {
	p.book.mu.Lock()
	defer p.book.mu.Unlock()
	for id, s := range st.Silences {
		if have, ok := p.book.silences[id]; !ok || s.UpdatedAt.After(have.UpdatedAt) {
			c := *s
			p.book.silences[id] = &c
			p.book.version++
		}
	}
}

// publishAlerts puts the alerts of every partition, with what mutes them, in the book.
func (p *Processor) publishAlerts(now time.Time) {
	var out []engine.DispatchedAlert
	for _, id := range slices.Sorted(maps.Keys(p.parts)) {
		st := p.parts[id].st
		mutes := p.d.mutesAt(st, now)
		for _, fp := range slices.Sorted(maps.Keys(st.Alerts)) {
			a := st.Alerts[fp]
			da := engine.DispatchedAlert{Fingerprint: fingerprint(a.Labels), SourceFingerprint: fp, Labels: a.Labels, Annotations: a.Annotations,
				StartsAt: a.StartsAt, EndsAt: a.EndsAt, UpdatedAt: now, GeneratorURL: a.GeneratorURL, Receivers: p.d.ReceiversOf(a.Labels)}
			if m := mutes[fp]; m != nil {
				da.SilencedBy, da.InhibitedBy = m.silencedBy, p.fingerprintsOf(st, m.inhibitedBy)
				if m.incident != "" {
					da.InhibitedBy = append(da.InhibitedBy, m.incident)
				}
			}
			out = append(out, da)
		}
	}
	p.book.mu.Lock()
	p.book.alerts = out
	p.book.mu.Unlock()
}

// fingerprintsOf maps alert keys to the fingerprints the API shows (of their labels).
func (p *Processor) fingerprintsOf(st *State, keys []string) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if a := st.Alerts[k]; a != nil {
			out = append(out, fingerprint(a.Labels))
		}
	}
	return out
}

// apiSilence is s as the API shows it.
func apiSilence(s *Silence) engine.Silence {
	out := engine.Silence{ID: s.ID, StartsAt: s.StartsAt, EndsAt: s.EndsAt, UpdatedAt: s.UpdatedAt, CreatedBy: s.CreatedBy, Comment: s.Comment}
	for _, m := range s.Matchers {
		out.Matchers = append(out.Matchers, engine.SilenceMatcher{Name: m.Name, Value: m.Value,
			IsRegex: m.Op == MatchRegexp || m.Op == MatchNotRegexp, IsEqual: m.Op == MatchEqual || m.Op == MatchRegexp})
	}
	return out
}

// fromAPI is the silence the API was given, checked.
func fromAPI(s engine.Silence) (*Silence, error) {
	if len(s.Matchers) == 0 {
		return nil, errors.New("a silence needs at least one matcher")
	}
	if !s.EndsAt.After(s.StartsAt) {
		return nil, errors.New("endsAt must be after startsAt")
	}
	out := &Silence{ID: s.ID, StartsAt: s.StartsAt, EndsAt: s.EndsAt, CreatedBy: s.CreatedBy, Comment: s.Comment}
	for _, m := range s.Matchers {
		op := map[[2]bool]MatchOp{{false, true}: MatchEqual, {false, false}: MatchNotEqual, {true, true}: MatchRegexp, {true, false}: MatchNotRegexp}[[2]bool{m.IsRegex, m.IsEqual}]
		if !labelNameRE.MatchString(m.Name) {
			return nil, fmt.Errorf("matcher name %q is not a label name", m.Name)
		}
		mt, err := NewMatcher(m.Name, op, m.Value)
		if err != nil {
			return nil, err
		}
		out.Matchers = append(out.Matchers, mt)
		out.Raw = append(out.Raw, m.Name+string(op)+strconv.Quote(m.Value))
	}
	if !slices.ContainsFunc(out.Matchers, func(m Matcher) bool { return !m.Matches(map[string]string{}) }) {
		return nil, errors.New("every matcher matches an alert without labels: the silence would mute everything")
	}
	return out, nil
}

// newSilenceID is a random UUID (version 4), the form Alertmanager's IDs have.
func newSilenceID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
