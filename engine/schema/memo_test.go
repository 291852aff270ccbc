package schema

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// A remembered answer is the regexp's, for strings seen before and after the memo is full,
// matching or not.
func TestMemoPatternAnswersAsItsRegexp(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.:-]*$`)
	p := newMemoPattern(re)
	inputs := []string{"cpu_load", "9lives", "", "mem.used", "bad name"}
	for i := range memoPatternSize + 10 {
		inputs = append(inputs, fmt.Sprintf("m%d", i), fmt.Sprintf("%d bad", i))
	}
	for round := range 2 {
		for _, s := range inputs {
			if got, want := p.MatchString(s), re.MatchString(s); got != want {
				t.Fatalf("round %d: %q matched %v, the regexp says %v", round, s, got, want)
			}
		}
	}
	if n := p.learned.Load(); n > memoPatternSize {
		t.Errorf("the memo learned %d strings, more than its bound %d", n, memoPatternSize)
	}
}

// A long string is matched but not remembered: a field of large values must not fill the
// memo with them.
func TestMemoPatternForgetsLongStrings(t *testing.T) {
	p := newMemoPattern(regexp.MustCompile(`^m`))
	long, short := "m"+strings.Repeat("x", memoMaxLen), "mx"
	if !p.MatchString(long) || !p.MatchString(short) {
		t.Fatal("the strings did not match")
	}
	if _, kept := p.answers.Load(long); kept {
		t.Errorf("a %d-byte string was remembered", len(long))
	}
	if _, kept := p.answers.Load(short); !kept {
		t.Error("a short string was not remembered")
	}
}
