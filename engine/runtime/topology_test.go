package runtime_test

import (
	"encoding/json"
	"net/http"
	"testing"

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
