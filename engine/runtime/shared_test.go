package runtime_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/runtime"
	"github.com/eventops/eventops-engine/engine/runtime/runtimetest"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// sharedPipeline: normalize writes values whose JSON form differs from what it built (times,
// integers, nested objects and lists), and two streams read them back; enrich-like top-level
// changes by one reader must not show in the other. Nothing depends on the clock, so two runs
// write the same bytes.
const sharedPipeline = `version: 1
broker: {embedded: {listen: 127.0.0.1:0, data_dir: %s}}
topics:
  raw: {partitions: 1, ingest: true}
  envelopes: {partitions: 2}
  seen-by-a: {partitions: 1}
  seen-by-b: {partitions: 1}
  dead: {partitions: 1}
dead_letter: dead
lookups:
  cmdb: {rows: [{host: h1, site: fra1}, {host: h2, site: ams2}], key: host}
api: {listen: "127.0.0.1:0"}
streams:
  - name: normalize
    input: {topic: raw}
    processors:
      - map:
          id: record_id()
          at: parse_time(ts)
          n: int(n)
          host: host
          nested: '{"list": [1, "two", {"three": parse_time(ts)}], "empty": {}}'
    output: {topic: envelopes, key: host}
  - name: a
    input: {topic: envelopes}
    processors:
      - enrich: {lookup: cmdb, key: host, into: cmdb}
      - map:
          id: id
          copy: 'toJSON({"at": at, "n": n, "host": host, "nested": nested, "cmdb": cmdb})'
          types: 'type(at) + "," + type(n) + "," + type(nested.list[2].three)'
    output: {topic: seen-by-a, key: id}
  - name: b
    input: {topic: envelopes}
    processors:
      - map: {id: id, copy: 'toJSON({"at": at, "n": n, "host": host, "nested": nested})', has_cmdb: '"cmdb" in $env'}
    output: {topic: seen-by-b, key: id}
`

// loadEmbedded loads pipeline, whose one %s is the embedded broker's data directory, from a
// fresh directory of the test.
func loadEmbedded(t *testing.T, pipeline string) *config.Pipeline {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.LoadBytes(filepath.Join(dir, "p.yaml"), []byte(fmt.Sprintf(pipeline, filepath.Join(dir, "broker"))), components.Registry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

var recordID = regexp.MustCompile(`"id":"[0-9a-f-]+"`)

func runShared(t *testing.T, decodeEvery bool, events []string) (a, b []string, shared float64) {
	t.Helper()
	cfg := loadEmbedded(t, sharedPipeline)
	metrics := telemetry.New()
	running, stop := runtimetest.Start(t, cfg, components, runtime.RunOptions{Metrics: metrics, DecodeEveryRecord: decodeEvery})
	defer stop()
	f := &flow{t: t, brokers: running.Broker.Addrs()}
	f.produce("raw", events...)
	values := func(recs []*kgo.Record) []string {
		var out []string
		for _, r := range recs {
			// record_id() names the broker's topic id, which each run's broker makes anew.
			out = append(out, recordID.ReplaceAllString(string(r.Value), `"id":"…"`))
		}
		return out
	}
	a, b = values(f.consume("seen-by-a", len(events))), values(f.consume("seen-by-b", len(events)))
	shared = testutil.ToFloat64(metrics.RecordsShared.WithLabelValues("a")) + testutil.ToFloat64(metrics.RecordsShared.WithLabelValues("b"))
	return a, b, shared
}

// Decode once changes nothing a stream sees: the streams reading what another stream of the
// process wrote get the same values, to the type, as when they decode the bytes, and one
// reader's changes do not reach the other.
func TestStreamsTakingRecordsDecodedSeeWhatDecodingGives(t *testing.T) {
	var events []string
	for i := range 300 {
		events = append(events, fmt.Sprintf(`{"host":"h%d","n":%d,"ts":"2026-12-07T10:%02d:%02d.123456789+01:00"}`, i%3, i*1000003, i/60, i%60))
	}
	decodedA, decodedB, none := runShared(t, true, events)
	sharedA, sharedB, taken := runShared(t, false, events)
	if none != 0 {
		t.Fatalf("%v records taken with decode once off", none)
	}
	if taken == 0 {
		t.Fatal("no record was taken decoded: decode once did not work")
	}
	t.Logf("%v of %d records taken decoded", taken, 2*len(events))
	if strings.Join(decodedA, "\n") != strings.Join(sharedA, "\n") {
		t.Errorf("stream a saw other values:\ndecoded %s\nshared  %s", decodedA[0], sharedA[0])
	}
	if strings.Join(decodedB, "\n") != strings.Join(sharedB, "\n") {
		t.Errorf("stream b saw other values:\ndecoded %s\nshared  %s", decodedB[0], sharedB[0])
	}
	if !strings.Contains(sharedA[0], `"types":"string,float,string"`) || !strings.Contains(sharedB[0], `"has_cmdb":false`) {
		t.Errorf("values: a %s, b %s", sharedA[0], sharedB[0])
	}
}
