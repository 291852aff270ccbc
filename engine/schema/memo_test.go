package schema

import (
	"fmt"
	"regexp"
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
