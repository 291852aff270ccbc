package webhook

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine"
)

// One Alertmanager of two hangs: the stream's writes are done as soon as the other accepted
// them, and the hung one gets every batch afterwards, in the order they were written (a
// resolution after its firing). Before, each write waited for both, up to max_elapsed.
func TestAHungAlertmanagerHoldsBackNeitherTheStreamNorTheOther(t *testing.T) {
	var up, hung apiPosts
	upSrv := httptest.NewServer(http.HandlerFunc(up.handler))
	defer upSrv.Close()
	release := make(chan struct{})
	hungSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		hung.handler(w, r)
	}))
	defer hungSrv.Close()
	releaseHung := sync.OnceFunc(func() { close(release) })
	defer releaseHung() // before the server's Close, which waits for its handlers
	settings := fmt.Sprintf(`{urls: [%q, %q], state_dir: %q, resend_interval: 1h}`, upSrv.URL, hungSrv.URL, t.TempDir())
	o, err := NewAlertmanager(loadAlertmanagerConfig(t, settings), engine.OutputEnv{BuildEnv: engine.BuildEnv{Stream: "sink.ops.alert.v1.alertmanager"}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	alerts := thresholdAlerts(t) // a fires, b fires, c fires, a resolves
	// Bounded, so that a write waiting for the hung Alertmanager fails the test instead of
	// hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, batch := range [][]*engine.Record{alerts[:3], alerts[3:]} {
		var rejects engine.Rejects
		if err := o.Write(ctx, batch, &rejects); err != nil || rejects.Len() > 0 {
			t.Fatalf("Write with one Alertmanager hung: %v %v", err, rejects.Items)
		}
	}
	if !aResolvedLast(up.all()) {
		t.Fatalf("the Alertmanager that answers got %v, want a's resolution after its firing", up.all())
	}
	if err := o.Problem(); err != nil {
		t.Errorf("Problem() while one Alertmanager still takes the alerts: %v", err)
	}
	releaseHung()
	eventually(t, "the hung Alertmanager gets a's firing and then its resolution once it answers", func() bool { return aResolvedLast(hung.all()) })
}

// aResolvedLast reports whether posts hold alert a firing and, after every post of it
// firing, its resolution (a firing alert ends hours ahead, a resolved one in the past; the
// output's resends may come in between).
func aResolvedLast(posts [][]postableAlert) bool {
	fired, resolvedLast := false, false
	for _, post := range posts {
		for _, a := range post {
			if a.Labels["source_id"] != "a" {
				continue
			}
			firing := a.EndsAt.After(time.Now())
			fired = fired || firing
			resolvedLast = !firing
		}
	}
	return fired && resolvedLast
}

// A record every Alertmanager refuses goes to rejects once; one that any accepted does not.
func TestARecordEveryAlertmanagerRefusesIsRejectedOnce(t *testing.T) {
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) }))
	defer refuse.Close()
	var up apiPosts
	upSrv := httptest.NewServer(http.HandlerFunc(up.handler))
	defer upSrv.Close()
	for _, tc := range []struct {
		name    string
		urls    [2]string
		rejects int
	}{
		{"both refuse", [2]string{refuse.URL, refuse.URL}, 3},
		{"one accepts", [2]string{refuse.URL, upSrv.URL}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			settings := fmt.Sprintf(`{urls: [%q, %q], state_dir: %q, resend_interval: 1h}`, tc.urls[0], tc.urls[1], t.TempDir())
			o, err := NewAlertmanager(loadAlertmanagerConfig(t, settings), engine.OutputEnv{BuildEnv: engine.BuildEnv{Stream: "sink.ops.alert.v1.alertmanager"}})
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			var rejects engine.Rejects
			if err := o.Write(context.Background(), thresholdAlerts(t)[:3], &rejects); err != nil {
				t.Fatal(err)
			}
			if rejects.Len() != tc.rejects {
				t.Errorf("%d rejects, want %d: %v", rejects.Len(), tc.rejects, rejects.Items)
			}
		})
	}
}

// all is every post so far.
func (a *apiPosts) all() [][]postableAlert {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([][]postableAlert(nil), a.posts...)
}
