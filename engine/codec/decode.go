package codec

import (
	"hash/maphash"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// MaxDepth is the deepest nesting of objects and arrays DecodeObject accepts, the same limit
// as encoding/json: it bounds the decoder's recursion, so hostile input cannot exhaust the
// goroutine stack.
const MaxDepth = 10000

const (
	// cacheSize is the number of slots in each decoder's key and string-value caches. Events
	// of one pipeline share a few dozen keys and low-cardinality values (tenants, hosts,
	// metric names), so a few hundred slots hit nearly always and cost 16 KiB per decoder.
	cacheSize = 512
	// maxInternedValue is the longest string value worth interning. Longer strings are
	// usually unique (messages, ids) and would only evict useful entries.
	maxInternedValue = 32
	// maxScratch bounds the scratch stacks a pooled decoder keeps, so one huge document does
	// not pin its memory in the pool.
	maxScratch = 1 << 12
)

// DecodeObject decodes one JSON value that must be an object, into the encoding/json data
// model: map[string]any, []any, string, float64, bool, nil.
//
// The result is exactly what json.Unmarshal into an any gives, numbers parsed by
// strconv.ParseFloat, except that DecodeObject refuses the inputs json.Unmarshal silently
// changes (the engine's input policy, docs/reliability.md):
//
//   - invalid UTF-8 inside a string, and a \u escape of half a surrogate pair (encoding/json
//     makes both U+FFFD);
//   - an object with a repeated key (encoding/json keeps the last value);
//   - a number outside float64's range: above 1.8e308 (encoding/json refuses it too) or
//     non-zero but below 4.9e-324 (encoding/json makes it 0). Rounding within the range, to
//     the nearest float64 or subnormal, is not refused: every decimal number rounds.
//
// Invalid or refused input yields a *SyntaxError naming the problem and its byte offset; a
// valid non-object value yields a *TypeError. The result never aliases data.
//
// DecodeObject is safe for concurrent use.
func DecodeObject(data []byte) (map[string]any, error) {
	d := decoderPool.Get().(*decoder)
	d.data, d.pos, d.depth = data, 0, 0

	v, err := d.value()
	if err == nil {
		d.skipSpace()
		if d.pos < len(d.data) {
			err = d.syntaxError("after top-level value")
		}
	}
	d.release()

	if err != nil {
		return nil, err
	}
	if m, ok := v.(map[string]any); ok {
		return m, nil
	}
	return nil, &TypeError{Got: kindOf(v), Offset: firstNonSpace(data)}
}

var decoderPool = sync.Pool{New: func() any { return new(decoder) }}

// hashSeed is shared by all decoders so that their caches agree on slots; only the
// distribution matters, not secrecy, because every hit is confirmed by comparing bytes.
var hashSeed = maphash.MakeSeed()

// smallInts holds boxed float64 values for the integers 0..255: counters, percentages and
// status codes are most numbers in telemetry, and a shared box saves an allocation each.
var smallInts = func() (t [256]any) {
	for i := range t {
		t[i] = float64(i)
	}
	return t
}()

// member is a decoded key/value pair waiting for its object to close, so the map can be
// allocated at its final size. at is the offset of the key, for the error when it repeats.
type member struct {
	key   string
	value any
	at    int
}

// decoder is one pass over one document. Decoders are pooled; their caches survive between
// documents, and since a pooled decoder serves one goroutine at a time they need no locks.
type decoder struct {
	data  []byte
	pos   int
	depth int

	members []member // open objects' pairs, innermost last
	elems   []any    // open arrays' elements, innermost last
	buf     []byte   // unescaped bytes of the current string

	keys [cacheSize]string
	vals [cacheSize]any // always strings

	// arena backs the strings the decoder makes: one allocation per arenaChunk bytes of
	// string data instead of one per string. It is only ever appended to, never rewritten,
	// so a string made from it stays valid for as long as anything refers to it.
	arena []byte
}

// arenaChunk is the size of one string arena block. A string that outlives its document
// keeps at most one block alive; longer strings get their own allocation.
const arenaChunk = 2048

// makeString copies raw into the arena and returns it as a string.
func (d *decoder) makeString(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	if len(raw) > arenaChunk/8 {
		return string(raw)
	}
	if cap(d.arena)-len(d.arena) < len(raw) {
		d.arena = make([]byte, 0, arenaChunk)
	}
	start := len(d.arena)
	d.arena = append(d.arena, raw...)
	return unsafe.String(&d.arena[start], len(raw))
}

func (d *decoder) release() {
	d.data = nil
	// After an error the stacks still hold the open containers' values.
	clear(d.members)
	clear(d.elems)
	d.members, d.elems = d.members[:0], d.elems[:0]
	if cap(d.members) > maxScratch {
		d.members = nil
	}
	if cap(d.elems) > maxScratch {
		d.elems = nil
	}
	if cap(d.buf) > maxScratch*16 {
		d.buf = nil
	}
	decoderPool.Put(d)
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// value decodes the value starting at the next non-space byte.
func (d *decoder) value() (any, error) {
	d.skipSpace()
	if d.pos >= len(d.data) {
		return nil, d.endError()
	}
	switch c := d.data[d.pos]; c {
	case '{':
		return d.object()
	case '[':
		return d.array()
	case '"':
		return d.stringValue()
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	case 'n':
		return nil, d.literal("null")
	default:
		if c == '-' || isDigit(c) {
			return d.number()
		}
		return nil, d.syntaxError("looking for beginning of value")
	}
}

func (d *decoder) enter() error {
	d.depth++
	if d.depth > MaxDepth {
		return d.errorAt("exceeded max depth", d.pos)
	}
	d.pos++ // the opening bracket
	return nil
}

func (d *decoder) object() (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	start := len(d.members)
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		d.depth--
		return map[string]any{}, nil
	}
	for {
		if d.pos >= len(d.data) {
			return nil, d.endError()
		}
		if d.data[d.pos] != '"' {
			return nil, d.syntaxError("looking for beginning of object key string")
		}
		keyAt := d.pos
		raw, err := d.str()
		if err != nil {
			return nil, err
		}
		key := d.internKey(raw)

		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.endError()
		}
		if d.data[d.pos] != ':' {
			return nil, d.syntaxError("after object key")
		}
		d.pos++
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.members = append(d.members, member{key, v, keyAt})

		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.endError()
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
			d.skipSpace()
			continue
		case '}':
			d.pos++
			d.depth--
			pairs := d.members[start:]
			m := make(map[string]any, len(pairs))
			for _, p := range pairs {
				m[p.key] = p.value
			}
			if len(m) != len(pairs) {
				// Fewer entries than pairs: a key repeats. Only now is it worth finding.
				return nil, duplicateKey(pairs)
			}
			clear(pairs)
			d.members = d.members[:start]
			return m, nil
		default:
			return nil, d.syntaxError("after object key:value pair")
		}
	}
}

func (d *decoder) array() (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	start := len(d.elems)
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		return []any{}, nil
	}
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.elems = append(d.elems, v)

		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.endError()
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
			continue
		case ']':
			d.pos++
			d.depth--
			items := d.elems[start:]
			a := make([]any, len(items))
			copy(a, items)
			clear(items)
			d.elems = d.elems[:start]
			return a, nil
		default:
			return nil, d.syntaxError("after array element")
		}
	}
}

func (d *decoder) literal(word string) error {
	for i := 0; i < len(word); i++ {
		if d.pos >= len(d.data) {
			return d.endError()
		}
		if d.data[d.pos] != word[i] {
			return d.syntaxError("in literal " + word + " (expecting " + describeChar(word[i]) + ")")
		}
		d.pos++
	}
	return nil
}

// number scans a number in the JSON grammar and converts it like encoding/json does for an
// any: strconv.ParseFloat, an error when out of range.
func (d *decoder) number() (any, error) {
	data := d.data
	start := d.pos
	i := d.pos
	neg := data[i] == '-'
	if neg {
		i++
		if i >= len(data) {
			d.pos = i
			return nil, d.endError()
		}
	}
	// The integer part, accumulated on the way for the common small-integer case.
	var mantissa uint64
	digits := 0
	switch c := data[i]; {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		for i < len(data) && isDigit(data[i]) {
			mantissa = mantissa*10 + uint64(data[i]-'0')
			digits++
			i++
		}
	default:
		d.pos = i
		return nil, d.syntaxError("in numeric literal")
	}
	integer := true
	if i < len(data) && data[i] == '.' {
		integer = false
		i++
		if i >= len(data) {
			d.pos = i
			return nil, d.endError()
		}
		if !isDigit(data[i]) {
			d.pos = i
			return nil, d.syntaxError("after decimal point in numeric literal")
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		integer = false
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) {
			d.pos = i
			return nil, d.endError()
		}
		if !isDigit(data[i]) {
			d.pos = i
			return nil, d.syntaxError("in exponent of numeric literal")
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	d.pos = i

	// Up to 15 digits an integer is exact in a float64, so the conversion agrees with
	// ParseFloat without calling it.
	if integer && digits <= 15 {
		if !neg && mantissa < uint64(len(smallInts)) {
			return smallInts[mantissa], nil
		}
		f := float64(mantissa)
		if neg {
			f = -f // "-0" is negative zero, as ParseFloat makes it
		}
		return f, nil
	}
	text := data[start:i]
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		// The grammar is already checked, so this is a range error.
		return nil, d.errorAt("number "+clip(text)+" is out of the float64 range (magnitude above 1.8e308)", start)
	}
	if f == 0 && !integer && hasNonZeroDigit(text) {
		// ParseFloat rounds a magnitude below the smallest float64 to 0 without an error;
		// a reading of 1e-400 is then stored as exactly 0, which it is not.
		return nil, d.errorAt("number "+clip(text)+" is out of the float64 range (non-zero, but below 4.9e-324: it would become 0)", start)
	}
	return f, nil
}

// hasNonZeroDigit reports whether the significand of the number text (the digits before
// any exponent) has a digit other than 0, that is whether the number is not zero.
func hasNonZeroDigit(text []byte) bool {
	for _, c := range text {
		switch {
		case c == 'e' || c == 'E':
			return false
		case '1' <= c && c <= '9':
			return true
		}
	}
	return false
}

// stringValue decodes a string value; short ones are interned since telemetry repeats them.
func (d *decoder) stringValue() (any, error) {
	raw, err := d.str()
	if err != nil {
		return nil, err
	}
	if len(raw) > maxInternedValue {
		return d.makeString(raw), nil
	}
	if len(raw) == 0 {
		return "", nil
	}
	slot := &d.vals[maphash.Bytes(hashSeed, raw)%cacheSize]
	if s, ok := (*slot).(string); ok && s == string(raw) {
		return *slot, nil
	}
	*slot = d.makeString(raw)
	return *slot, nil
}

// internKey returns raw as a string, sharing the memory of an earlier equal key.
func (d *decoder) internKey(raw []byte) string {
	slot := &d.keys[maphash.Bytes(hashSeed, raw)%cacheSize]
	if *slot == string(raw) { // compares without allocating
		return *slot
	}
	*slot = d.makeString(raw)
	return *slot
}

// str scans the string starting at the opening quote at d.pos and returns its decoded
// bytes: a sub-slice of the input when it needs no unescaping, else d.buf. Either way the
// bytes are valid only until the next call.
func (d *decoder) str() ([]byte, error) {
	data := d.data
	start := d.pos + 1
	i := start
	for i < len(data) {
		c := data[i]
		if c == '"' {
			d.pos = i + 1
			return data[start:i], nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		i++
	}
	return d.strSlow(start, i)
}

// strSlow continues str from i, the first byte that may need work: escapes, control
// characters and invalid UTF-8 (errors) and non-ASCII bytes. Valid UTF-8 without escapes is
// still returned as a sub-slice of the input.
func (d *decoder) strSlow(start, i int) ([]byte, error) {
	data := d.data
	copied := false // whether the decoded bytes so far are in d.buf
	clean := start  // data[clean:i] is pending verbatim output
	flush := func() {
		if !copied {
			d.buf = d.buf[:0]
			copied = true
		}
		d.buf = append(d.buf, data[clean:i]...)
	}
	for i < len(data) {
		c := data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			if !copied {
				return data[start:i], nil
			}
			flush()
			return d.buf, nil
		case c == '\\':
			flush()
			r, n, err := d.escape(i)
			if err != nil {
				return nil, err
			}
			d.buf = utf8.AppendRune(d.buf, r)
			i += n
			clean = i
		case c < 0x20:
			d.pos = i
			return nil, d.syntaxError("in string literal")
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				// encoding/json would put U+FFFD here; the text would no longer be what
				// was sent, and nothing would say so.
				return nil, d.errorAt("invalid UTF-8 in string (byte 0x"+strconv.FormatUint(uint64(c), 16)+")", i)
			}
			i += size
		}
	}
	d.pos = len(data)
	return nil, d.endError()
}

// escape decodes the escape sequence at data[i] (a backslash) and returns its rune and
// length. A \u escape of a surrogate half takes the following \u escape with it when the
// two form a pair; a surrogate half alone is an error (encoding/json makes it U+FFFD), since
// it stands for no character and UTF-8 cannot hold it.
func (d *decoder) escape(i int) (rune, int, error) {
	data := d.data
	if i+1 >= len(data) {
		d.pos = len(data)
		return 0, 0, d.endError()
	}
	switch data[i+1] {
	case '"':
		return '"', 2, nil
	case '\\':
		return '\\', 2, nil
	case '/':
		return '/', 2, nil
	case 'b':
		return '\b', 2, nil
	case 'f':
		return '\f', 2, nil
	case 'n':
		return '\n', 2, nil
	case 'r':
		return '\r', 2, nil
	case 't':
		return '\t', 2, nil
	case 'u':
		r, err := d.hex4(i + 2)
		if err != nil {
			return 0, 0, err
		}
		if !utf16.IsSurrogate(r) {
			return r, 6, nil
		}
		// Only a \uXXXX right after can complete the pair; a malformed one is a syntax error.
		if i+8 <= len(data) && data[i+6] == '\\' && data[i+7] == 'u' {
			r2, err := d.hex4(i + 8)
			if err != nil {
				return 0, 0, err
			}
			if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
				return pair, 12, nil
			}
		}
		return 0, 0, d.errorAt("invalid \\u escape: \\u"+string(data[i+2:i+6])+" is half of a UTF-16 surrogate pair without its other half", i)
	default:
		d.pos = i + 1
		return 0, 0, d.syntaxError("in string escape code")
	}
}

// hex4 decodes the four hex digits of a \u escape starting at data[i].
func (d *decoder) hex4(i int) (rune, error) {
	for j := i; j < i+4; j++ {
		if j >= len(d.data) {
			d.pos = len(d.data)
			return 0, d.endError()
		}
		if !isHex(d.data[j]) {
			d.pos = j
			return 0, d.syntaxError(`in \u hexadecimal character escape`)
		}
	}
	r, _ := parseHex4(d.data[i : i+4])
	return r, nil
}

func parseHex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// syntaxError reports the byte at d.pos.
func (d *decoder) syntaxError(context string) error {
	return d.errorAt("invalid character "+describeChar(d.data[d.pos])+" "+context, d.pos)
}

func (d *decoder) endError() error {
	return d.errorAt("unexpected end of JSON input", len(d.data))
}

func (d *decoder) errorAt(msg string, offset int) error {
	return &SyntaxError{Msg: msg, Offset: offset}
}

// duplicateKey reports the first key of an object's pairs that repeats an earlier one, at
// the repetition. encoding/json keeps the last value silently; which value a producer meant
// cannot be known, so the record is refused instead.
func duplicateKey(pairs []member) error {
	seen := make(map[string]bool, len(pairs))
	for _, p := range pairs {
		if seen[p.key] {
			return &SyntaxError{Msg: "duplicate key " + clip([]byte(strconv.Quote(p.key))) + " in object", Offset: p.at}
		}
		seen[p.key] = true
	}
	return &SyntaxError{Msg: "duplicate key in object", Offset: pairs[0].at} // not reached
}

// maxQuoted is how much of a number or key an error message repeats.
const maxQuoted = 64

// clip returns text for an error message, cut to about maxQuoted bytes at a character
// boundary.
func clip(text []byte) string {
	if len(text) <= maxQuoted {
		return string(text)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return string(text[:cut]) + "..."
}

func kindOf(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	default:
		return "an object"
	}
}

func firstNonSpace(data []byte) int {
	for i, c := range data {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return i
		}
	}
	return len(data)
}
