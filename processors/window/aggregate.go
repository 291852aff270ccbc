package window

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/eventops/eventops-engine/config"
)

// fn is an aggregate function.
type fn uint8

const (
	fnCount fn = iota
	fnSum
	fnAvg
	fnMin
	fnMax
	fnFirst
	fnLast
	fnRate
	fnStddev
	fnQuantile
	fnDistinct
)

var fnNames = map[string]fn{
	"count": fnCount, "sum": fnSum, "avg": fnAvg, "min": fnMin, "max": fnMax,
	"first": fnFirst, "last": fnLast, "rate": fnRate, "stddev": fnStddev, "distinct": fnDistinct,
}

// knownFunctions is what an unknown function name is compared with, in the order the docs
// list them.
var knownFunctions = []string{"count", "sum", "avg", "min", "max", "first", "last", "rate", "stddev", "p50", "p90", "p95", "p99", "distinct"}

// numeric reports whether f needs numbers.
func (f fn) numeric() bool {
	switch f {
	case fnSum, fnAvg, fnMin, fnMax, fnRate, fnStddev, fnQuantile:
		return true
	}
	return false
}

// call is one parsed aggregate: fn(arg).
type call struct {
	fn   fn
	name string  // as written: avg, p95
	q    float64 // fnQuantile: the quantile, 0..1
	arg  *config.Expr
}

// parseCall reads an aggregate written as one call, name(expression) or name(). Errors
// point at the character to fix.
func parseCall(e config.Expr) (call, error) {
	src := e.Src
	// col is the 1-based character number of byte offset b, as ExprError wants.
	col := func(b int) int { return utf8.RuneCountInString(src[:b]) + 1 }
	i := len(src) - len(strings.TrimLeft(src, " \t\n"))
	start := i
	for i < len(src) && (src[i] == '_' || src[i] >= 'a' && src[i] <= 'z' || src[i] >= 'A' && src[i] <= 'Z' || i > start && src[i] >= '0' && src[i] <= '9') {
		i++
	}
	name := src[start:i]
	if name == "" {
		return call{}, config.ExprError(e, col(start), "an aggregate is one call such as avg(value) or count(); one of %s", strings.Join(knownFunctions, ", "))
	}
	c, ok := lookupFunction(name)
	if !ok {
		return call{}, config.ExprError(e, col(start), "unknown aggregate %q%s; one of %s (pNN for any percentile, e.g. p75, p999)", name, config.Suggestion(name, knownFunctions), strings.Join(knownFunctions, ", "))
	}
	for i < len(src) && (src[i] == ' ' || src[i] == '\t') {
		i++
	}
	if i >= len(src) || src[i] != '(' {
		at := min(i, len(src))
		if strings.TrimSpace(src[at:]) == "" {
			return call{}, config.ExprError(e, col(start), "%s is a function: write %s(%s)", name, name, exampleArg(c.fn))
		}
		return call{}, config.ExprError(e, col(at), "expected ( after %s: an aggregate is one call such as %s(%s)", name, name, exampleArg(c.fn))
	}
	open := i
	closing, err := matchParen(src, open)
	if err != nil {
		return call{}, config.ExprError(e, col(open), "%s", err)
	}
	if rest := src[closing+1:]; strings.TrimSpace(rest) != "" {
		after := closing + 1 + len(rest) - len(strings.TrimLeft(rest, " \t\n"))
		return call{}, config.ExprError(e, col(after), "an aggregate is one call and nothing else; compute with its result in a map after the window")
	}
	inner := src[open+1 : closing]
	lead := len(inner) - len(strings.TrimLeft(inner, " \t\n"))
	inner = strings.TrimSpace(inner)
	switch {
	case inner == "" && c.fn != fnCount && c.fn != fnRate:
		return call{}, config.ExprError(e, col(open), "%s needs an argument, e.g. %s(%s)", name, name, exampleArg(c.fn))
	case inner != "":
		arg := e.Sub(col(open+1+lead)-1, inner)
		c.arg = &arg
	}
	return c, nil
}

func exampleArg(f fn) string {
	if f == fnCount {
		return ""
	}
	return "value"
}

// lookupFunction knows the named functions and pNN: p50 is the 0.50 quantile, p05 the
// 0.05 one, and three or more digits starting with 99 read as 0.999...
func lookupFunction(name string) (call, bool) {
	if f, ok := fnNames[name]; ok {
		return call{fn: f, name: name}, true
	}
	digits, ok := strings.CutPrefix(name, "p")
	if !ok || len(digits) < 2 || strings.Trim(digits, "0123456789") != "" {
		return call{}, false
	}
	if len(digits) > 2 && !strings.HasPrefix(digits, "99") {
		return call{}, false
	}
	q, err := strconv.ParseFloat("0."+digits, 64)
	if err != nil {
		return call{}, false
	}
	return call{fn: fnQuantile, name: name, q: q}, true
}

// matchParen finds the ) that closes the ( at open, skipping string literals.
func matchParen(src string, open int) (int, error) {
	depth := 0
	for i := open; i < len(src); i++ {
		switch ch := src[i]; ch {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
			if depth == 0 {
				if ch != ')' {
					return 0, fmt.Errorf("( closed by %c", ch)
				}
				return i, nil
			}
		case '"', '\'', '`':
			j := i + 1
			for j < len(src) && src[j] != ch {
				if src[j] == '\\' && ch != '`' {
					j++
				}
				j++
			}
			i = j
		}
	}
	return 0, fmt.Errorf("( without a closing )")
}

// slotKind is a kind of per-window aggregate state. Aggregates that can share state do:
// p50(x) and p99(x) read one sketch, count() and rate() one count.
type slotKind uint8

const (
	slotCount slotKind = iota
	slotSum
	slotAvg
	slotMin
	slotMax
	slotStddev
	slotRate
	slotFirst
	slotLast
	slotSketch
	slotDistinct
)

// slot is one piece of per-window state: words in window.words from word on, or the
// object window.objs[obj].
type slot struct {
	kind  slotKind
	spec  string // names the state in checkpoints, e.g. "avg(value)"
	input int    // index of the input expression; -1 for count() and rate()
	word  int
	obj   int
}

var slotWords = [...]int{slotCount: 1, slotSum: 1, slotAvg: 2, slotMin: 1, slotMax: 1, slotStddev: 3, slotRate: 6}

func slotFor(f fn) (slotKind, string) {
	switch f {
	case fnCount:
		return slotCount, "count"
	case fnSum:
		return slotSum, "sum"
	case fnAvg:
		return slotAvg, "avg"
	case fnMin:
		return slotMin, "min"
	case fnMax:
		return slotMax, "max"
	case fnStddev:
		return slotStddev, "stddev"
	case fnRate:
		return slotRate, "rate"
	case fnFirst:
		return slotFirst, "first"
	case fnLast:
		return slotLast, "last"
	case fnQuantile:
		return slotSketch, "quantiles"
	}
	return slotDistinct, "distinct"
}

func (s *slot) usesObj() bool { return s.kind >= slotFirst }

// timed is a value with its event time (first, last).
type timed struct {
	t int64
	v any
}

var nanBits = math.Float64bits(math.NaN())

// init sets a new window's state for s.
func (s *slot) init(w *window) {
	if s.kind == slotMin || s.kind == slotMax {
		w.words[s.word] = nanBits
	}
}

// add counts one value: v as read, f its number (when the input is numeric), at event
// time t. nil values are skipped, except by count() which counts records.
func (s *slot) add(w *window, v any, f float64, t int64) {
	if s.input >= 0 && v == nil {
		return
	}
	x := w.words[s.word:]
	switch s.kind {
	case slotCount:
		x[0]++
	case slotSum:
		x[0] = math.Float64bits(math.Float64frombits(x[0]) + f)
	case slotAvg:
		x[0] = math.Float64bits(math.Float64frombits(x[0]) + f)
		x[1]++
	case slotMin:
		if cur := math.Float64frombits(x[0]); math.IsNaN(cur) || f < cur {
			x[0] = math.Float64bits(f)
		}
	case slotMax:
		if cur := math.Float64frombits(x[0]); math.IsNaN(cur) || f > cur {
			x[0] = math.Float64bits(f)
		}
	case slotStddev:
		// Welford's update of the mean and the sum of squared deviations.
		n := x[0] + 1
		mean := math.Float64frombits(x[1])
		d := f - mean
		mean += d / float64(n)
		m2 := math.Float64frombits(x[2]) + d*(f-mean)
		x[0], x[1], x[2] = n, math.Float64bits(mean), math.Float64bits(m2)
	case slotRate:
		r := rateOf(x)
		r.add(t, f)
		r.store(x)
	case slotFirst:
		if cur, _ := w.objs[s.obj].(*timed); cur == nil || t < cur.t {
			w.objs[s.obj] = &timed{t: t, v: v}
		}
	case slotLast:
		// Ties go to the later record, so last() of records with one time is the last read.
		if cur, _ := w.objs[s.obj].(*timed); cur == nil || t >= cur.t {
			w.objs[s.obj] = &timed{t: t, v: v}
		}
	case slotSketch:
		sk, _ := w.objs[s.obj].(*sketch)
		if sk == nil {
			sk = &sketch{}
			w.objs[s.obj] = sk
		}
		sk.add(f)
	case slotDistinct:
		d, _ := w.objs[s.obj].(*distinct)
		if d == nil {
			d = &distinct{}
			w.objs[s.obj] = d
		}
		d.add(v)
	}
}

// merge folds src's state into dst (two session windows joined by a record between them).
func (s *slot) merge(dst, src *window) {
	x, y := dst.words[s.word:], src.words[s.word:]
	switch s.kind {
	case slotCount:
		x[0] += y[0]
	case slotSum:
		x[0] = math.Float64bits(math.Float64frombits(x[0]) + math.Float64frombits(y[0]))
	case slotAvg:
		x[0] = math.Float64bits(math.Float64frombits(x[0]) + math.Float64frombits(y[0]))
		x[1] += y[1]
	case slotMin:
		if a, b := math.Float64frombits(x[0]), math.Float64frombits(y[0]); math.IsNaN(a) || b < a {
			x[0] = y[0]
		}
	case slotMax:
		if a, b := math.Float64frombits(x[0]), math.Float64frombits(y[0]); math.IsNaN(a) || b > a {
			x[0] = y[0]
		}
	case slotStddev:
		// Chan et al.'s pairwise combination of (n, mean, M2).
		na, nb := float64(x[0]), float64(y[0])
		if nb == 0 {
			return
		}
		if na == 0 {
			copy(x[:3], y[:3])
			return
		}
		ma, mb := math.Float64frombits(x[1]), math.Float64frombits(y[1])
		n := na + nb
		d := mb - ma
		mean := ma + d*nb/n
		m2 := math.Float64frombits(x[2]) + math.Float64frombits(y[2]) + d*d*na*nb/n
		x[0], x[1], x[2] = x[0]+y[0], math.Float64bits(mean), math.Float64bits(m2)
	case slotRate:
		a, b := rateOf(x), rateOf(y)
		a.merge(b)
		a.store(x)
	case slotFirst:
		if o, _ := src.objs[s.obj].(*timed); o != nil {
			if cur, _ := dst.objs[s.obj].(*timed); cur == nil || o.t < cur.t {
				dst.objs[s.obj] = o
			}
		}
	case slotLast:
		if o, _ := src.objs[s.obj].(*timed); o != nil {
			if cur, _ := dst.objs[s.obj].(*timed); cur == nil || o.t > cur.t {
				dst.objs[s.obj] = o
			}
		}
	case slotSketch:
		if o, _ := src.objs[s.obj].(*sketch); o != nil {
			if cur, _ := dst.objs[s.obj].(*sketch); cur == nil {
				dst.objs[s.obj] = o
			} else {
				cur.merge(o)
			}
		}
	case slotDistinct:
		if o, _ := src.objs[s.obj].(*distinct); o != nil {
			if cur, _ := dst.objs[s.obj].(*distinct); cur == nil {
				dst.objs[s.obj] = o
			} else {
				cur.merge(o)
			}
		}
	}
}

// encode appends s's state in w.
func (s *slot) encode(w *window, e *encoder) {
	if !s.usesObj() {
		for _, v := range w.words[s.word : s.word+slotWords[s.kind]] {
			e.uvarint(v)
		}
		return
	}
	switch o := w.objs[s.obj].(type) {
	case nil:
		e.uvarint(0)
	case *timed:
		e.uvarint(1)
		e.varint(o.t)
		b, err := json.Marshal(o.v)
		if err != nil {
			// Values come from decoded JSON or expressions over it; one that does not
			// encode is kept as its printed form rather than losing the checkpoint.
			b, _ = json.Marshal(fmt.Sprint(o.v))
		}
		e.bytes(b)
	case *sketch:
		e.uvarint(1)
		o.encode(e)
	case *distinct:
		e.uvarint(1)
		o.encode(e)
	}
}

func (s *slot) decode(w *window, d *decoder) error {
	if !s.usesObj() {
		for i := range slotWords[s.kind] {
			w.words[s.word+i] = d.uvarint()
		}
		return d.err
	}
	if d.uvarint() == 0 {
		w.objs[s.obj] = nil
		return d.err
	}
	switch s.kind {
	case slotFirst, slotLast:
		t := d.varint()
		var v any
		if b := d.bytes(); d.err == nil {
			if err := json.Unmarshal(b, &v); err != nil {
				return fmt.Errorf("%s: %w", s.spec, err)
			}
		}
		w.objs[s.obj] = &timed{t: t, v: v}
	case slotSketch:
		sk := &sketch{}
		if err := sk.decode(d); err != nil {
			return fmt.Errorf("%s: %w", s.spec, err)
		}
		w.objs[s.obj] = sk
	case slotDistinct:
		c := &distinct{}
		if err := c.decode(d); err != nil {
			return fmt.Errorf("%s: %w", s.spec, err)
		}
		w.objs[s.obj] = c
	}
	return d.err
}

// rate is the state of rate(x): the first and last sample by event time and the counter's
// increase between them, a drop counting as a reset to 0 (the increase is then the new
// value). A sample that arrives out of order between the first and last ones is not used:
// for a counter that did not reset in between it changes nothing, and keeping every sample
// to place it would make the state grow with the window.
type rate struct {
	n                 uint64
	firstT, lastT     int64
	firstV, lastV, up float64
}

func rateOf(x []uint64) rate {
	return rate{n: x[0], firstT: int64(x[1]), firstV: math.Float64frombits(x[2]),
		lastT: int64(x[3]), lastV: math.Float64frombits(x[4]), up: math.Float64frombits(x[5])}
}

func (r rate) store(x []uint64) {
	x[0], x[1], x[2] = r.n, uint64(r.firstT), math.Float64bits(r.firstV)
	x[3], x[4], x[5] = uint64(r.lastT), math.Float64bits(r.lastV), math.Float64bits(r.up)
}

// increase of a counter from a to b.
func increase(a, b float64) float64 {
	if b < a {
		return b // reset: it counted from 0 to b
	}
	return b - a
}

func (r *rate) add(t int64, v float64) {
	switch {
	case r.n == 0:
		r.firstT, r.firstV, r.lastT, r.lastV = t, v, t, v
	case t >= r.lastT:
		r.up += increase(r.lastV, v)
		r.lastT, r.lastV = t, v
	case t < r.firstT:
		r.up += increase(v, r.firstV)
		r.firstT, r.firstV = t, v
	}
	r.n++
}

// merge joins two runs of samples. Session windows never overlap in time, so one run
// ends before the other starts; were they to overlap, the increases are only added.
func (r *rate) merge(o rate) {
	switch {
	case o.n == 0:
		return
	case r.n == 0:
		*r = o
		return
	case r.lastT <= o.firstT:
		r.up += increase(r.lastV, o.firstV) + o.up
		r.lastT, r.lastV = o.lastT, o.lastV
	case o.lastT <= r.firstT:
		r.up += increase(o.lastV, r.firstV) + o.up
		r.firstT, r.firstV = o.firstT, o.firstV
	default:
		r.up += o.up
		if o.firstT < r.firstT {
			r.firstT, r.firstV = o.firstT, o.firstV
		}
		if o.lastT > r.lastT {
			r.lastT, r.lastV = o.lastT, o.lastV
		}
	}
	r.n += o.n
}

// perSecond is the counter's increase per second between the first and last sample; nil
// with fewer than two samples at different times.
func (r rate) perSecond() any {
	if r.n < 2 || r.lastT == r.firstT {
		return nil
	}
	return r.up / (float64(r.lastT-r.firstT) / 1e9)
}

// aggregate is one output field.
type aggregate struct {
	name string
	call call
	slot int
}

// result reads aggregate a of window w (whose length is dur nanoseconds).
func (a *aggregate) result(s *slot, w *window) any {
	x := w.words[s.word:]
	switch a.call.fn {
	case fnCount:
		return int(x[0])
	case fnSum:
		return math.Float64frombits(x[0])
	case fnAvg:
		if x[1] == 0 {
			return nil
		}
		return math.Float64frombits(x[0]) / float64(x[1])
	case fnMin, fnMax:
		if f := math.Float64frombits(x[0]); !math.IsNaN(f) {
			return f
		}
		return nil
	case fnStddev:
		if x[0] == 0 {
			return nil
		}
		return math.Sqrt(math.Max(0, math.Float64frombits(x[2])/float64(x[0])))
	case fnRate:
		if s.kind == slotCount { // rate(): records per second of window
			return float64(x[0]) / (float64(w.end-w.start) / 1e9)
		}
		return rateOf(x).perSecond()
	case fnFirst, fnLast:
		if t, _ := w.objs[s.obj].(*timed); t != nil {
			return t.v
		}
		return nil
	case fnQuantile:
		if sk, _ := w.objs[s.obj].(*sketch); sk != nil && sk.n > 0 {
			return sk.quantile(a.call.q)
		}
		return nil
	case fnDistinct:
		if d, _ := w.objs[s.obj].(*distinct); d != nil {
			return d.count()
		}
		return 0
	}
	return nil
}

// toFloat reads a number of any Go numeric type.
func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case int16:
		return float64(x), true
	case int8:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint8:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}
