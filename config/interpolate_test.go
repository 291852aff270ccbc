package config

import (
	"errors"
	"strings"
	"testing"
)

// TestUnsetVariableIsOneError checks the input policy for ${VAR}: a variable that is unset and
// has no default fails the load with one error at its "${" naming the variable and the path,
// whatever the field's type (the empty value it would have had is not decoded, so no type or
// Validate error repeats it); ${VAR:-} and a variable set to "" are values as written.
func TestUnsetVariableIsOneError(t *testing.T) {
	const base = "version: 1\nbroker: {brokers: [localhost:9092]}\ndead_letter: dlq\ntopics:\n  dlq: {}\n"
	tests := []struct {
		name string
		src  string
		want string // the only finding; "" for none
	}{
		{"in a string", "api:\n  listen: ${NOPE}\n",
			`t.yaml:8:11: api.listen: environment variable NOPE is not set and ${NOPE} has no default: set it, or write ${NOPE:-default} to give one (${NOPE:-} for an empty value)`},
		{"in a number", "  in: {partitions: \"${NOPE}\", ingest: true}\n",
			`t.yaml:6:21: topics.in.partitions: environment variable NOPE is not set and ${NOPE} has no default: set it, or write ${NOPE:-default} to give one (${NOPE:-} for an empty value)`},
		{"in a duration", "  in: {retention: \"${NOPE}\", ingest: true}\n",
			`t.yaml:6:20: topics.in.retention: environment variable NOPE is not set and ${NOPE} has no default: set it, or write ${NOPE:-default} to give one (${NOPE:-} for an empty value)`},
		{"inside a value, with a set one", "api:\n  listen: ${TABLE}:${NOPE}\n",
			`t.yaml:8:20: api.listen: environment variable NOPE is not set and ${NOPE} has no default: set it, or write ${NOPE:-default} to give one (${NOPE:-} for an empty value)`},
		{"explicit empty default", "api:\n  listen: \"127.0.0.1:8088${NOPE:-}\"\n", ""},
		{"set to the empty string", "api:\n  listen: \"127.0.0.1:8088${EMPTY}\"\n", ""},
		{"default used", "api:\n  listen: \"${NOPE:-127.0.0.1:8088}\"\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := base
			if strings.HasPrefix(tt.src, "  ") {
				src += tt.src // another topic
			} else {
				src += "  in: {ingest: true}\n" + tt.src
			}
			_, err := LoadBytes("t.yaml", []byte(src), testRegistry(), testEnv)
			var got []string
			var errs Errors
			if errors.As(err, &errs) {
				for _, e := range errs {
					got = append(got, e.Error())
				}
			} else if err != nil {
				t.Fatalf("got %v, want config.Errors", err)
			}
			switch {
			case tt.want == "" && len(got) > 0:
				t.Errorf("got findings %q, want none", got)
			case tt.want != "" && (len(got) != 1 || got[0] != tt.want):
				t.Errorf("got  %q\nwant [%q]", got, tt.want)
			}
		})
	}
}
