package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/eventops/eventops-engine/engine/broker"
	"github.com/eventops/eventops-engine/engine/enginetest"
	"github.com/eventops/eventops-engine/engine/protofile"
	"github.com/eventops/eventops-engine/engine/registry"
	"github.com/eventops/eventops-engine/engine/runtime"
	"github.com/eventops/eventops-engine/engine/runtime/runtimetest"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

const confluentPipeline = `version: 1
broker: {embedded: {listen: 127.0.0.1:0, data_dir: %s}}
topics:
  raw: {partitions: 1, ingest: true}
  out: {partitions: 1}
  dead: {partitions: 1}
dead_letter: dead
schema_registry:
  listen: 127.0.0.1:0
  subjects:
    out-value: {file: ../../../schemas/envelope.v1.avsc}
streams:
  - name: normalize
    input: {topic: raw, format: confluent}
    processors:
      - map:
          event_id: record_id()
          ts_event: ts
          ts_ingest: ts
          tenant_id: '"acme"'
          source: {type: '"host"', source_id: host}
          schema_name: '"monitoring.envelope.v1"'
          schema_version: "1"
          metric: metric
          value: value
          tags: '{"env": env}'
    output: {topic: out, format: confluent}
`

const readingSchema = `{"type": "record", "name": "Reading", "namespace": "agent", "fields": [
  {"name": "host", "type": "string"}, {"name": "metric", "type": "string"},
  {"name": "value", "type": "double"}, {"name": "ts", "type": "string"}, {"name": "env", "type": "string"}]}`

type reading struct {
	Host   string  `avro:"host"`
	Metric string  `avro:"metric"`
	Value  float64 `avro:"value"`
	TS     string  `avro:"ts"`
	Env    string  `avro:"env"`
}

type envelope struct {
	EventID  string `avro:"event_id"`
	TenantID string `avro:"tenant_id"`
	Source   struct {
		Type     string `avro:"type"`
		SourceID string `avro:"source_id"`
	} `avro:"source"`
	Metric *string           `avro:"metric"`
	Value  *float64          `avro:"value"`
	Tags   map[string]string `avro:"tags"`
}

// With the engine's own registry: a producer using franz-go's serde registers its Avro
// schema and produces Avro in the Confluent wire format; the stream reads it, maps it, and
// writes the seed's envelope (schemas/envelope.v1.avsc, registered at start) as Avro that a
// Confluent deserializer reads back. A value not in the wire format is dead-lettered, saying so.
func TestAvroInAvroOutThroughTheEnginesRegistry(t *testing.T) {
	cfg := loadEmbedded(t, strings.Replace(confluentPipeline, "../../../schemas", repoSchemas(t), 1))
	running, stop := runtimetest.Start(t, cfg, components, runtime.RunOptions{})
	defer stop()
	cl, err := sr.NewClient(sr.URLs("http://" + running.RegistryAddr()))
	must(t, err)
	ctx := context.Background()
	registered, err := cl.CreateSchema(ctx, "raw-value", sr.Schema{Schema: readingSchema})
	must(t, err)
	var in sr.Serde
	in.Register(registered.ID, reading{}, sr.EncodeFn(func(v any) ([]byte, error) { return avro.Marshal(avro.MustParse(readingSchema), v) }))
	value, err := in.Encode(reading{Host: "web-1", Metric: "cpu_load", Value: 91.5, TS: "2026-12-07T09:00:00Z", Env: "prod"})
	must(t, err)
	f := &flow{t: t, brokers: running.Broker.Addrs()}
	f.produce("raw", string(value), `{"host": "plain JSON"}`)

	out := f.consume("out", 1)[0]
	latest, err := cl.SchemaByVersion(ctx, "out-value", -1)
	must(t, err)
	envSchema := avro.MustParse(latest.Schema.Schema)
	var outSerde sr.Serde
	outSerde.Register(latest.ID, envelope{}, sr.DecodeFn(func(b []byte, v any) error { return avro.Unmarshal(envSchema, b, v) }))
	var got envelope
	if err := outSerde.Decode(out.Value, &got); err != nil {
		t.Fatalf("the output is not Avro of out-value's schema %d: %v (%q)", latest.ID, err, out.Value)
	}
	if got.Source.SourceID != "web-1" || got.Metric == nil || *got.Metric != "cpu_load" || got.Value == nil || *got.Value != 91.5 || got.Tags["env"] != "prod" || got.EventID == "" {
		t.Errorf("the envelope read back: %+v", got)
	}
	dead := f.consume("dead", 1)[0]
	if reason := header(dead, broker.HeaderReason); !strings.Contains(reason, "not in the Confluent wire format") {
		t.Errorf("plain JSON on a format: confluent input: dead letter with reason %q", reason)
	}
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// repoSchemas is the repository's schemas directory, absolute (test pipelines live in temp dirs).
func repoSchemas(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../schemas")
	must(t, err)
	return dir
}

// A client from another ecosystem: kafkajs with @kafkajs/confluent-schema-registry registers
// an Avro schema with the engine's registry and produces Avro to its broker; the stream
// writes the seed's envelope as Avro, which the same client reads back with the registry.
func TestKafkaJSAvroThroughTheEngine(t *testing.T) {
	dir := kafkajsDir(t)
	cfg := loadEmbedded(t, strings.Replace(confluentPipeline, "../../../schemas", repoSchemas(t), 1))
	running, stop := runtimetest.Start(t, cfg, components, runtime.RunOptions{})
	defer stop()
	got := runKafkaJS(t, dir, "avro.js", running)
	if want := "web-0 cpu_load 90,web-1 cpu_load 91,web-2 cpu_load 92"; strings.Join(got, ",") != want {
		t.Errorf("kafkajs read back %q, want %q", got, want)
	}
}

// kafkajsDir is where the kafkajs checks are, with their npm packages installed: the test
// skips without them (fails under CI=true, where .ci/run installs them).
func kafkajsDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("testdata/kafkajs")
	must(t, err)
	_, err = exec.LookPath("node")
	if _, statErr := os.Stat(filepath.Join(dir, "node_modules", "kafkajs")); err != nil || statErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node or the npm packages are missing (.ci/run runs npm ci in engine/runtime/testdata/kafkajs)")
		}
		t.Skip("node or the npm packages are missing: run npm ci in engine/runtime/testdata/kafkajs to run this test")
	}
	return dir
}

// runKafkaJS runs script against the running engine (raw in, out read back, 3 records) and
// returns what it read, as "source_id metric value", sorted.
func runKafkaJS(t *testing.T, dir, script string, running *runtime.Running) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script, running.Broker.Addrs()[0], "http://"+running.RegistryAddr(), "raw", "out", "3")
	cmd.Dir = dir
	return parseKafkaJS(t, cmd, running)
}

// parseKafkaJS runs a kafkajs check and returns the values it printed, as "source_id metric
// value", sorted.
func parseKafkaJS(t *testing.T, cmd *exec.Cmd, running *runtime.Running) []string {
	t.Helper()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kafkajs %s: %v\n%s%s\ndead letters: %v", cmd.Args[1], err, out, stderr.String(), deadLetterReasons(t, running.Broker.Addrs()))
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var v struct {
			Source struct {
				SourceID string `json:"source_id"`
				Camel    string `json:"sourceId"` // protobuf.js names fields in camelCase
			} `json:"source"`
			Metric string
			Value  float64
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("kafkajs printed %q: %v", line, err)
		}
		got = append(got, fmt.Sprintf("%s %s %g", v.Source.SourceID+v.Source.Camel, v.Metric, v.Value))
	}
	slices.Sort(got)
	return got
}

// Protobuf both ways: franz-go's serde produces Protobuf in the wire format (its message
// indexes and all); the stream reads it and writes the envelope as Protobuf
// (testdata/envelope.proto, registered at start), which kafkajs with
// @kafkajs/confluent-schema-registry reads back.
func TestProtobufInProtobufOutReadByKafkaJS(t *testing.T) {
	dir := kafkajsDir(t)
	envelopeProto, err := filepath.Abs("testdata/envelope.proto")
	must(t, err)
	pipeline := strings.Replace(confluentPipeline, "out-value: {file: ../../../schemas/envelope.v1.avsc}", "out-value: {file: "+envelopeProto+"}", 1)
	cfg := loadEmbedded(t, pipeline)
	running, stop := runtimetest.Start(t, cfg, components, runtime.RunOptions{})
	defer stop()

	const readingProto = "syntax = \"proto3\";\npackage agent;\nmessage Reading { string host = 1; string metric = 2; double value = 3; string ts = 4; string env = 5; }\n"
	cl, err := sr.NewClient(sr.URLs("http://" + running.RegistryAddr()))
	must(t, err)
	registered, err := cl.CreateSchema(context.Background(), "raw-value", sr.Schema{Schema: readingProto, Type: sr.TypeProtobuf})
	must(t, err)
	fd, err := protofile.Compile(readingProto)
	must(t, err)
	md := fd.Messages().Get(0)
	var serde sr.Serde
	serde.Register(registered.ID, &dynamicpb.Message{}, sr.Index(0), sr.EncodeFn(func(v any) ([]byte, error) { return proto.Marshal(v.(*dynamicpb.Message)) }))
	f := &flow{t: t, brokers: running.Broker.Addrs()}
	for i := range 3 {
		m := dynamicpb.NewMessage(md)
		for name, v := range map[string]protoreflect.Value{
			"host": protoreflect.ValueOfString(fmt.Sprintf("web-%d", i)), "metric": protoreflect.ValueOfString("cpu_load"),
			"value": protoreflect.ValueOfFloat64(float64(90 + i)), "ts": protoreflect.ValueOfString("2026-12-07T09:00:00Z"), "env": protoreflect.ValueOfString("prod"),
		} {
			m.Set(md.Fields().ByName(protoreflect.Name(name)), v)
		}
		value, err := serde.Encode(m)
		must(t, err)
		f.produce("raw", string(value))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "protobuf.js", running.Broker.Addrs()[0], "http://"+running.RegistryAddr(), "out", "3")
	cmd.Dir = dir
	got := parseKafkaJS(t, cmd, running)
	if want := "web-0 cpu_load 90,web-1 cpu_load 91,web-2 cpu_load 92"; strings.Join(got, ",") != want {
		t.Errorf("kafkajs read back %q, want %q", got, want)
	}
}

// A registry out of reach holds the stream back; it does not cost records: an Avro record
// produced while the registry is down is read once the registry is back, and nothing goes
// to the dead-letter topic.
func TestARegistryOutOfReachDelaysRecordsAndLosesNone(t *testing.T) {
	store, err := registry.Open(filepath.Join(t.TempDir(), "registry.json"))
	must(t, err)
	addr := enginetest.FreeAddr(t)
	serve := func() *registry.Server {
		srv := registry.NewServer(store, slog.New(slog.DiscardHandler))
		must(t, srv.Start(addr))
		return srv
	}
	srv := serve()
	cl, err := sr.NewClient(sr.URLs("http://" + addr))
	must(t, err)
	ctx := context.Background()
	registered, err := cl.CreateSchema(ctx, "raw-value", sr.Schema{Schema: readingSchema})
	must(t, err)
	_, err = cl.CreateSchema(ctx, "out-value", sr.Schema{Schema: mustRead(t, filepath.Join(repoSchemas(t), "envelope.v1.avsc"))})
	must(t, err)
	pipeline := strings.Replace(confluentPipeline, "schema_registry:\n  listen: 127.0.0.1:0\n  subjects:\n    out-value: {file: ../../../schemas/envelope.v1.avsc}\n", "schema_registry: {url: \"http://"+addr+"\"}\n", 1)
	cfg := loadEmbedded(t, pipeline)
	metrics := telemetry.New()
	running, stop := runtimetest.Start(t, cfg, components, runtime.RunOptions{Metrics: metrics})
	defer stop()
	must(t, srv.Shutdown(ctx)) // the stream has fetched no schema of raw yet

	var in sr.Serde
	in.Register(registered.ID, reading{}, sr.EncodeFn(func(v any) ([]byte, error) { return avro.Marshal(avro.MustParse(readingSchema), v) }))
	value, err := in.Encode(reading{Host: "web-9", Metric: "cpu_load", Value: 50, TS: "2026-12-07T09:00:00Z", Env: "dev"})
	must(t, err)
	f := &flow{t: t, brokers: running.Broker.Addrs()}
	f.produce("raw", string(value))
	// The stream says why it is held back (eventops_stream_condition, /-/ready).
	waitFor(t.Context(), func() bool {
		return testutil.ToFloat64(metrics.StreamCondition.WithLabelValues("normalize", "schema_registry")) == 1
	})
	srv = serve()
	defer func() { _ = srv.Shutdown(ctx) }()
	if out := f.consume("out", 1); len(out) != 1 || out[0].Value[0] != 0 {
		t.Fatalf("out: %v", out)
	}
	f.produce("raw", string(value)) // a marker behind the first, so the dead-letter check below is not early
	f.consume("out", 2)
	if n := endOffset(t, running.Broker.Addrs(), "dead"); n != 0 {
		t.Errorf("%d dead letters: a record was refused while the registry was out of reach", n)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return string(b)
}

func endOffset(t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	ends, err := kadm.NewClient(mustClient(t, brokers)).ListEndOffsets(context.Background(), topic)
	must(t, err)
	end, _ := ends.Lookup(topic, 0)
	return end.Offset
}

// deadLetterReasons is the reason of the first record of the dead-letter topic "dead", for a
// failure message.
func deadLetterReasons(t *testing.T, brokers []string) string {
	t.Helper()
	if endOffset(t, brokers, "dead") == 0 {
		return "none"
	}
	return header((&flow{t: t, brokers: brokers}).consume("dead", 1)[0], broker.HeaderReason)
}
