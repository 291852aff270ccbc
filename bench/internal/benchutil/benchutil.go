// Package benchutil holds what the benchmark commands under bench/ share: finding the
// checkout they run from, and a free local port for the servers they start.
package benchutil

import (
	"errors"
	"net"
	"os"
	"path/filepath"
)

// RepoRoot is the directory of the eventops-engine checkout the command runs in (the
// nearest one above the working directory holding go.mod).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the eventops-engine checkout")
		}
		dir = parent
	}
}

// FreeAddr is a 127.0.0.1 address whose port was free a moment ago.
func FreeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
