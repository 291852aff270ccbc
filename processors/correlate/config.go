package correlate

import (
	"errors"
	"time"

	"github.com/eventops/eventops-engine/config"
)

// Config is the correlate processor's configuration.
type Config struct {
	Node     *config.Expr    `yaml:"node" doc:"Expression giving the node (service, host) an alert is about, as the topology names it; default source_id (what the threshold and anomaly processors copy from source.source_id)."`
	Topology Topology        `yaml:"topology" doc:"The dependency graph the alerts are grouped over; default the pipeline's topology: block."`
	Window   config.Duration `yaml:"window" default:"5m" doc:"How far apart (in event time) the starts of two alerts may be for them to join one incident."`
	MaxHops  int             `yaml:"max_hops" default:"3" doc:"How many dependency edges may lie between the nodes of two alerts that join: one must depend on the other within this many edges."`
}

// Topology is where the dependency graph comes from.
type Topology struct {
	Lookup    string              `yaml:"lookup" ref:"lookups" doc:"Lookup table (from lookups:) whose rows are nodes, keyed by node name, with a column listing what each depends on (the CMDB)."`
	DependsOn string              `yaml:"depends_on" default:"depends_on" doc:"The lookup's column of dependencies: node names separated by spaces, commas or semicolons, or a JSON list."`
	Edges     map[string][]string `yaml:"edges" doc:"Dependencies written here, node to what it depends on, e.g. {web: [api], api: [db, cache]}; added to the lookup's."`
	Learned   string              `yaml:"learned" ref:"lookups" doc:"Lookup table of edges learned from spans: one kept in the topic a service_graph processor writes (lookups: {calls: {topic: ops.edges.v1}}), rows {from, to, last_seen, ...}; added to the declared edges."`
	MaxAge    config.Duration     `yaml:"max_age" default:"1h" doc:"A learned edge not seen in spans for this long before the newest learned edge was is left out: the call stopped. 0 keeps every edge."`
}

// Validate checks the settings.
func (c *Config) Validate() error {
	var errs []error
	if c.Window.D() <= 0 {
		errs = append(errs, config.FieldErrorf("window", "must be more than 0"))
	}
	if c.Topology.MaxAge.D() < 0 {
		errs = append(errs, config.FieldErrorf("topology.max_age", "must not be negative"))
	}
	if c.MaxHops < 1 {
		errs = append(errs, config.FieldErrorf("max_hops", "must be at least 1"))
	}
	return errors.Join(errs...)
}

func (c *Config) settings() Settings {
	return Settings{Window: time.Duration(c.Window), MaxHops: c.MaxHops}
}
