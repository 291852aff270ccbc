package runtime

import (
	"strings"
	"testing"

	"github.com/eventops/eventops-engine/config"
)

// An http input's listener is opened once: a reload that would add, remove or change one,
// or change the topic it stores into, is refused and says so; other changes to its stream
// are not.
func TestReloadRefusesToChangeAnHTTPInput(t *testing.T) {
	pipeline := func(topic, listen string, batch int) *config.Pipeline {
		in := config.Input{Topic: topic, BatchSize: batch}
		if listen != "" {
			in.HTTP = &config.HTTPInput{Listen: listen, Path: "/"}
		}
		return &config.Pipeline{Streams: []config.Stream{{Name: "s", Input: in}}}
	}
	base := pipeline("raw", ":8090", 100)
	withOTLP := func(p *config.Pipeline, signal string) *config.Pipeline {
		in := p.Streams[0].Input
		in.OTLP = &config.OTLPInput{GRPC: &config.OTLPListener{Listen: ":4317"}, Signals: []string{signal}}
		return &config.Pipeline{Streams: []config.Stream{{Name: "s", Input: in}}}
	}
	for _, tc := range []struct {
		name      string
		old, next *config.Pipeline
		refused   bool
	}{
		{"unchanged", base, pipeline("raw", ":8090", 100), false},
		{"another batch size", base, pipeline("raw", ":8090", 10), false},
		{"another address", base, pipeline("raw", ":8091", 100), true},
		{"another topic", base, pipeline("raw2", ":8090", 100), true},
		{"the http input gone", base, pipeline("raw", "", 100), true},
		{"an http input added", pipeline("raw", "", 100), base, true},
		{"an otlp input's signals", withOTLP(base, "metrics"), withOTLP(base, "logs"), true},
		{"an otlp input unchanged", withOTLP(base, "metrics"), withOTLP(base, "metrics"), false},
	} {
		errs := httpInputsChanged(tc.old, tc.next)
		if (len(errs) > 0) != tc.refused {
			t.Errorf("%s: %v, want refused %v", tc.name, errs, tc.refused)
		}
		if tc.refused && (len(errs) != 1 || !strings.Contains(errs[0], "streams.s.input: adding, removing or changing an http, prometheus_remote_write or otlp input (or its topic) needs a restart")) {
			t.Errorf("%s: %v", tc.name, errs)
		}
	}
}

// A lookup kept in a topic is followed from the start of the run: a reload that adds one or
// changes its topic is refused and says so; adding a file lookup is not.
func TestReloadRefusesToAddALookupKeptInATopic(t *testing.T) {
	with := func(lookups map[string]config.Lookup) *config.Pipeline {
		return &config.Pipeline{Lookups: lookups}
	}
	base := with(map[string]config.Lookup{"calls": {Topic: "edges"}})
	for _, tc := range []struct {
		name      string
		old, next *config.Pipeline
		want      string
	}{
		{"unchanged", base, with(map[string]config.Lookup{"calls": {Topic: "edges"}}), ""},
		{"a file lookup added", base, with(map[string]config.Lookup{"calls": {Topic: "edges"}, "cmdb": {File: "cmdb.csv", Key: "id"}}), ""},
		{"a topic lookup added", with(nil), base, "lookups.calls: adding a lookup kept in a topic needs a restart"},
		{"another topic", base, with(map[string]config.Lookup{"calls": {Topic: "edges2"}}), "lookups.calls: changing a lookup's file, topic or key needs a restart"},
	} {
		err := notReloadable(tc.old, tc.next)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
