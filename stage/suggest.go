package stage

import (
	"fmt"
	"strings"
)

// DidYouMean returns the hint ` (did you mean "x"?)` for the candidate
// Suggest picks for word, or "" when none is close: the one rule every
// error message of the runner (specs, params, commands) uses.
func DidYouMean(word string, candidates []string) string {
	if s := Suggest(word, candidates); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// Suggest returns the candidate closest to word by edit distance (case
// ignored, a swap of two adjacent letters counting as one edit), or "" when
// none is close enough to be a likely typo: more than a third of word's
// length (at least one edit) away. Error messages use it through
// DidYouMean.
func Suggest(word string, candidates []string) string {
	best, bestD := "", 1<<30
	lw := strings.ToLower(word)
	for _, c := range candidates {
		d := EditDistance(lw, strings.ToLower(c))
		if d < bestD || d == bestD && c < best {
			best, bestD = c, d
		}
	}
	limit := max(1, len(word)/3)
	if best == "" || bestD > limit {
		return ""
	}
	return best
}

// EditDistance is the Levenshtein distance, counting a transposition of two
// adjacent letters as one edit.
func EditDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		if a == b {
			return 0
		}
		return 1 << 20
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
