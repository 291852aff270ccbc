package schema

import (
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
)

// A memoPattern remembers at most memoPatternSize strings of at most memoMaxLen bytes: a
// field of long values (a message, a payload) would otherwise keep up to 4,096 of them.
const (
	memoPatternSize = 4096
	memoMaxLen      = 256
)

// memoPattern is a "pattern" that remembers its answer for the strings it has seen: a
// pattern mostly constrains a name (a metric, a host) that takes few values over millions of
// events, and a lookup costs a fraction of a regexp run. It stops learning after
// memoPatternSize strings and never learns long ones, so a field of unique or large values
// costs one lookup more, not memory.
// Safe for the decode stage's goroutines.
type memoPattern struct {
	re      *regexp.Regexp
	answers sync.Map // string → bool
	learned atomic.Int64
}

func newMemoPattern(re *regexp.Regexp) *memoPattern {
	if re == nil {
		return nil
	}
	return &memoPattern{re: re}
}

// MatchString reports whether s matches, as re.MatchString does.
func (p *memoPattern) MatchString(s string) bool {
	if m, ok := p.answers.Load(s); ok {
		return m.(bool)
	}
	m := p.re.MatchString(s)
	if len(s) <= memoMaxLen && p.learned.Load() < memoPatternSize {
		// A copy: s may point into a record's buffer, which the memo must not keep alive.
		if _, had := p.answers.LoadOrStore(strings.Clone(s), m); !had {
			p.learned.Add(1)
		}
	}
	return m
}
