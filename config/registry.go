package config

// Registry tells the loader which component types exist and how to make their configs.
// The runtime fills it from processors/all, so config itself knows no component.
type Registry struct {
	// Processors maps a processor type ("map", "threshold", ...) to its spec.
	Processors map[string]ProcessorSpec
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
