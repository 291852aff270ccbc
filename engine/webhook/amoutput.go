package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
// sends again every resend interval. Each Alertmanager has a lane of its own (amlane.go): a
// batch is done once one Alertmanager accepted each record, and the others get it in the
// background, in order.
type AlertmanagerOutput struct {
	senders   []*Output // one per Alertmanager
	lanes     []*lane   // one per sender
	resend    time.Duration
	clock     engine.Clock
	log       *slog.Logger
	statePath string // "" for none

	// mu orders what goes into the lanes: a resend queued before a Write's resolution
	// would fire the alert again in Alertmanager.
	mu     sync.Mutex
	firing map[string]map[string]any // fingerprint → the record that made it fire

	stop        chan struct{}
	done        chan struct{}
	cancelLanes context.CancelFunc
	lanesDone   sync.WaitGroup
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
	o.startLanes()
	go o.resendLoop()
	return o, nil
}

func (o *AlertmanagerOutput) startLanes() {
	ctx, cancel := context.WithCancel(context.Background())
	o.cancelLanes = cancel
	for i, s := range o.senders {
		l := newLane(i, s, o.log)
		o.lanes = append(o.lanes, l)
		o.lanesDone.Go(func() { l.run(ctx) })
	}
}

// TimesItsOwnWrites: every request is bounded as a webhook's.
func (o *AlertmanagerOutput) TimesItsOwnWrites() {}

// Problem says that no Alertmanager can be written to: while one still takes the alerts,
// the others' failures are logged, and the output delivers.
func (o *AlertmanagerOutput) Problem() error {
	var errs []error
	for _, s := range o.senders {
		err := s.Problem()
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Write queues batch for every Alertmanager and returns once each record was accepted by
// one of them (they share what they get) or refused by all; those go to rejects. An
// Alertmanager that is slow or down gets the batch later, in order, without holding the
// stream back.
func (o *AlertmanagerOutput) Write(ctx context.Context, batch []*engine.Record, rejects *engine.Rejects) error {
	t := newTally(batch, len(o.lanes))
	o.mu.Lock()
	for _, l := range o.lanes {
		l.enqueue(&laneJob{batch: batch, tally: t})
	}
	o.track(batch)
	err := o.saveState()
	o.mu.Unlock()
	if err != nil {
		return err
	}
	select {
	case <-t.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	t.rejects(batch, rejects)
	return nil
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

// resendFiring queues every firing alert once more for each Alertmanager, with its endsAt
// moved ahead when it is sent. A failure is logged by the lane and left to the next
// interval: nothing is lost while the alert still fires.
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
	for _, l := range o.lanes {
		l.enqueue(&laneJob{batch: batch, resend: true})
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

// Close stops the resends and the lanes (what they still hold is not sent: the next start
// sends the firing alerts again at once) and closes the senders.
func (o *AlertmanagerOutput) Close() error {
	close(o.stop)
	<-o.done
	o.cancelLanes()
	o.lanesDone.Wait()
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
