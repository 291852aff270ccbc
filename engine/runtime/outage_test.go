package runtime_test

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine/postgres/pgtest"
)

// pgProxy forwards TCP connections to PostgreSQL until it is taken down: then it drops
// every connection and refuses new ones, as a database that went away does.
type pgProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func startProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.setDown(true) })
	go p.serve()
	return p
}

func (p *pgProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { io.Copy(up, c); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	}
}

func (p *pgProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// dsnThrough rewrites dsn to connect through the proxy.
func (p *pgProxy) dsnThrough(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

// During a database outage the metrics sink cannot write: /-/ready answers 503 and says
// which stream and why, and nothing read meanwhile is lost: once the database is back,
// every event is stored and /-/ready answers 200 again.
func TestReadyTellsTheTruthDuringADatabaseOutage(t *testing.T) {
	dsn := pgtest.DSN(t)
	u, _ := url.Parse(dsn)
	proxy := startProxy(t, u.Host)
	f := startFlow(t, t.TempDir(), proxy.dsnThrough(t, dsn))
	f.dsn = dsn // the test itself counts rows directly
	ready := func() (int, string) {
		r, err := http.Get(f.apiURL + "/-/ready")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		body, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(body)
	}
	eventually(t, 20*time.Second, "ready before the outage", func() bool { code, _ := ready(); return code == 200 })

	proxy.setDown(true)
	event := `{"tenant_id":"acme","host":"host-b","metric":"cpu_load","value":10,"ts_event":"2025-10-16T09:00:00Z"}`
	f.produce("ingest.raw.agent", event, event, event)
	var body string
	eventually(t, 30*time.Second, "/-/ready answers 503 during the outage", func() bool {
		code, b := ready()
		body = b
		return code == 503
	})
	if !strings.Contains(body, "sink.signals.metric.v1.metrics") || !strings.Contains(body, "output") {
		t.Errorf("/-/ready during the outage says %q: want the sink's stream and its failing output", body)
	}

	proxy.setDown(false)
	eventually(t, 30*time.Second, "every event stored after the outage", func() bool { return f.count("metrics") == 3 })
	eventually(t, 30*time.Second, "ready again after the outage", func() bool { code, _ := ready(); return code == 200 })
}
