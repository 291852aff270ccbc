package codec

import (
	"strconv"
)

// SyntaxError reports input that is not JSON, or JSON this decoder refuses (nesting deeper
// than MaxDepth, invalid UTF-8 or a lone surrogate escape in a string, a repeated key, a
// number float64 cannot hold). Offset is the 0-based byte offset of the offending byte (the
// repeated key's opening quote, the number's first character), or len(data) when the input
// ends too early.
type SyntaxError struct {
	Msg    string
	Offset int
}

func (e *SyntaxError) Error() string {
	return e.Msg + " at offset " + strconv.Itoa(e.Offset)
}

// TypeError reports valid JSON whose top-level value is not an object.
type TypeError struct {
	// Got names the value found: "an array", "a string", "a number", "a boolean" or "null".
	Got    string
	Offset int
}

func (e *TypeError) Error() string {
	return "want a JSON object, got " + e.Got + " at offset " + strconv.Itoa(e.Offset)
}

// describeChar quotes c for an error message the way encoding/json does, so messages read
// the same whichever decoder produced them.
func describeChar(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	q := strconv.Quote(string(rune(c)))
	return "'" + q[1:len(q)-1] + "'"
}
