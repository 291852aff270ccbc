package telemetry

import (
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/eventops/eventops-engine/engine/netguard"
)

// failingOnce fails its first Accept as a process out of file descriptors does.
type failingOnce struct {
	net.Listener
	failed bool
}

func (f *failingOnce) Accept() (net.Conn, error) {
	if !f.failed {
		f.failed = true
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	server, client := net.Pipe()
	client.Close()
	return server, nil
}

func (f *failingOnce) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// A failed accept of a guarded listener shows in /-/metrics, labelled with the listener.
func TestAcceptErrorsAreExported(t *testing.T) {
	ln := netguard.Wrap(&failingOnce{}, netguard.Options{Name: "telemetry-test"})
	m := New()
	before := acceptErrorCount(t, m, "telemetry-test")
	conn, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	conn.Close()
	if got := acceptErrorCount(t, m, "telemetry-test") - before; got != 1 {
		t.Fatalf("eventops_accept_errors_total{listener=\"telemetry-test\"} grew by %v, want 1", got)
	}
}

func acceptErrorCount(t *testing.T, m *Metrics, listener string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "eventops_accept_errors_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "listener" && l.GetValue() == listener {
					return s.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
