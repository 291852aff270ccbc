package enginetest

import (
	"net"
	"testing"
)

// FreeAddr is a 127.0.0.1 address whose port was free a moment ago, for a server a test
// starts that cannot be told to pick one itself (Prometheus, Alertmanager).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
