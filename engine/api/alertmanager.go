package api

import (
	"encoding/json"
	"errors"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/eventops/eventops-engine/engine"
)

// The routes of Alertmanager's v2 API that amtool uses, served from the pipeline's alert
// dispatchers (notify processors), so that `amtool --alertmanager.url=http://<engine>`
// lists, adds and expires silences and lists alerts.
func (s *Server) serveAlertmanagerAPI() {
	s.app.Get("/api/v2/silences", s.getSilences)
	s.app.Post("/api/v2/silences", s.postSilence)
	s.app.Get("/api/v2/silence/:id", s.getSilence)
	s.app.Delete("/api/v2/silence/:id", s.deleteSilence)
	s.app.Get("/api/v2/alerts", s.getAlerts)
	s.app.Get("/api/v2/status", s.getStatus)
}

// dispatchers are the alert dispatchers running now; none answers 404 (there is nothing
// to silence), and a reload under way 503 with Retry-After (they are changing).
func (s *Server) dispatchers(c *fiber.Ctx) ([]engine.AlertDispatcher, error) {
	var ds []engine.AlertDispatcher
	if s.deps.Dispatchers != nil {
		var err error
		if ds, err = s.deps.Dispatchers(); err != nil {
			c.Set(fiber.HeaderRetryAfter, "1")
			return nil, c.Status(fiber.StatusServiceUnavailable).SendString(err.Error() + "\n")
		}
	}
	if len(ds) == 0 {
		return nil, c.Status(fiber.StatusNotFound).SendString("no notify processor runs in this pipeline: silences and alerts are those of a notify processor\n")
	}
	return ds, nil
}

// gettableSilence is a silence as Alertmanager's API returns it.
type gettableSilence struct {
	engine.Silence
	Status struct {
		State string `json:"state"`
	} `json:"status"`
}

func silenceState(si engine.Silence, now time.Time) string {
	switch {
	case !now.Before(si.EndsAt):
		return "expired"
	case now.Before(si.StartsAt):
		return "pending"
	}
	return "active"
}

// allSilences merges the silences of every dispatcher (a silence is put in each).
func allSilences(ds []engine.AlertDispatcher) []engine.Silence {
	byID := map[string]engine.Silence{}
	for _, d := range ds {
		for _, si := range d.Silences() {
			if have, ok := byID[si.ID]; !ok || si.UpdatedAt.After(have.UpdatedAt) {
				byID[si.ID] = si
			}
		}
	}
	out := make([]engine.Silence, 0, len(byID))
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		out = append(out, byID[id])
	}
	return out
}

func (s *Server) getSilences(c *fiber.Ctx) error {
	ds, err := s.dispatchers(c)
	if ds == nil {
		return err
	}
	filter, err := parseFilter(c)
	if err != nil {
		return c.Status(fiber.StatusBadRequest).SendString(err.Error() + "\n")
	}
	now := s.deps.Clock.Now()
	out := []gettableSilence{}
	for _, si := range allSilences(ds) {
		if filter.selectsSilence(si) && silenceOfTenant(si, principalOf(c)) {
			g := gettableSilence{Silence: si}
			g.Status.State = silenceState(si, now)
			out = append(out, g)
		}
	}
	return c.JSON(out)
}

func (s *Server) getSilence(c *fiber.Ctx) error {
	ds, err := s.dispatchers(c)
	if ds == nil {
		return err
	}
	for _, si := range allSilences(ds) {
		if si.ID == c.Params("id") && silenceOfTenant(si, principalOf(c)) {
			g := gettableSilence{Silence: si}
			g.Status.State = silenceState(si, s.deps.Clock.Now())
			return c.JSON(g)
		}
	}
	return c.Status(fiber.StatusNotFound).SendString("silence not found\n")
}

func (s *Server) postSilence(c *fiber.Ctx) error {
	ds, err := s.dispatchers(c)
	if ds == nil {
		return err
	}
	var si engine.Silence
	if err := json.Unmarshal(c.Body(), &si); err != nil {
		return c.Status(fiber.StatusBadRequest).SendString("the body is not a silence: " + err.Error() + "\n")
	}
	if si.ID != "" && !slices.ContainsFunc(allSilences(ds), func(have engine.Silence) bool { return have.ID == si.ID }) {
		return c.Status(fiber.StatusNotFound).SendString("silence " + si.ID + " not found\n")
	}
	// Every dispatcher gets the silence under one ID: the first makes it, the others take it.
	for _, d := range ds {
		if err == nil {
			si.ID, err = d.PutSilence(si)
		}
	}
	if err != nil {
		return c.Status(fiber.StatusBadRequest).SendString(err.Error() + "\n")
	}
	return c.JSON(map[string]string{"silenceID": si.ID})
}

func (s *Server) deleteSilence(c *fiber.Ctx) error {
	ds, err := s.dispatchers(c)
	if ds == nil {
		return err
	}
	found := false
	for _, d := range ds {
		switch err := d.ExpireSilence(c.Params("id")); {
		case err == nil:
			found = true
		case !errors.Is(err, engine.ErrUnknownSilence):
			return c.Status(fiber.StatusInternalServerError).SendString(err.Error() + "\n")
		}
	}
	if !found {
		return c.Status(fiber.StatusNotFound).SendString("silence not found\n")
	}
	return c.SendStatus(fiber.StatusOK)
}

// gettableAlert is an alert as Alertmanager's API returns it.
type gettableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	UpdatedAt    time.Time         `json:"updatedAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
	Receivers    []receiverName    `json:"receivers"`
	Status       alertStatus       `json:"status"`
	// SourceFingerprint is an addition to Alertmanager's API: the alert record's fingerprint,
	// which the alerts table and the alert topic key it by (the dashboard finds an alert's
	// labels and silences by it). Alertmanager's clients ignore it.
	SourceFingerprint string `json:"sourceFingerprint,omitempty"`
}

type receiverName struct {
	Name string `json:"name"`
}

type alertStatus struct {
	State       string   `json:"state"`
	SilencedBy  []string `json:"silencedBy"`
	InhibitedBy []string `json:"inhibitedBy"`
}

func (s *Server) getAlerts(c *fiber.Ctx) error {
	ds, err := s.dispatchers(c)
	if ds == nil {
		return err
	}
	filter, err := parseFilter(c)
	if err != nil {
		return c.Status(fiber.StatusBadRequest).SendString(err.Error() + "\n")
	}
	want := func(param string) bool { return c.Query(param, "true") != "false" }
	out := []gettableAlert{}
	for _, d := range ds {
		for _, a := range d.DispatchedAlerts() {
			g := gettableAlertOf(a)
			suppressed := g.Status.State == "suppressed"
			if !alertOfTenant(a, principalOf(c)) || !filter.selects(a.Labels) || (!suppressed && !want("active")) ||
				(len(a.SilencedBy) > 0 && !want("silenced")) || (len(a.InhibitedBy) > 0 && !want("inhibited")) {
				continue
			}
			out = append(out, g)
		}
	}
	return c.JSON(out)
}

func gettableAlertOf(a engine.DispatchedAlert) gettableAlert {
	g := gettableAlert{Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt, EndsAt: a.EndsAt,
		UpdatedAt: a.UpdatedAt, GeneratorURL: a.GeneratorURL, Fingerprint: a.Fingerprint, SourceFingerprint: a.SourceFingerprint,
		Status: alertStatus{State: "active", SilencedBy: nonNil(a.SilencedBy), InhibitedBy: nonNil(a.InhibitedBy)}}
	if g.Annotations == nil {
		g.Annotations = map[string]string{}
	}
	if len(a.SilencedBy) > 0 || len(a.InhibitedBy) > 0 {
		g.Status.State = "suppressed"
	}
	for _, r := range a.Receivers {
		g.Receivers = append(g.Receivers, receiverName{Name: r})
	}
	return g
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// getStatus is enough of Alertmanager's status for clients that ask which version they talk
// to (amtool's config and cluster commands).
func (s *Server) getStatus(c *fiber.Ctx) error {
	return c.JSON(map[string]any{
		"cluster":     map[string]any{"status": "disabled", "peers": []any{}},
		"versionInfo": map[string]string{"version": "eventops-engine", "branch": "", "revision": "", "buildUser": "", "buildDate": "", "goVersion": ""},
		"config":      map[string]string{"original": "# the notify processors of the pipeline file\n"},
		"uptime":      time.Now().UTC(),
	})
}

// labelFilter is the filter parameters of a request: Alertmanager matchers
// (filter=alertname="x"), all of which an alert's labels (or a silence's matchers) must
// satisfy.
type labelFilter []engine.SilenceMatcher

func parseFilter(c *fiber.Ctx) (labelFilter, error) {
	var out labelFilter
	for _, raw := range c.Context().QueryArgs().PeekMulti("filter") {
		m, err := parseMatcherText(string(raw))
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// parseMatcherText reads name=value, name!=value, name=~re, name!~re, the value quoted or
// bare, as amtool writes filters.
func parseMatcherText(s string) (engine.SilenceMatcher, error) {
	for _, op := range []string{"=~", "!~", "!=", "="} {
		if i := strings.Index(s, op); i > 0 {
			v := strings.TrimSpace(s[i+len(op):])
			if u, err := unquote(v); err == nil {
				v = u
			}
			return engine.SilenceMatcher{Name: strings.TrimSpace(s[:i]), Value: v, IsRegex: strings.Contains(op, "~"), IsEqual: op == "=" || op == "=~"}, nil
		}
	}
	return engine.SilenceMatcher{}, errors.New("bad filter " + s + ": want name=value, name!=value, name=~regex or name!~regex")
}

func unquote(v string) (string, error) {
	var out string
	err := json.Unmarshal([]byte(v), &out)
	return out, err
}

// selects says whether labels satisfy every matcher of the filter.
func (f labelFilter) selects(labels map[string]string) bool {
	for _, m := range f {
		if !matches(m, labels[m.Name]) {
			return false
		}
	}
	return true
}

// selectsSilence says whether a silence has every matcher of the filter (Alertmanager
// compares the matchers themselves).
func (f labelFilter) selectsSilence(si engine.Silence) bool {
	for _, m := range f {
		if !slices.Contains(si.Matchers, m) {
			return false
		}
	}
	return true
}

// matches says whether value satisfies m (a regex matches the whole value; one that does not
// compile matches nothing).
func matches(m engine.SilenceMatcher, value string) bool {
	ok := value == m.Value
	if m.IsRegex {
		re, err := regexp.Compile("^(?:" + m.Value + ")$")
		if err != nil {
			return false
		}
		ok = re.MatchString(value)
	}
	return ok == m.IsEqual
}

// alertOfTenant says whether who may see alert a: any alert without a tenant-bound token,
// else one labelled with its tenant.
func alertOfTenant(a engine.DispatchedAlert, who *principal) bool {
	return who == nil || who.tenant == "" || a.Labels["tenant_id"] == who.tenant
}

// silenceOfTenant says whether who may see silence si: any without a tenant-bound token,
// else one that only mutes its tenant's alerts (a matcher tenant_id="its tenant").
func silenceOfTenant(si engine.Silence, who *principal) bool {
	if who == nil || who.tenant == "" {
		return true
	}
	for _, m := range si.Matchers {
		if m.Name == "tenant_id" && m.IsEqual && !m.IsRegex && m.Value == who.tenant {
			return true
		}
	}
	return false
}
