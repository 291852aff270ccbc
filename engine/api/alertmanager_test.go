package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
)

// fakeDispatcher keeps silences as a notify processor does, without alerts.
type fakeDispatcher struct {
	mu       sync.Mutex
	silences map[string]engine.Silence
}

func (f *fakeDispatcher) Silences() []engine.Silence {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []engine.Silence
	for _, s := range f.silences {
		out = append(out, s)
	}
	return out
}

func (f *fakeDispatcher) PutSilence(s engine.Silence) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.ID == "" {
		s.ID = "id-" + s.Comment
	}
	f.silences[s.ID] = s
	return s.ID, nil
}

func (f *fakeDispatcher) ExpireSilence(id string) error              { return nil }
func (f *fakeDispatcher) DispatchedAlerts() []engine.DispatchedAlert { return nil }

// With two notify processors in a pipeline, a silence made through the API reaches both
// under one ID; an update of an ID neither has is refused with 404, as Alertmanager does.
func TestASilenceReachesEveryDispatcher(t *testing.T) {
	a, b := &fakeDispatcher{silences: map[string]engine.Silence{}}, &fakeDispatcher{silences: map[string]engine.Silence{}}
	_, base := startServer(t, &config.API{}, Deps{Dispatchers: func() ([]engine.AlertDispatcher, error) { return []engine.AlertDispatcher{a, b}, nil }})
	post := func(body string) (int, string) {
		resp, err := http.Post(base+"/api/v2/silences", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			SilenceID string `json:"silenceID"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out.SilenceID
	}
	ends := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	code, id := post(`{"matchers":[{"name":"alertname","value":"x","isEqual":true}],"startsAt":"2026-01-01T00:00:00Z","endsAt":"` + ends + `","comment":"c1"}`)
	if code != 200 || id == "" {
		t.Fatalf("POST a new silence: %d %q", code, id)
	}
	for name, d := range map[string]*fakeDispatcher{"first": a, "second": b} {
		if _, ok := d.silences[id]; !ok || len(d.silences) != 1 {
			t.Errorf("the %s dispatcher holds %v, want the silence %s", name, d.silences, id)
		}
	}
	if code, _ := post(`{"id":"nobody-has-it","matchers":[{"name":"alertname","value":"x","isEqual":true}],"startsAt":"2026-01-01T00:00:00Z","endsAt":"` + ends + `"}`); code != http.StatusNotFound {
		t.Errorf("an update of an unknown silence: %d, want 404", code)
	}
}

// While a reload changes the streams, the API says so (503, Retry-After) rather than that no
// notify processor runs (404): amtool and scripts can tell "try again" from "nothing here".
func TestTheAlertmanagerAPIAnswers503DuringAReload(t *testing.T) {
	reloading := errors.New("a reload of the pipeline is under way; try again in a moment")
	_, base := startServer(t, &config.API{}, Deps{Dispatchers: func() ([]engine.AlertDispatcher, error) { return nil, reloading }})
	resp, err := http.Get(base + "/api/v2/silences")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("GET /api/v2/silences during a reload: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
