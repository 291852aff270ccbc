package config

import "os"

// Load reads, interpolates, decodes and validates the pipeline file at path. On failure the
// returned error is Errors: every problem found, sorted by position.
func Load(path string, reg Registry) (*Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return LoadBytes(path, data, reg, os.LookupEnv)
}

// LoadBytes is Load on data already read; lookupEnv resolves ${VAR} references.
func LoadBytes(file string, data []byte, reg Registry, lookupEnv func(string) (string, bool)) (*Pipeline, error) {
	panic("TODO: implemented by the config decoder")
}
