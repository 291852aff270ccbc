package schema

import (
	"encoding/json"
	"math"
	"time"
	"unicode/utf8"
)

// result is the fast tree's answer. Only valid is trusted; unknown means "ask the
// reference" (a value or number the fast tree cannot judge exactly).
type result uint8

const (
	valid result = iota
	unknown
	invalid
)

func resultOf(ok bool) result {
	if ok {
		return valid
	}
	return invalid
}

// value is one instance classified once, so that every keyword reads it without type
// switches or conversions. It is passed by value: a pointer to it would flow through the
// recursive checks and make the compiler move every child to the heap.
type value struct {
	kind typeMask // 0: not judged by the fast tree (NaN, json.Number, foreign types, ...)
	// isTime marks a string kept as time.Time: formatting it costs an allocation, and
	// most schemas only need its length and its date-time validity.
	isTime bool
	b      bool
	f      float64
	s      string
	t      time.Time
	obj    map[string]any
	arr    []any
	sobj   map[string]string
	sarr   []string
	orig   any // the value as the reference sees it, when it is already boxed
}

func classify(v any) value {
	switch x := v.(type) {
	case nil:
		return value{kind: typeNull, orig: v}
	case bool:
		return value{kind: typeBoolean, orig: v, b: x}
	case string:
		return value{kind: typeString, orig: v, s: x}
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return value{}
		}
		return value{kind: typeNumber, orig: v, f: x}
	case map[string]any:
		return value{kind: typeObject, orig: v, obj: x}
	case []any:
		return value{kind: typeArray, orig: v, arr: x}
	case map[string]string:
		if x == nil {
			return value{kind: typeNull}
		}
		return value{kind: typeObject, sobj: x}
	case []string:
		if x == nil {
			return value{kind: typeNull}
		}
		return value{kind: typeArray, sarr: x}
	case time.Time:
		if !marshalableTime(x) {
			return value{}
		}
		return value{kind: typeString, t: x, isTime: true}
	case float32:
		if f, ok := float32ToJSON(x); ok {
			return value{kind: typeNumber, f: f}
		}
		return value{}
	case int:
		return value{kind: typeNumber, f: float64(x)}
	case int64:
		return value{kind: typeNumber, f: float64(x)}
	case int32:
		return value{kind: typeNumber, f: float64(x)}
	case int16:
		return value{kind: typeNumber, f: float64(x)}
	case int8:
		return value{kind: typeNumber, f: float64(x)}
	case uint:
		return value{kind: typeNumber, f: float64(x)}
	case uint64:
		return value{kind: typeNumber, f: float64(x)}
	case uint32:
		return value{kind: typeNumber, f: float64(x)}
	case uint16:
		return value{kind: typeNumber, f: float64(x)}
	case uint8:
		return value{kind: typeNumber, f: float64(x)}
	case json.Number:
		return value{}
	}
	return value{}
}

// marshalableTime mirrors the checks encoding/json applies before writing a time.Time:
// a four-digit year and a zone offset under 24 hours. Such a time formats as an RFC 3339
// date-time that the reference's date-time checker accepts.
func marshalableTime(t time.Time) bool {
	if y := t.Year(); y < 0 || y > 9999 {
		return false
	}
	_, offset := t.Zone()
	return offset > -24*3600 && offset < 24*3600
}

// text returns the string form of a string value, formatting a time.Time on demand.
func (v value) text() string {
	if v.isTime {
		return v.t.Format(time.RFC3339Nano)
	}
	return v.s
}

// boxed returns the value as the reference would see it, boxing it if needed.
func (v value) boxed() any {
	if v.orig != nil || v.kind == typeNull {
		return v.orig
	}
	switch v.kind {
	case typeBoolean:
		return v.b
	case typeNumber:
		return v.f
	case typeString:
		return v.text()
	}
	return toJSON(v.any())
}

func (v value) any() any {
	switch {
	case v.sobj != nil:
		return v.sobj
	case v.sarr != nil:
		return v.sarr
	case v.obj != nil:
		return v.obj
	}
	return v.arr
}

func (n *node) check(v any) result {
	cv := classify(v)
	return n.checkValue(cv)
}

func (n *node) checkValue(v value) result {
	if n.always != nil {
		return resultOf(*n.always)
	}
	if v.kind == 0 {
		return unknown
	}
	if n.types != 0 && n.types&v.kind == 0 &&
		!(n.types&typeInteger != 0 && v.kind == typeNumber && isWhole(v.f)) {
		return invalid
	}
	res := valid
	if n.constant != nil {
		if res = max(res, equal(v, n.constant)); res == invalid {
			return invalid
		}
	}
	if n.enum != nil {
		if res = max(res, n.checkEnum(v)); res == invalid {
			return invalid
		}
	}
	if n.format != nil {
		if res = max(res, n.checkFormat(v)); res == invalid {
			return invalid
		}
	}
	switch v.kind {
	case typeObject:
		res = max(res, n.checkObject(v))
	case typeArray:
		res = max(res, n.checkArray(v))
	case typeString:
		res = max(res, n.checkString(v))
	case typeNumber:
		res = max(res, n.checkNumber(v.f))
	}
	if res == invalid {
		return invalid
	}
	if n.not != nil {
		switch n.not.checkValue(v) {
		case valid:
			return invalid
		case unknown:
			res = unknown
		}
	}
	for _, sub := range n.allOf {
		if res = max(res, sub.checkValue(v)); res == invalid {
			return invalid
		}
	}
	if n.anyOf != nil {
		res = max(res, n.checkAnyOf(v))
	}
	if n.oneOf != nil && res != invalid {
		res = max(res, n.checkOneOf(v))
	}
	return res
}

func (n *node) checkEnum(v value) result {
	res := invalid
	for i := range n.enum {
		switch equal(v, &n.enum[i]) {
		case valid:
			return valid
		case unknown:
			res = unknown
		}
	}
	return res
}

func (n *node) checkFormat(v value) result {
	if n.isDateTime && (v.isTime || v.kind == typeString && plainDateTime(v.s)) {
		return valid // see marshalableTime; plainDateTime
	}
	return resultOf(n.format(v.boxed()))
}

// plainDateTime reports whether s is a date-time of the plain form every agent and the
// engine write, 2025-10-16T09:00:00(.5)?(Z|+02:00), with digits only and every field in
// range (seconds up to 59): a quicker yes for what the reference's check (which Parses the
// date) accepts too. Anything else, leap seconds included, is left to the reference.
func plainDateTime(s string) bool {
	if len(s) < len("2006-01-02T15:04:05Z") || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return false
	}
	year, okY := digits(s[0:4])
	month, okM := digits(s[5:7])
	day, okD := digits(s[8:10])
	hour, okH := digits(s[11:13])
	minute, okMin := digits(s[14:16])
	sec, okS := digits(s[17:19])
	if !okY || !okM || !okD || !okH || !okMin || !okS || month < 1 || month > 12 || day < 1 ||
		day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return false
	}
	return plainOffset(skipFraction(s[19:]))
}

// skipFraction drops a fraction of a second (a dot and at least one digit) from the front
// of rest, if it has one.
func skipFraction(rest string) string {
	if len(rest) < 2 || rest[0] != '.' || !isDigit(rest[1]) {
		return rest
	}
	i := 2
	for i < len(rest) && isDigit(rest[i]) {
		i++
	}
	return rest[i:]
}

// plainOffset reports whether rest is exactly Z or a +hh:mm / -hh:mm offset in range.
func plainOffset(rest string) bool {
	if rest == "Z" {
		return true
	}
	if len(rest) != 6 || rest[0] != '+' && rest[0] != '-' || rest[3] != ':' {
		return false
	}
	h, okH := digits(rest[1:3])
	m, okM := digits(rest[4:6])
	return okH && okM && h <= 23 && m <= 59
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func (n *node) checkAnyOf(v value) result {
	res := invalid
	for _, sub := range n.anyOf {
		switch sub.checkValue(v) {
		case valid:
			return valid
		case unknown:
			res = unknown
		}
	}
	return res
}

func (n *node) checkOneOf(v value) result {
	matched, unsure := 0, false
	for _, sub := range n.oneOf {
		switch sub.checkValue(v) {
		case valid:
			if matched++; matched > 1 {
				return invalid
			}
		case unknown:
			unsure = true
		}
	}
	switch {
	case unsure:
		return unknown
	case matched == 1:
		return valid
	}
	return invalid
}

func (n *node) checkObject(v value) result {
	size := len(v.obj) + len(v.sobj) // one of them is empty
	if n.minProps >= 0 && size < n.minProps || n.maxProps >= 0 && size > n.maxProps {
		return invalid
	}
	for _, name := range n.requiredOther {
		if !v.has(name) {
			return invalid
		}
	}
	res := valid
	for _, p := range n.props {
		child, ok := v.member(p.name)
		if !ok {
			if p.required {
				return invalid
			}
			continue
		}
		if res = max(res, p.node.checkValue(child)); res == invalid {
			return invalid
		}
	}
	if n.patternProps == nil && !n.checkAdditional {
		return res
	}
	if v.obj != nil {
		for name, e := range v.obj {
			child := classify(e)
			if res = max(res, n.checkOtherMember(name, child)); res == invalid {
				return invalid
			}
		}
	} else {
		for name, e := range v.sobj {
			child := value{kind: typeString, s: e}
			if res = max(res, n.checkOtherMember(name, child)); res == invalid {
				return invalid
			}
		}
	}
	return res
}

// checkOtherMember applies patternProperties and additionalProperties to one member.
func (n *node) checkOtherMember(name string, child value) result {
	res := valid
	matched := false
	for _, pp := range n.patternProps {
		if pp.re.MatchString(name) {
			matched = true
			if res = max(res, pp.node.checkValue(child)); res == invalid {
				return invalid
			}
		}
	}
	if matched || !n.checkAdditional {
		return res
	}
	if _, declared := n.propIndex[name]; declared {
		return res
	}
	return max(res, n.additional.checkValue(child))
}

func (v value) has(name string) bool {
	if v.obj != nil {
		_, ok := v.obj[name]
		return ok
	}
	_, ok := v.sobj[name]
	return ok
}

func (v value) member(name string) (value, bool) {
	if v.obj != nil {
		e, ok := v.obj[name]
		if !ok {
			return value{}, false
		}
		return classify(e), true
	}
	s, ok := v.sobj[name]
	return value{kind: typeString, s: s}, ok
}

func (n *node) checkArray(v value) result {
	size := len(v.arr) + len(v.sarr)
	if n.minItems >= 0 && size < n.minItems || n.maxItems >= 0 && size > n.maxItems {
		return invalid
	}
	res := valid
	for i := 0; i < size; i++ {
		sub := n.items
		if i < len(n.prefixItems) {
			sub = n.prefixItems[i]
		}
		if sub == nil {
			break
		}
		child := v.element(i)
		if res = max(res, sub.checkValue(child)); res == invalid {
			return invalid
		}
	}
	return res
}

func (v value) element(i int) value {
	if v.arr != nil {
		return classify(v.arr[i])
	}
	return value{kind: typeString, s: v.sarr[i]}
}

func (n *node) checkString(v value) result {
	if n.minLength >= 0 || n.maxLength >= 0 {
		var length int
		if v.isTime {
			length = timeLength(v.t)
		} else {
			length = utf8.RuneCountInString(v.s)
		}
		if n.minLength >= 0 && length < n.minLength || n.maxLength >= 0 && length > n.maxLength {
			return invalid
		}
	}
	if n.pattern != nil && !n.pattern.MatchString(v.text()) {
		return invalid
	}
	return valid
}

// timeLength is the length of t in RFC 3339 (all ASCII), without allocating.
func timeLength(t time.Time) int {
	var buf [64]byte
	return len(t.AppendFormat(buf[:0], time.RFC3339Nano))
}

func (n *node) checkNumber(f float64) result {
	switch {
	case n.minimum != nil && n.minimum.cmp(f) < 0,
		n.maximum != nil && n.maximum.cmp(f) > 0,
		n.exclusiveMinimum != nil && n.exclusiveMinimum.cmp(f) <= 0,
		n.exclusiveMaximum != nil && n.exclusiveMaximum.cmp(f) >= 0:
		return invalid
	}
	if n.multipleOf != nil {
		return n.multipleOf.divides(f)
	}
	return valid
}

// equal compares a value with a const or enum member the way the reference does.
func equal(v value, c *constant) result {
	if v.kind != c.kind {
		return invalid
	}
	switch c.kind {
	case typeNull:
		return valid
	case typeBoolean:
		return resultOf(v.b == c.b)
	case typeString:
		return resultOf(v.text() == c.s)
	case typeNumber:
		return resultOf(c.num.cmp(v.f) == 0)
	case typeArray:
		size := len(v.arr) + len(v.sarr)
		if size != len(c.arr) {
			return invalid
		}
		res := valid
		for i := range c.arr {
			e := v.element(i)
			if e.kind == 0 {
				res = unknown
				continue
			}
			if res = max(res, equal(e, &c.arr[i])); res == invalid {
				return invalid
			}
		}
		return res
	case typeObject:
		size := len(v.obj) + len(v.sobj)
		if size != len(c.obj) {
			return invalid
		}
		res := valid
		for name, ce := range c.obj {
			e, ok := v.member(name)
			if !ok {
				return invalid
			}
			if e.kind == 0 {
				res = unknown
				continue
			}
			if res = max(res, equal(e, ce)); res == invalid {
				return invalid
			}
		}
		return res
	}
	return unknown
}
