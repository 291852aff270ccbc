package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/amalert"
	"github.com/eventops/eventops-engine/engine/atomicfile"
	"github.com/eventops/eventops-engine/engine/eval"
)

// formatAlertmanagerAPI is the body of Alertmanager's POST /api/v2/alerts (a JSON array of
// postable alerts): the alertmanager output's, not a format users pick for a webhook.
const formatAlertmanagerAPI = "alertmanager-api"

// AlertmanagerConfig is the alertmanager output's settings.
type AlertmanagerConfig struct {
	URLs           []string        `yaml:"urls" required:"true" doc:"Alertmanager addresses (e.g. http://127.0.0.1:9093, with a path prefix if it runs under one). Every alert goes to POST <url>/api/v2/alerts of each, as Prometheus sends its alerts to every Alertmanager of a cluster, which deduplicate notifications among themselves."`
	GeneratorURL   *config.Expr    `yaml:"generator_url" doc:"Each alert's generatorURL (the link back from a notification), a template like the webhook's, e.g. 'http://ops.example.com:8088/alerts?fingerprint={{fingerprint}}'."`
	ResendInterval config.Duration `yaml:"resend_interval" default:"1m" doc:"How often firing alerts are sent again, as Prometheus' resend_delay: each is sent with endsAt four intervals ahead, and Alertmanager resolves an alert that is not sent again before its endsAt (the engine stopped for good). A resolved alert is sent with endsAt its end."`
	MaxAlerts      int             `yaml:"max_alerts" default:"64" doc:"Most alerts in one request."`
	StateDir       string          `yaml:"state_dir" default:"data/alertmanager" doc:"Directory of the firing alerts, one file per output named after its stream, so that a restarted engine sends them again at once instead of letting Alertmanager resolve them. Relative to the working directory, as the broker's data_dir is."`
	Delivery       `yaml:",inline"`
}

var _ config.Validator = (*AlertmanagerConfig)(nil)

// Validate checks the settings.
func (c *AlertmanagerConfig) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, config.FieldErrorf(field, format, args...))
	}
	if len(c.URLs) == 0 {
		add("urls", "name at least one Alertmanager, e.g. [http://127.0.0.1:9093]")
	}
	for i, u := range c.URLs {
		if err := checkURL(u); err != nil {
			add(fmt.Sprintf("urls[%d]", i), "%v", err)
		}
	}
	if c.ResendInterval <= 0 {
		add("resend_interval", "must be positive, e.g. 1m: Alertmanager resolves firing alerts that are not sent again")
	}
	if c.MaxAlerts < 1 {
		add("max_alerts", "must be at least 1, got %d", c.MaxAlerts)
	}
	c.Delivery.validate(add)
	return errors.Join(errs...)
}

// webhookConfig is the config of the sender to one Alertmanager.
func (c *AlertmanagerConfig) webhookConfig(base string) *Config {
	return &Config{
		URL:          strings.TrimRight(base, "/") + "/api/v2/alerts",
		Method:       "POST",
		Format:       formatAlertmanagerAPI,
		GeneratorURL: c.GeneratorURL,
		Batch:        Batch{MaxRecords: c.MaxAlerts},
		Delivery:     c.Delivery,
		validFor:     4 * c.ResendInterval.D(),
	}
}

// AlertmanagerFactory declares the alertmanager output.
var AlertmanagerFactory = engine.OutputFactory{
	Type: "alertmanager",
	Doc: "Pushes alert records (the threshold processor's) to one or more Alertmanagers through " +
		"their v2 API, as Prometheus does: labels alertname (the rule), severity, the series' " +
		"values and the rule's labels; annotations (the message as summary); startsAt; endsAt " +
		"four resend_intervals ahead while firing (the alert is sent again every interval) and " +
		"its end once resolved; generatorURL. Pending alerts are not sent. Routing, grouping, " +
		"silences and inhibition are then Alertmanager's. A request is retried like a webhook's; " +
		"a record that no Alertmanager accepted goes to the dead-letter topic.",
	Example: `output:
  alertmanager:
    urls: [http://127.0.0.1:9093]
    generator_url: 'http://127.0.0.1:8088/alerts?fingerprint={{fingerprint}}'
`,
	NewConfig: func() any { return &AlertmanagerConfig{} },
	InSinks:   true,
	Check: func(cfg any, env engine.BuildEnv) ([]string, error) {
		c, err := engine.ConfigOf[AlertmanagerConfig]("alertmanager output", cfg)
		if err != nil {
			return nil, err
		}
		_, err = compile(c.webhookConfig(c.URLs[0]), env)
		return nil, err
	},
	Build: func(_ context.Context, cfg any, env engine.OutputEnv) (engine.Output, error) {
		c, err := engine.ConfigOf[AlertmanagerConfig]("alertmanager output", cfg)
		if err != nil {
			return nil, err
		}
		return NewAlertmanager(c, env)
	},
}

// AlertmanagerOutput pushes alerts to Alertmanagers and keeps the firing ones, which it
// sends again every resend interval.
type AlertmanagerOutput struct {
	senders   []*Output // one per Alertmanager
	resend    time.Duration
	clock     engine.Clock
	log       *slog.Logger
	statePath string // "" for none

	// mu keeps a resend from overtaking a Write: a firing alert sent again after its
	// resolution would fire it again in Alertmanager.
	mu     sync.Mutex
	firing map[string]map[string]any // fingerprint → the record that made it fire

	stop chan struct{}
	done chan struct{}
}

var (
	_ engine.Output          = (*AlertmanagerOutput)(nil)
	_ engine.SelfTimedOutput = (*AlertmanagerOutput)(nil)
	_ engine.HealthReporter  = (*AlertmanagerOutput)(nil)
)

// NewAlertmanager opens the output: it reads the firing alerts a previous run left, and
// starts sending them again every resend interval, the first time at once.
func NewAlertmanager(c *AlertmanagerConfig, env engine.OutputEnv) (*AlertmanagerOutput, error) {
	o := &AlertmanagerOutput{resend: c.ResendInterval.D(), clock: env.Clock, log: env.Logger,
		firing: map[string]map[string]any{}, stop: make(chan struct{}), done: make(chan struct{})}
	if o.clock == nil {
		o.clock = engine.WallClock{}
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	for _, u := range c.URLs {
		s, err := New(c.webhookConfig(u), env)
		if err != nil {
			return nil, err
		}
		o.senders = append(o.senders, s)
	}
	if c.StateDir != "" {
		o.statePath = filepath.Join(c.StateDir, strings.TrimSuffix(logFileName(env.Stream), ".log")+".json")
		if err := o.loadState(); err != nil {
			return nil, err
		}
	}
	go o.resendLoop()
	return o, nil
}

// TimesItsOwnWrites: every request is bounded as a webhook's.
func (o *AlertmanagerOutput) TimesItsOwnWrites() {}

// Problem is the first Alertmanager's failure while its requests are being retried.
func (o *AlertmanagerOutput) Problem() error {
	for _, s := range o.senders {
		if err := s.Problem(); err != nil {
			return err
		}
	}
	return nil
}

// Write sends batch to every Alertmanager and returns when each has settled it. A record
// counts as sent when one Alertmanager accepted it (they share what they get); one that none
// accepted goes to rejects.
func (o *AlertmanagerOutput) Write(ctx context.Context, batch []*engine.Record, rejects *engine.Rejects) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	per, err := o.sendAll(ctx, batch)
	if err != nil {
		return err
	}
	refused := map[*engine.Record]int{}
	for _, rj := range per {
		for _, it := range rj.Items {
			if refused[it.Record]++; refused[it.Record] == len(o.senders) {
				rejects.Items = append(rejects.Items, it)
			}
		}
	}
	o.track(batch)
	return o.saveState()
}

// sendAll writes batch to every sender at once, with each one's rejects.
func (o *AlertmanagerOutput) sendAll(ctx context.Context, batch []*engine.Record) ([]engine.Rejects, error) {
	per := make([]engine.Rejects, len(o.senders))
	errs := make([]error, len(o.senders))
	var wg sync.WaitGroup
	for i, s := range o.senders {
		wg.Go(func() { errs[i] = s.Write(ctx, batch, &per[i]) })
	}
	wg.Wait()
	return per, errors.Join(errs...)
}

// track updates the firing alerts with the batch's transitions.
func (o *AlertmanagerOutput) track(batch []*engine.Record) {
	for _, rec := range batch {
		if !isAlert(rec) {
			continue
		}
		fp := rec.Value["fingerprint"].(string)
		switch rec.Value["state"] {
		case amalert.StatusFiring:
			o.firing[fp] = rec.Value
		case amalert.StatusResolved:
			delete(o.firing, fp)
		}
	}
}

// resendLoop sends the firing alerts again every resend interval until Close.
func (o *AlertmanagerOutput) resendLoop() {
	defer close(o.done)
	t := time.NewTicker(o.resend)
	defer t.Stop()
	for {
		o.resendFiring()
		select {
		case <-o.stop:
			return
		case <-t.C:
		}
	}
}

// resendFiring sends every firing alert once more, with its endsAt moved ahead. A failure
// is logged and left to the next interval: nothing is lost while the alert still fires.
func (o *AlertmanagerOutput) resendFiring() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.firing) == 0 {
		return
	}
	batch := make([]*engine.Record, 0, len(o.firing))
	for _, v := range o.firing {
		batch = append(batch, &engine.Record{Value: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.resend)
	defer cancel()
	go func() {
		select {
		case <-o.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	failed := make([]int, len(o.senders))
	errs := make([]error, len(o.senders))
	var wg sync.WaitGroup
	for i, s := range o.senders {
		wg.Go(func() { failed[i], errs[i] = s.resend(ctx, batch) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil || slices.Max(failed) > 0 {
		o.log.Warn("alertmanager: could not send the firing alerts again; trying at the next interval", "alerts", len(batch), "undelivered", failed, "err", err)
	}
}

// stateFile is what state_dir keeps: the records of the firing alerts.
type stateFile struct {
	Firing map[string]map[string]any `json:"firing"`
}

func (o *AlertmanagerOutput) loadState() error {
	raw, err := os.ReadFile(o.statePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state_dir: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("state_dir: %s is not what this output wrote: %w", o.statePath, err)
	}
	for fp, v := range st.Firing {
		o.firing[fp] = v
	}
	return nil
}

// saveState writes the firing alerts, replacing the file at once (a kill leaves the old
// one or the new one).
func (o *AlertmanagerOutput) saveState() error {
	if o.statePath == "" {
		return nil
	}
	raw, err := json.Marshal(stateFile{Firing: o.firing})
	if err != nil {
		return fmt.Errorf("alertmanager state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(o.statePath), 0o755); err != nil {
		return fmt.Errorf("alertmanager state: %w", err)
	}
	if err := atomicfile.Write(o.statePath, raw); err != nil {
		return fmt.Errorf("alertmanager state: %w", err)
	}
	return nil
}

// Close stops the resends and closes the senders.
func (o *AlertmanagerOutput) Close() error {
	close(o.stop)
	<-o.done
	var errs []error
	for _, s := range o.senders {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// apiEncoder sends alert records as Alertmanager's postable alerts (POST /api/v2/alerts).
type apiEncoder struct {
	generatorURL *eval.Template // nil: none
	validFor     time.Duration  // a firing alert's endsAt is this far ahead
}

// postableAlert is Alertmanager's models.PostableAlert.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

func (e apiEncoder) prepare(it *item, env eval.Env) error {
	a, err := amalert.Of(it.rec.Value, e.generatorURL, env)
	if err != nil {
		return err
	}
	if a.Status == amalert.StatusFiring {
		a.EndsAt = env.Now.Add(e.validFor).UTC()
	}
	it.alert = a
	return nil
}

func (e apiEncoder) body(items []*item) ([]byte, error) {
	alerts := make([]postableAlert, len(items))
	for i, it := range items {
		a := it.alert
		alerts[i] = postableAlert{Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: a.GeneratorURL}
	}
	b, err := json.Marshal(alerts)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the alerts: %w", err)
	}
	return b, nil
}
