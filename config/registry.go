package config

// Registry tells the loader which component types exist and how to make their configs.
// The runtime fills it from the explicit lists (processors/all, outputs/all), so config
// itself knows no component.
type Registry struct {
	// Processors maps a processor type ("map", "threshold", ...) to its spec.
	Processors map[string]ProcessorSpec
	// Outputs maps an output type other than the built-in topic output ("postgres",
	// "parquet", ...) to its spec: the type is the key it is written under in a stream's
	// output: and in an item of sinks:.
	Outputs map[string]OutputSpec
}

// ProcessorSpec is what the loader, the JSON Schema and the generated docs know of a
// processor type. It is declared once, by the processor's package (its Factory).
type ProcessorSpec struct {
	// NewConfig returns a pointer to a fresh, zero-valued Config struct for the type; its
	// fields' tags (yaml, doc, default, required, enum, ref) are the spec of its settings.
	NewConfig func() any
	// Doc is a one-paragraph description.
	Doc string
	// Example is a YAML snippet: one item of a stream's processors list using this type.
	Example string
}

// OutputSpec is what the loader, the JSON Schema and the generated docs know of an output
// type. It is declared once, by the output's package (its Factory).
type OutputSpec struct {
	// NewConfig returns a pointer to a fresh, zero-valued Config struct for the type, as
	// for a processor.
	NewConfig func() any
	// Doc is a one-paragraph description.
	Doc string
	// Example is YAML as written inside one item of streams:, e.g. "output: {postgres: ...}".
	Example string
	// InSinks says the type may also be written in an item of sinks:, which copies a topic
	// into it.
	InSinks bool
}

// TableWriter is implemented by output configs whose records become rows of a table that
// the API's routes can query. Lint checks routes with it: a route's table must be written,
// and by one kind of store, or the route could read either.
type TableWriter interface {
	// TableName is the table written; "" when it did not decode.
	TableName() string
	// StoreKind names where the rows go, as messages say it: "PostgreSQL", "Parquet files".
	StoreKind() string
}

// Claimer is implemented by output configs that hold something no other output of the
// pipeline may hold, such as a directory with its write-ahead log. Lint refuses a second
// claim, and a reload cannot change or remove such an output (the running one holds it
// until it stops, so its replacement could not open it).
type Claimer interface {
	Claims() []Claim
}

// Claim is one thing an output holds alone.
type Claim struct {
	// Field is the setting that names it, relative to the output's config, e.g. "dir".
	Field string
	// Key identifies it: two claims with equal keys conflict.
	Key string
	// Taken is the message for a second claim, which goes on with " by <first claimant>;
	// <Hint>": `directory "data/parquet" is already used`.
	Taken string
	// Hint says how to resolve the conflict.
	Hint string
}
