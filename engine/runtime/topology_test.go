package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/engine/runtime"
	"github.com/eventops/eventops-engine/engine/runtime/runtimetest"
)

const topologyPipeline = `version: 1
broker: {embedded: {listen: 127.0.0.1:0, data_dir: %s}}
topics: {alerts: {partitions: 1, ingest: true}, incidents: {partitions: 1}, dead: {partitions: 1}}
dead_letter: dead
topology:
  web: [api]
  api: [db, cache]
streams:
  - name: correlate
    input: {topic: alerts}
    processors:
      - correlate: {}
    output: {topic: incidents, key: incident_id}
api:
  listen: "127.0.0.1:0"
  routes:
    - {path: /topology, topology: topology}
`

// The pipeline's topology: block is served as a graph at a route: every node with what it
// depends on and what depends on it, and the edges.
func TestTheTopologyIsServedAtARoute(t *testing.T) {
	cfg := loadEmbedded(t, topologyPipeline)
	running, stop := runtimetest.Start(t, cfg, components, runtime.RunOptions{})
	defer stop()
	resp, err := http.Get("http://" + running.API.Addr() + "/topology")
	must(t, err)
	defer resp.Body.Close()
	var got struct {
		Nodes []struct {
			Name       string
			DependsOn  []string `json:"depends_on"`
			Dependents []string
		}
		Edges []struct{ From, To, Source string }
	}
	must(t, json.NewDecoder(resp.Body).Decode(&got))
	if len(got.Nodes) != 4 || len(got.Edges) != 3 {
		t.Fatalf("%d nodes, %d edges, want 4 and 3: %+v", len(got.Nodes), len(got.Edges), got)
	}
	api := got.Nodes[0] // sorted: api, cache, db, web
	if api.Name != "api" || len(api.DependsOn) != 2 || api.DependsOn[0] != "cache" || len(api.Dependents) != 1 || api.Dependents[0] != "web" {
		t.Errorf("node api: %+v", api)
	}
	if e := got.Edges[0]; e.From != "api" || e.To != "cache" || e.Source != "declared" {
		t.Errorf("first edge %+v", e)
	}
}

const learnedPipeline = `version: 1
broker: {embedded: {listen: 127.0.0.1:0, data_dir: %s}}
topics:
  spans: {partitions: 1, ingest: true}
  edges: {partitions: 1, cleanup: compact}
  alerts: {partitions: 1, ingest: true}
  incidents: {partitions: 1}
  dead: {partitions: 1}
dead_letter: dead
lookups:
  calls: {topic: edges}
streams:
  - name: graph
    input: {topic: spans}
    processors:
      - service_graph: {}
    output: {topic: edges, key: edge}
  - name: correlate
    input: {topic: alerts}
    processors:
      - correlate: {topology: {learned: calls}, window: 2m}
    output: {topic: incidents, key: incident_id}
api:
  listen: "127.0.0.1:0"
  routes:
    - {path: /topology, learned: calls}
`

type learnedEdge struct {
	From, To, Source string
	LastSeen         string  `json:"last_seen"`
	Calls            float64 `json:"calls"`
}

func learnedEdges(t *testing.T, api string) []learnedEdge {
	t.Helper()
	resp, err := http.Get("http://" + api + "/topology")
	must(t, err)
	defer resp.Body.Close()
	var got struct{ Edges []learnedEdge }
	must(t, json.NewDecoder(resp.Body).Decode(&got))
	return got.Edges
}

// Edges learned from client spans (service_graph → a compacted topic → a lookup kept in
// it) are the graph correlate groups alerts over, and the route serves them with when each
// was last seen; after a restart the lookup is read back from the topic before the streams
// start.
func TestEdgesLearnedFromSpansGroupAlerts(t *testing.T) {
	cfg := loadEmbedded(t, learnedPipeline)
	running, stop := runtimetest.Start(t, cfg, components, runtime.RunOptions{})
	brokers := running.Broker.Addrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	must(t, err)
	defer cl.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	spanAt := func(from, to string, at time.Time) *kgo.Record {
		return &kgo.Record{Topic: "spans", Value: fmt.Appendf(nil, `{"signal":"span","service":%q,"kind":"client","peer":%q,"status":"ok","ts":%q}`, from, to, at.Format(time.RFC3339))}
	}
	must(t, cl.ProduceSync(ctx, spanAt("web", "api", t0), spanAt("api", "db", t0.Add(time.Second))).FirstErr())
	eventually(t, 20*time.Second, "two learned edges at /topology", func() bool { return len(learnedEdges(t, running.API.Addr())) == 2 })
	e := learnedEdges(t, running.API.Addr())[0]
	if e.From != "api" || e.To != "db" || e.Source != "learned" || e.LastSeen != t0.Add(time.Second).Format(time.RFC3339) || e.Calls != 1 {
		t.Errorf("first edge %+v, want api → db learned, last seen at its span, 1 call", e)
	}
	must(t, stop())

	// Restarted, the table is read back before the streams run: alerts on db and on web,
	// two hops apart through learned edges only, are one incident naming db.
	running, _ = runtimetest.Start(t, cfg, components, runtime.RunOptions{})
	if n := len(learnedEdges(t, running.API.Addr())); n != 2 {
		t.Fatalf("after a restart /topology has %d learned edges, want the 2 kept in the topic", n)
	}
	cl2, err := kgo.NewClient(kgo.SeedBrokers(running.Broker.Addrs()...), kgo.ConsumeTopics("incidents"), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	must(t, err)
	defer cl2.Close()
	alert := func(node string, at time.Time) *kgo.Record {
		return &kgo.Record{Topic: "alerts", Value: fmt.Appendf(nil, `{"fingerprint":"fp-%s","state":"firing","rule":"errors","severity":"critical","source_id":%q,"tenant_id":"acme","started_at":%q}`, node, node, at.Format(time.RFC3339))}
	}
	must(t, cl2.ProduceSync(ctx, alert("db", t0.Add(time.Minute)), alert("web", t0.Add(90*time.Second))).FirstErr())
	var last map[string]any
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for last == nil || last["size"] != 2.0 {
		fetches := cl2.PollFetches(fctx)
		if fctx.Err() != nil {
			t.Fatalf("no incident of 2 alerts; last %v", last)
		}
		fetches.EachRecord(func(r *kgo.Record) { must(t, json.Unmarshal(r.Value, &last)) })
	}
	if last["root_cause"] != "db" {
		t.Errorf("incident %v, want root cause db", last)
	}
}

const saslPipeline = `version: 1
broker:
  embedded: {listen: 127.0.0.1:0, data_dir: %s}
  sasl: {mechanism: SCRAM-SHA-256, username: engine, password: s3cret-pass}
topics: {in: {partitions: 1, ingest: true}, out: {partitions: 1}, dead: {partitions: 1}}
dead_letter: dead
streams:
  - name: double
    input: {topic: in}
    processors:
      - map: {n: n * 2}
    output: {topic: out}
`

// An embedded broker that requires SASL runs a whole pipeline (its consumer group,
// transactions, dead letters) with the engine's credentials, and refuses a client without
// them.
func TestAPipelineOnABrokerThatRequiresSASL(t *testing.T) {
	cfg := loadEmbedded(t, saslPipeline)
	running, _ := runtimetest.Start(t, cfg, components, runtime.RunOptions{})
	addrs := running.Broker.Addrs()
	anonymous, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RequestRetries(0))
	must(t, err)
	defer anonymous.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if anonymous.Ping(ctx) == nil {
		t.Fatal("a client without credentials reached the broker")
	}
	cl, err := kgo.NewClient(append(running.Broker.ClientOpts(), kgo.ConsumeTopics("out"), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	must(t, err)
	defer cl.Close()
	must(t, cl.ProduceSync(ctx, &kgo.Record{Topic: "in", Value: []byte(`{"n": 21}`)}).FirstErr())
	fetches := cl.PollFetches(ctx)
	if fetches.NumRecords() != 1 || !strings.Contains(string(fetches.Records()[0].Value), `"n":42`) {
		t.Fatalf("out: %v %v", fetches.Errors(), fetches.Records())
	}
}
