package config

// Registry tells the loader which component types exist and how to make their configs.
// The runtime fills it from processors/all, so config itself knows no component.
type Registry struct {
	// Processors maps a processor type ("map", "threshold", ...) to a function returning a
	// pointer to a fresh, zero-valued Config struct for that type.
	Processors map[string]func() any
}
