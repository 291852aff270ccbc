package schema

import (
	"math/rand/v2"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// plainDateTime says yes only to what the reference's date-time check accepts, and says it
// to the forms agents and the engine write (else it would save nothing).
func TestPlainDateTimeIsAQuickerYes(t *testing.T) {
	reference := jsonschema.Formats["date-time"]
	for _, s := range []string{
		"2025-10-16T09:00:00Z", "2025-10-16T09:00:00.5Z", "2025-10-16T09:00:00.123456789Z",
		"2025-10-16T11:00:00+02:00", "2025-10-16T09:00:00-01:30", "2024-02-29T23:59:59Z", "0000-01-01T00:00:00Z",
	} {
		if !plainDateTime(s) || !reference(s) {
			t.Errorf("%s: plainDateTime %v, reference %v; want both true", s, plainDateTime(s), reference(s))
		}
	}
	for _, s := range []string{
		"2025-02-29T09:00:00Z", "2025-04-31T09:00:00Z", "2025-13-01T09:00:00Z", "2025-10-16T24:00:00Z",
		"2025-10-16T09:60:00Z", "2016-12-31T23:59:60Z", "2025-10-16t09:00:00z", "2025-10-16T09:00:00.Z",
		"2025-10-16T09:00:00+24:00", "2025-10-16T09:00:00+2:00", "2025-10-16T09:00:00", "+025-10-16T09:00:00Z",
		"2025-10-16T09:00:00Zjunk", "2025-10-16 09:00:00Z",
	} {
		if plainDateTime(s) {
			t.Errorf("%s: plainDateTime says yes, want it left to the reference", s)
		}
	}
	// Mutations of valid times: whatever plainDateTime accepts, the reference does.
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := "0123456789-+:.TZtz "
	for range 200000 {
		b := []byte("2024-02-29T23:59:59.25+02:00")[:20+rng.IntN(9)]
		for range 1 + rng.IntN(3) {
			b[rng.IntN(len(b))] = alphabet[rng.IntN(len(alphabet))]
		}
		if s := string(b); plainDateTime(s) && !reference(s) {
			t.Fatalf("%s: plainDateTime accepts what the reference rejects", s)
		}
	}
}

// FuzzPlainDateTime looks for a string plainDateTime accepts and the reference rejects.
func FuzzPlainDateTime(f *testing.F) {
	f.Add("2025-10-16T09:00:00Z")
	f.Add("2025-10-16T11:00:00.5+02:00")
	reference := jsonschema.Formats["date-time"]
	f.Fuzz(func(t *testing.T, s string) {
		if plainDateTime(s) && !reference(s) {
			t.Fatalf("%q: plainDateTime accepts what the reference rejects", s)
		}
	})
}
