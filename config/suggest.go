package config

import (
	"fmt"
	"strings"
)

// suggestion returns ` (did you mean "x"?)` for the candidate closest to got, or "" when
// none is close enough to be a plausible typo.
func suggestion(got string, candidates []string) string {
	if best := closest(got, candidates); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// closest is the candidate closest to got, or "" when none is close enough to be a
// plausible typo.
func closest(got string, candidates []string) string {
	if got == "" {
		return ""
	}
	best, bestDist := "", 0
	for _, c := range candidates {
		d := editDistance(strings.ToLower(got), strings.ToLower(c))
		if best == "" || d < bestDist {
			best, bestDist = c, d
		}
	}
	// Allow about one typo per three characters: "partitons" -> "partitions", but "foo"
	// must not suggest "key".
	limit := max(1, len([]rune(got))/3)
	if best == "" || bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, counting a swap of two
// neighbouring characters as one edit since that is the most common typo.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		// Long strings are never typos of field names; do not spend quadratic time on them.
		if a == b {
			return 0
		}
		return max(len(ra), len(rb))
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// Suggestion is the loader's "did you mean" for other packages (expression checks): ` (did
// you mean "x"?)` for the candidate closest to got, or "".
func Suggestion(got string, candidates []string) string { return suggestion(got, candidates) }
