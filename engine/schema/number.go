package schema

import (
	"math"
	"math/big"
	"math/bits"
	"strconv"
)

// The reference compares numbers as big.Rat values parsed from fmt.Sprint(v), that is
// from the shortest decimal that reads back as the same float64. The helpers below give
// the same answers with float64 arithmetic and no allocation.

// bound is a schema number (a limit or an enum/const value) prepared for comparison.
type bound struct {
	limit *big.Rat
	// nearest is the float64 nearest to limit. Rounding is monotonic, so a value below
	// nearest has a shortest decimal below limit and a value above it one above limit;
	// only nearest itself needs the exact comparison, done once here: atNearest.
	nearest   float64
	atNearest int
}

// newBound prepares r; a nil r gives a nil bound. It reports false only for a limit it
// cannot prepare, which keeps the schema off the fast path.
func newBound(r *big.Rat) (*bound, bool) {
	if r == nil {
		return nil, true
	}
	f, _ := r.Float64()
	b := &bound{limit: r, nearest: f}
	if !math.IsInf(f, 0) {
		d, ok := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', -1, 64))
		if !ok {
			return nil, false
		}
		b.atNearest = d.Cmp(r)
	}
	return b, true
}

// cmp compares the finite value f with the bound as the reference would: -1, 0 or +1.
func (b *bound) cmp(f float64) int {
	switch {
	case f < b.nearest:
		return -1
	case f > b.nearest:
		return +1
	}
	return b.atNearest
}

// divisor is a multipleOf value p/q with both parts fitting in uint64.
type divisor struct{ p, q uint64 }

func newDivisor(r *big.Rat) (*divisor, bool) {
	if r == nil {
		return nil, true
	}
	if r.Sign() <= 0 || !r.Num().IsUint64() || !r.Denom().IsUint64() {
		return nil, false
	}
	return &divisor{p: r.Num().Uint64(), q: r.Denom().Uint64()}, true
}

// divides reports whether f / (p/q) is an integer. f = mant·10^exp exactly as its
// shortest decimal, so the question is whether p divides mant·10^exp·q (exp >= 0) or
// p·10^-exp divides mant·q (exp < 0). When the numbers do not fit the answer is unknown.
func (d *divisor) divides(f float64) result {
	mant, exp, ok := shortestDecimal(math.Abs(f))
	if !ok {
		return unknown
	}
	if mant == 0 {
		return valid
	}
	if exp >= 0 {
		r := mant % d.p
		for i := 0; i < exp && r != 0; i++ {
			r = mulMod(r, 10%d.p, d.p)
		}
		r = mulMod(r, d.q%d.p, d.p)
		return resultOf(r == 0)
	}
	den := d.p
	for i := 0; i < -exp; i++ {
		hi, lo := bits.Mul64(den, 10)
		if hi != 0 {
			return unknown
		}
		den = lo
	}
	hi, lo := bits.Mul64(mant, d.q)
	_, rem := bits.Div64(hi%den, lo, den)
	return resultOf(rem == 0)
}

func mulMod(a, b, m uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	_, rem := bits.Div64(hi, lo, m) // a, b < m, so hi < m
	return rem
}

// shortestDecimal splits the shortest decimal form of f >= 0 into mant·10^exp, with mant
// free of trailing zeros.
func shortestDecimal(f float64) (mant uint64, exp int, ok bool) {
	var buf [32]byte
	s := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // d[.ddd]e±xx
	i := 0
	fraction := 0
	seenPoint := false
	for ; i < len(s) && s[i] != 'e'; i++ {
		if s[i] == '.' {
			seenPoint = true
			continue
		}
		mant = mant*10 + uint64(s[i]-'0')
		if seenPoint {
			fraction++
		}
	}
	if i+2 >= len(s) {
		return 0, 0, false
	}
	e := 0
	for _, c := range s[i+2:] {
		e = e*10 + int(c-'0')
	}
	if s[i+1] == '-' {
		e = -e
	}
	exp = e - fraction
	for mant != 0 && mant%10 == 0 {
		mant /= 10
		exp++
	}
	return mant, exp, true
}

// isWhole reports whether the finite f is an integer; the shortest decimal of a float64
// is an integer exactly when the float64 is.
func isWhole(f float64) bool { return f == math.Trunc(f) }
