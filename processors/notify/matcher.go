package notify

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// MatchOp is how a matcher compares a label's value: Alertmanager's four operators.
type MatchOp string

const (
	MatchEqual     MatchOp = "="
	MatchNotEqual  MatchOp = "!="
	MatchRegexp    MatchOp = "=~"
	MatchNotRegexp MatchOp = "!~"
)

// Matcher selects alerts by one label, as Alertmanager's matchers do: a missing label has
// the value "", and a regular expression must match the whole value.
type Matcher struct {
	Name  string
	Op    MatchOp
	Value string
	re    *regexp.Regexp
}

var matcherRE = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$`)

// ParseMatcher reads a matcher in Alertmanager's syntax: name, an operator, and a value,
// quoted ("critical", with Go escapes) or bare (critical).
func ParseMatcher(s string) (Matcher, error) {
	m := matcherRE.FindStringSubmatch(s)
	if m == nil {
		return Matcher{}, fmt.Errorf("%q is not a matcher: want label=value, label!=value, label=~regex or label!~regex", s)
	}
	value := m[3]
	if strings.HasPrefix(value, `"`) {
		v, err := strconv.Unquote(value)
		if err != nil {
			return Matcher{}, fmt.Errorf("%q: the value is not a well-quoted string: %v", s, err)
		}
		value = v
	}
	return NewMatcher(m[1], MatchOp(m[2]), value)
}

// NewMatcher makes a matcher, compiling the regular expression of =~ and !~.
func NewMatcher(name string, op MatchOp, value string) (Matcher, error) {
	mt := Matcher{Name: name, Op: op, Value: value}
	if op == MatchRegexp || op == MatchNotRegexp {
		re, err := regexp.Compile("^(?:" + value + ")$")
		if err != nil {
			return Matcher{}, fmt.Errorf("%s%s%q: %v", name, op, value, err)
		}
		mt.re = re
	}
	return mt, nil
}

// Matches says whether labels satisfy the matcher.
func (m Matcher) Matches(labels map[string]string) bool {
	v := labels[m.Name]
	switch m.Op {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp:
		return m.re.MatchString(v)
	case MatchNotRegexp:
		return !m.re.MatchString(v)
	}
	return false
}

func (m Matcher) String() string { return m.Name + string(m.Op) + strconv.Quote(m.Value) }

// Matchers match when every one of them does.
type Matchers []Matcher

// Matches says whether labels satisfy every matcher.
func (ms Matchers) Matches(labels map[string]string) bool {
	for _, m := range ms {
		if !m.Matches(labels) {
			return false
		}
	}
	return true
}

// ParseMatchers parses each of ss.
func ParseMatchers(ss []string) (Matchers, error) {
	out := make(Matchers, 0, len(ss))
	for _, s := range ss {
		m, err := ParseMatcher(s)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}
