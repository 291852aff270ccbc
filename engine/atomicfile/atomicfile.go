// Package atomicfile replaces files so that a kill at any moment leaves the old content or
// the new one, never a mix: the engine's append-only logs (the embedded broker's offsets log,
// the webhook's delivery log) are rewritten this way when they have grown, and so are
// small state files (the alertmanager output's firing alerts).
package atomicfile

import (
	"fmt"
	"os"
)

// Write writes data to path through a temporary file renamed over it.
func Write(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("rewriting %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rewriting %s: %w", path, err)
	}
	return nil
}

// Replace writes data to path as Write does, and returns path opened for appending.
func Replace(path string, data []byte) (*os.File, error) {
	if err := Write(path, data); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return f, nil
}
