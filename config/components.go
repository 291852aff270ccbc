package config

import "reflect"

// Component is a documented part of a stream, for its page in docs/components. Processors
// and registered outputs are documented by their own packages through the Registry; the
// core components (CoreComponents) are the engine's own, declared here next to the config
// structs they describe.
type Component struct {
	// Kind is "input" or "output"; the page is docs/components/<kind>-<name>.md.
	Kind string
	Name string
	// Doc is a one-paragraph description.
	Doc string
	// Example is YAML as written inside one item of streams:, e.g. "input: {...}".
	Example string
	// Config is the struct whose tagged fields are the component's settings.
	Config reflect.Type
	// Settings, when set, are the only keys of Config that belong to this component: the
	// topic output's settings share the Output struct with the registered outputs' keys.
	Settings []string
	// Paths are where the settings are written in a pipeline file, e.g. "streams[].input".
	Paths []string
}

// CoreComponents lists the engine's own input and output, in documentation order: the
// topics a stream reads and writes in its Kafka transaction. Other outputs are registered.
var CoreComponents = []Component{
	{
		Kind:  "input",
		Name:  "topic",
		Paths: []string{"streams[].input"},
		Doc: "Reads a topic through a consumer group (eventops.<stream name> by default) in batches of " +
			"up to batch_size records. Each record's value is decoded as a JSON object and, when schema " +
			"is set, validated against that JSON Schema; records that fail either go to the dead-letter " +
			"topic with the reason. A batch's offsets are committed only after its output and its dead " +
			"letters are written, so nothing is lost when the engine stops or crashes.\n\n" +
			"Instead of topic, file: {path: FILE} or stdin: {} read newline-delimited JSON, one record " +
			"per line, decoded and validated the same way: for replays, debugging and measuring " +
			"(`eventops-engine -c replay.yaml < events.ndjson`). Such a stream reads its input once " +
			"and ends with it, and a pipeline whose streams have all ended stops; it keeps no position " +
			"(a restart reads the input again) and so has no checkpoint transaction: its processors' " +
			"state lives in memory, and what it writes to a topic is written at least once. A " +
			"record's source is file:PATH (or stdin), partition 0, offset its line number less one, " +
			"so record_id() names each line the same way on every read.\n\n" +
			"With http: {listen: ADDR, path: /PATH} next to topic, the engine also receives records " +
			"over HTTP and stores them in that topic before it answers 200 (429 with Retry-After when " +
			"the broker does not take them in time; 400 or 413 naming the record and its line and " +
			"column when the body is not records), and the stream reads them from the topic with the " +
			"rest: see docs/ingest.md.",
		Example: `input:
  topic: ingest.raw.agent
  schema: raw-agent
  dead_letter: ops.deadletter.v1
  start: earliest
  batch_size: 10000
`,
		Config: reflect.TypeFor[Input](),
	},
	{
		Kind:  "output",
		Name:  "topic",
		Paths: []string{"streams[].output"},
		Doc: "Writes each record as JSON to a topic and waits for every write to be acknowledged " +
			"before the batch's input offsets are committed. The key expression sets the record key " +
			"(otherwise the input record's key is kept), headers add computed headers, and schema " +
			"checks every record before it is written (failures go to the dead-letter topic).",
		Example: `output:
  topic: signals.metric.v1
  key: tenant_id
  headers: {x-tenant: tenant_id}
  schema: envelope
`,
		Config:   reflect.TypeFor[Output](),
		Settings: []string{"topic", "key", "headers", "schema"},
	},
}
