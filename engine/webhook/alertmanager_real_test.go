package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/amalert"
	"github.com/eventops/eventops-engine/engine/enginetest"
)

// realAlertmanager runs Alertmanager (Debian's prometheus-alertmanager, 0.25) on a free
// loopback port, routing every alert, grouped by alertname, to receiverURL with resolved
// notifications on; it returns Alertmanager's address.
func realAlertmanager(t *testing.T, receiverURL string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		if bin, err = exec.LookPath("alertmanager"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("Alertmanager is not installed (CI installs Debian's prometheus-alertmanager: .ci/run)")
			}
			t.Skip("Alertmanager is not installed: apt-get install prometheus-alertmanager to run this test")
		}
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %s
        send_resolved: true
`, receiverURL)
	if err := os.WriteFile(filepath.Join(dir, "am.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := enginetest.FreeAddr(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "am.yml"), "--storage.path="+dir,
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := "http://" + addr
	eventually(t, "Alertmanager ready", func() bool {
		resp, err := http.Get(url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return url
}

// notifications is a webhook receiver that keeps every notification Alertmanager sends it.
type notifications struct {
	mu  sync.Mutex
	got []amMessage
}

func (n *notifications) handler(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var m amMessage
	if json.Unmarshal(body, &m) == nil {
		n.mu.Lock()
		n.got = append(n.got, m)
		n.mu.Unlock()
	}
}

// seen says whether an alert of rule on host has been notified with status.
func (n *notifications) seen(rule, host, status string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.got {
		for _, a := range m.Alerts {
			if a.Labels["alertname"] == rule && a.Labels["source_id"] == host && a.Status == status {
				return true
			}
		}
	}
	return false
}

func (n *notifications) anyOf(rule string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.got {
		for _, a := range m.Alerts {
			if a.Labels["alertname"] == rule {
				return true
			}
		}
	}
	return false
}

// The alertmanager output drives a real Alertmanager: alerts fire and resolve in the
// notifications Alertmanager sends its receiver, with the labels and annotations Prometheus
// would give them, and a silence made with amtool keeps a matching alert from being
// notified.
func TestAlertmanagerOutputDrivesARealAlertmanager(t *testing.T) {
	var rcv notifications
	hook := httptest.NewServer(http.HandlerFunc(rcv.handler))
	defer hook.Close()
	amURL := realAlertmanager(t, hook.URL)

	c := loadAlertmanagerConfig(t, fmt.Sprintf(`{urls: [%q], state_dir: %q, generator_url: 'http://engine.example/alerts?fingerprint={{fingerprint}}'}`, amURL, t.TempDir()))
	o, err := NewAlertmanager(c, engine.OutputEnv{BuildEnv: engine.BuildEnv{Stream: "sink.ops.alert.v1.alertmanager"}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	write := func(recs ...*engine.Record) {
		t.Helper()
		var rejects engine.Rejects
		if err := o.Write(context.Background(), recs, &rejects); err != nil || rejects.Len() > 0 {
			t.Fatalf("Write: %v %v", err, rejects.Items)
		}
	}
	alerts := thresholdAlerts(t) // a fires, b fires, c fires, a resolves
	write(alerts[:3]...)
	for _, host := range []string{"a", "b", "c"} {
		eventually(t, "host "+host+" firing in a notification", func() bool { return rcv.seen("cpu_load", host, amalert.StatusFiring) })
	}
	rcv.mu.Lock()
	first := rcv.got[0].Alerts[0]
	rcv.mu.Unlock()
	mustContain(t, "the notified alert's generatorURL", first.GeneratorURL, "http://engine.example/alerts?fingerprint=")
	if first.Labels["severity"] == "" || first.Annotations["summary"] == "" || first.Labels["env"] == "" {
		t.Errorf("notified alert lacks severity, env (the rule's label) or summary: %+v", first)
	}
	write(alerts[3])
	eventually(t, "host a resolved in a notification", func() bool { return rcv.seen("cpu_load", "a", amalert.StatusResolved) })

	// A silence made with amtool, then an alert it matches: Alertmanager holds it as
	// suppressed and notifies nothing of it; an alert it does not match is notified.
	out, err := exec.Command("amtool", "silence", "add", "alertname=disk_full", "--alertmanager.url="+amURL,
		"--comment=maintenance", "--author=test", "--duration=1h").CombinedOutput()
	if err != nil {
		t.Fatalf("amtool silence add: %v: %s", err, out)
	}
	silenceID := strings.TrimSpace(string(out))
	write(renamed(alerts[1], "disk_full", "fp-disk"))
	eventually(t, "disk_full held as suppressed by the silence", func() bool {
		st := alertStatus(t, amURL, "disk_full")
		return st.State == "suppressed" && len(st.SilencedBy) == 1 && st.SilencedBy[0] == silenceID
	})
	write(renamed(alerts[1], "mem_high", "fp-mem"))
	eventually(t, "mem_high notified", func() bool { return rcv.anyOf("mem_high") })
	if rcv.anyOf("disk_full") {
		t.Error("a silenced alert was notified")
	}
}

// renamed is a firing alert record of another rule (and fingerprint).
func renamed(rec *engine.Record, rule, fingerprint string) *engine.Record {
	v := maps.Clone(rec.Value)
	v["rule"], v["fingerprint"] = rule, fingerprint
	return &engine.Record{Value: v}
}

// amStatus is an alert's status in Alertmanager's GET /api/v2/alerts.
type amStatus struct {
	State      string   `json:"state"`
	SilencedBy []string `json:"silencedBy"`
}

func alertStatus(t *testing.T, amURL, rule string) amStatus {
	t.Helper()
	resp, err := http.Get(amURL + "/api/v2/alerts?filter=" + `alertname%3D%22` + rule + `%22`)
	if err != nil {
		return amStatus{}
	}
	defer resp.Body.Close()
	var alerts []struct {
		Status amStatus `json:"status"`
	}
	if json.NewDecoder(resp.Body).Decode(&alerts) != nil || len(alerts) == 0 {
		return amStatus{}
	}
	return alerts[0].Status
}

func loadAlertmanagerConfig(t *testing.T, settings string) *AlertmanagerConfig {
	t.Helper()
	yaml := strings.Replace(testPipeline, "webhook: SETTINGS", "alertmanager: "+settings, 1)
	p, err := config.LoadBytes("test.yaml", []byte(yaml), testComponents.Registry(), nil)
	if err != nil {
		t.Fatalf("loading the alertmanager settings %s: %v", settings, err)
	}
	return p.Sinks[0].Plugin.Config.(*AlertmanagerConfig)
}

// apiPosts is a stand-in Alertmanager API that keeps the alerts POSTed to /api/v2/alerts.
type apiPosts struct {
	mu    sync.Mutex
	posts [][]postableAlert
}

func (a *apiPosts) handler(w http.ResponseWriter, r *http.Request) {
	var alerts []postableAlert
	if r.URL.Path != "/api/v2/alerts" || json.NewDecoder(r.Body).Decode(&alerts) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.posts = append(a.posts, alerts)
	a.mu.Unlock()
}

// last is the newest post, nil if none.
func (a *apiPosts) last() []postableAlert {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.posts) == 0 {
		return nil
	}
	return a.posts[len(a.posts)-1]
}

// Firing alerts are sent again every resend_interval with endsAt four intervals ahead, as
// Prometheus does, so that Alertmanager keeps them firing; after a restart the output sends
// the alerts still firing at once, from its state_dir, and never the resolved ones.
func TestFiringAlertsAreSentAgainAndSurviveARestart(t *testing.T) {
	var api apiPosts
	srv := httptest.NewServer(http.HandlerFunc(api.handler))
	defer srv.Close()
	settings := fmt.Sprintf(`{urls: [%q], state_dir: %q, resend_interval: 1h}`, srv.URL, t.TempDir())
	open := func() *AlertmanagerOutput {
		o, err := NewAlertmanager(loadAlertmanagerConfig(t, settings), engine.OutputEnv{BuildEnv: engine.BuildEnv{Stream: "sink.ops.alert.v1.alertmanager"}})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	o := open()
	alerts := thresholdAlerts(t) // a fires, b fires, c fires, a resolves
	var rejects engine.Rejects
	if err := o.Write(context.Background(), alerts, &rejects); err != nil || rejects.Len() > 0 {
		t.Fatalf("Write: %v %v", err, rejects.Items)
	}
	before := time.Now()
	o.Close()

	o = open() // the restart
	defer o.Close()
	eventually(t, "the still firing alerts sent at once after the restart", func() bool { return len(api.last()) == 2 })
	hosts := map[string]bool{}
	for _, a := range api.last() {
		hosts[a.Labels["source_id"]] = true
		if ahead := a.EndsAt.Sub(before); ahead < 3*time.Hour || ahead > 5*time.Hour {
			t.Errorf("a firing alert sent again ends %s after the send, want four resend intervals (4h)", ahead)
		}
	}
	if !hosts["b"] || !hosts["c"] {
		t.Errorf("sent again after the restart: %v, want b and c (a resolved)", hosts)
	}
}
