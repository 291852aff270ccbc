// Package atomicfile replaces files so that a kill at any moment leaves the old content or
// the new one, never a mix: the engine's append-only logs (the embedded broker's offsets log,
// the webhook's delivery log) are rewritten this way when they have grown.
package atomicfile

import (
	"fmt"
	"os"
)

// Replace writes data to path through a temporary file renamed over it, and returns path
// opened for appending.
func Replace(path string, data []byte) (*os.File, error) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return nil, fmt.Errorf("rewriting %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("rewriting %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return f, nil
}
