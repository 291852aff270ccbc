package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/api"
	"github.com/eventops/eventops-engine/engine/broker"
	"github.com/eventops/eventops-engine/engine/lookup"
	"github.com/eventops/eventops-engine/engine/reload"
	"github.com/eventops/eventops-engine/engine/store"
)

// live is the running set of streams, which a reload changes stream by stream.
type live struct {
	receivers *receivers // the http inputs; a reload leaves them as they are
	mu        sync.Mutex // held by a reload, and from shutdown on
	plan      *Plan      // the configuration in force
	b         *broker.Broker
	ro        RunOptions
	runCtx    context.Context
	cancel    context.CancelFunc // stops the whole run (a stream failed)
	wg        sync.WaitGroup
	errc      chan error
	streams   map[string]*liveStream
	tracker   reload.Tracker
	closed    bool // shutting down: no more reloads
	server    *api.Server
	stores    map[string]store.Store     // what the API's routes read, by table
	closers   []func()                   // run at shutdown: stores a reload opened
	probe     *brokerProbe               // whether the broker answers
	seen      atomic.Pointer[[]*stream]  // the streams running() last listed
	lookups   atomic.Pointer[lookup.Set] // the plan's lookup tables, for the API's topology routes
}

type liveStream struct {
	s     *stream
	stop  context.CancelFunc
	done  chan struct{}
	ended atomic.Bool // its input (a file) ended and everything was delivered
}

// stopIfAllEnded stops the run when every stream has read its input to the end: a pipeline
// of file inputs stops once it has processed them, as a replay should.
func (l *live) stopIfAllEnded() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	for _, ls := range l.streams {
		if !ls.ended.Load() {
			return
		}
	}
	l.plan.opts.Logger.Info("every stream has read its input to the end; stopping")
	l.cancel()
}

// errReloading says the streams are changing (a reload, or the shutdown, holds them): the
// API answers 503 and asks to come back.
var errReloading = errors.New("the pipeline is reloading or stopping; try again in a moment")

// dispatchers are the alert dispatchers (notify processors) of the running streams, for the
// API. During a reload (which holds the lock) it says so rather than wait; so it does while
// a stream with one has not restored its state, whose silences and alerts would otherwise
// be listed as gone, and a silence added then be replaced by the restore.
func (l *live) dispatchers() ([]engine.AlertDispatcher, error) {
	if !l.mu.TryLock() {
		return nil, errReloading
	}
	defer l.mu.Unlock()
	var out []engine.AlertDispatcher
	for _, name := range slices.Sorted(maps.Keys(l.streams)) {
		s := l.streams[name].s
		ds := s.dispatchers()
		if len(ds) > 0 && !s.joined() {
			return nil, fmt.Errorf("stream %s is starting: its alerts and silences are being restored; try again in a moment", name)
		}
		out = append(out, ds...)
	}
	return out, nil
}

// dispatchers are the stream's processors that dispatch alerts.
func (s *stream) dispatchers() []engine.AlertDispatcher {
	var out []engine.AlertDispatcher
	for _, p := range s.plan.Processors {
		if d, ok := p.Processor.(engine.AlertDispatcher); ok {
			out = append(out, d)
		}
	}
	return out
}

// start runs s until the run ends or the stream is stopped.
func (l *live) start(s *stream) {
	ctx, stop := context.WithCancel(l.runCtx)
	ls := &liveStream{s: s, stop: stop, done: make(chan struct{})}
	l.streams[s.plan.Name] = ls
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(ls.done)
		err := s.run(ctx)
		if errors.Is(err, engine.ErrEndOfInput) {
			s.endSummary()
			ls.ended.Store(true)
			go l.stopIfAllEnded()
			return
		}
		if errors.Is(err, broker.ErrInputBroken) && ctx.Err() == nil {
			l.restart(s, err)
			return
		}
		if err != nil {
			select {
			case l.errc <- fmt.Errorf("stream %s: %w", s.plan.Name, err):
			default:
			}
			l.cancel()
		}
	}()
}

// restart replaces a stream whose input cannot go on (broker.ErrInputBroken) by a new one
// of the same plan: its consumer joins the group afresh and its state is restored from the
// changelog, as after a process restart. The old input is closed aside: its client may be
// the thing that hangs.
func (l *live) restart(old *stream, cause error) {
	old.log.Error("replacing the stream's consumer", "err", cause)
	go old.close()
	wait := time.Second
	for {
		s, err := l.plan.openStream(l.runCtx, l.b, old.plan, l.ro, nil)
		if err == nil {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.closed || l.runCtx.Err() != nil {
				s.close()
				return
			}
			l.start(s)
			return
		}
		old.log.Warn("reopening the stream failed; retrying", "err", err, "wait", wait)
		if !sleepCtx(l.runCtx, wait) {
			return
		}
		wait = min(wait*2, 30*time.Second)
	}
}

// stop ends one stream at its commit boundary (run returns once its in-flight batches are
// delivered) and closes it.
func (l *live) stop(name string) {
	ls := l.streams[name]
	ls.stop()
	<-ls.done
	ls.s.close()
	delete(l.streams, name)
}

// running lists the streams (for readiness). During a reload, which holds the lock, it lists
// them as last seen: readiness then still looks at every stream instead of none.
func (l *live) running() []*stream {
	if !l.mu.TryLock() {
		if seen := l.seen.Load(); seen != nil {
			return slices.Clone(*seen)
		}
		return nil
	}
	defer l.mu.Unlock()
	out := make([]*stream, 0, len(l.streams))
	for _, ls := range l.streams {
		out = append(out, ls.s)
	}
	l.seen.Store(&out)
	return slices.Clone(out)
}

// ReloadStatus is the status of the last reload (GET /-/reload).
func (r *Running) ReloadStatus() reload.Status { return r.live.tracker.Status() }

// Reload switches the running pipeline to cfg (loaded from the changed files; changedFiles
// are the referenced files whose contents changed). The new pipeline is built and checked
// completely, and everything new is opened, while the old one runs; only then the streams
// change, each at its own commit boundary: unchanged streams go on untouched, a stream
// whose processors or output changed swaps in place (keeping the state of what did not
// change), a stream whose input changed is replaced, new streams start and removed ones
// stop. Lookup tables whose file changed are read again in place. A reload that fails
// before the streams change leaves the old pipeline running and says why.
func (r *Running) Reload(ctx context.Context, cfg *config.Pipeline, changedFiles []string, trigger string) reload.Status {
	l := r.live
	l.mu.Lock()
	defer l.mu.Unlock()
	log := l.plan.opts.Logger
	var pauses map[string]float64
	record := func(result string, changes []string, err error) reload.Status {
		return l.record(trigger, result, changes, pauses, err)
	}
	if l.closed || l.runCtx.Err() != nil {
		return record(reload.Rejected, nil, errors.New("the pipeline is shutting down"))
	}
	// A changed lookup file is read (and checked) now, and swapped in below.
	var reread []string
	for _, name := range slices.Sorted(maps.Keys(l.plan.Lookups)) {
		t := l.plan.Lookups[name]
		if lk, ok := cfg.Lookups[name]; ok && t != nil && reload.Same(t.Config(), lk) && reload.ChangedFile(changedFiles, t.File()) {
			if _, err := lookup.Load(name, lk); err != nil {
				return record(reload.Rejected, nil, &config.Error{Pos: cfg.At("lookups." + name + ".file"), Path: "lookups." + name + ".file", Msg: err.Error()})
			}
			reread = append(reread, name)
		}
	}
	opts := l.plan.opts
	opts.Lookups = l.plan.Lookups
	next, err := Build(cfg, opts)
	if err != nil {
		return record(reload.Rejected, nil, err)
	}
	old := l.plan.Pipeline
	changes := reload.Diff(old, cfg, changedFiles)
	if len(changes) == 0 {
		return record(reload.Unchanged, nil, nil)
	}
	if err := notReloadable(old, cfg); err != nil {
		return record(reload.Rejected, changes, err)
	}

	// Prepare: everything that can fail, with the old pipeline untouched.
	if err := l.b.EnsureTopics(ctx, addedTopics(old, cfg)); err != nil {
		return record(reload.Rejected, changes, fmt.Errorf("creating topics: %w", err))
	}
	if err := l.b.EnsureTopics(ctx, next.changelogTopics()); err != nil {
		return record(reload.Rejected, changes, fmt.Errorf("creating state changelog topics: %w", err))
	}
	oldPlans := map[string]*StreamPlan{}
	for _, sp := range l.plan.Streams {
		oldPlans[sp.Name] = sp
	}
	type swap struct {
		ls   *liveStream
		plan *StreamPlan
		out  engine.Output
	}
	var swaps []swap
	var added []*StreamPlan
	var replaced []replacement
	var opened []*stream
	var openedOutputs []engine.Output
	abort := func(err error) reload.Status {
		for _, s := range opened {
			s.close()
		}
		for _, o := range openedOutputs {
			o.Close()
		}
		return record(reload.Rejected, changes, err)
	}
	newNames := map[string]bool{}
	for _, sp := range next.Streams {
		newNames[sp.Name] = true
		prev, ok := oldPlans[sp.Name]
		ls := l.streams[sp.Name]
		switch {
		case !ok || ls == nil:
			s, err := next.openStream(ctx, l.b, sp, l.ro, nil)
			if err != nil {
				return abort(fmt.Errorf("stream %s: %w", sp.Name, err))
			}
			opened = append(opened, s)
			added = append(added, sp)
		case reload.Same(prev.Config, sp.Config):
			// Unchanged: it goes on as it is (lookup files are reread in place below).
		case sameInput(prev, sp):
			var out engine.Output
			if !reload.Same(prev.Config.Output, sp.Config.Output) {
				out, err = next.openOutput(ctx, l.b, sp, l.ro, log.With("stream", sp.Name))
				if err != nil {
					return abort(fmt.Errorf("stream %s: output: %w", sp.Name, err))
				}
				openedOutputs = append(openedOutputs, out)
			}
			swaps = append(swaps, swap{ls: ls, plan: sp, out: out})
		default:
			r := replacement{plan: sp}
			if !reload.Same(prev.Config.Output, sp.Config.Output) {
				// Opened now, like a swapped output: a failure rejects the reload, and a
				// table new to the routes that it writes gets its store below.
				if r.out, err = next.openOutput(ctx, l.b, sp, l.ro, log.With("stream", sp.Name)); err != nil {
					return abort(fmt.Errorf("stream %s: output: %w", sp.Name, err))
				}
				openedOutputs = append(openedOutputs, r.out)
			}
			replaced = append(replaced, r)
		}
	}
	var routes *api.RouteSet
	var stores map[string]store.Store
	var releaseStores func() // of the stores opened for tables new to the routes
	if l.server != nil && cfg.API != nil && !reload.Same(old.API.Routes, cfg.API.Routes) {
		leaving := map[string]bool{} // streams whose running output stops
		for _, r := range replaced {
			leaving[r.plan.Name] = true
		}
		for _, sw := range swaps {
			leaving[sw.plan.Name] = sw.out != nil
		}
		outputs := append(l.keptOutputs(next, leaving), openedOutputs...)
		for _, s := range opened {
			outputs = append(outputs, s.output)
		}
		stores = maps.Clone(l.stores)
		if stores == nil {
			stores = map[string]store.Store{}
		}
		if releaseStores, err = openStores(ctx, stores, outputs); err != nil {
			return abort(err)
		}
		closeOnAbort := abort
		abort = func(err error) reload.Status { releaseStores(); return closeOnAbort(err) }
		if routes, err = l.server.RoutesFor(cfg.API, stores, cfg.Pos); err != nil {
			return abort(err)
		}
	}
	for _, name := range reread {
		if err := l.plan.Lookups[name].Reload(); err != nil {
			return abort(fmt.Errorf("lookups.%s: %w", name, err))
		}
	}

	// Apply: stream by stream, each at its commit boundary.
	var failed []error
	for name := range l.streams {
		if !newNames[name] {
			l.stop(name)
		}
	}
	for _, sw := range swaps {
		// A stream whose output is down (retrying) reaches no commit boundary: bounded.
		swapCtx, cancelSwap := context.WithTimeout(ctx, swapTimeout)
		res, err := sw.ls.s.Swap(swapCtx, sw.plan, sw.out)
		cancelSwap()
		if err != nil {
			if errors.Is(err, errSwapWithdrawn) && sw.out != nil {
				sw.out.Close()
			}
			failed = append(failed, fmt.Errorf("stream %s: swap: %w", sw.plan.Name, err))
			continue
		}
		l.ro.Metrics.SwapPause.WithLabelValues(sw.plan.Name).Observe(res.Pause.Seconds())
		if pauses == nil {
			pauses = map[string]float64{}
		}
		pauses[sw.plan.Name] = res.Pause.Seconds()
		log.Info("stream swapped", "stream", sw.plan.Name, "pause", res.Pause.Round(time.Microsecond), "kept", res.Kept, "state_carried", res.Moved)
	}
	for _, r := range replaced {
		l.stop(r.plan.Name)
		s, err := next.openStream(ctx, l.b, r.plan, l.ro, r.out)
		if err != nil {
			if r.out != nil {
				r.out.Close()
			}
			failed = append(failed, fmt.Errorf("stream %s: %w", r.plan.Name, err))
			continue
		}
		l.start(s)
	}
	for _, s := range opened {
		l.start(s)
	}
	if routes != nil {
		l.server.UseRoutes(routes) // open SSE streams go on; new requests see the new routes
		l.stores = stores
		l.closers = append(l.closers, releaseStores) // serving now: kept until shutdown
	}
	// The new configuration is in force; streams that did not change keep their running
	// plans (their processors hold the state), and so do lookup tables already loaded.
	for i, sp := range next.Streams {
		if ls := l.streams[sp.Name]; ls != nil {
			next.Streams[i] = ls.s.plan
		}
	}
	if len(failed) > 0 {
		// What did not switch is retried by the next reload: it compares each stream with
		// the version it runs, and the file with the configuration before this attempt.
		next.Pipeline = old
		l.setPlan(next)
		return record(reload.Rejected, changes, fmt.Errorf("partly applied: %w", errors.Join(failed...)))
	}
	l.setPlan(next)
	return record(reload.Applied, changes, nil)
}

// setPlan makes next the plan that runs, and tells decode once which streams read each topic.
func (l *live) setPlan(next *Plan) {
	l.plan = next
	l.lookups.Store(&next.Lookups)
	if l.ro.shared != nil {
		l.ro.shared.setReaders(next)
	}
}

// replacement is a stream a reload replaces (its input changed), with its output when that
// changed too, opened before the old stream stops.
type replacement struct {
	plan *StreamPlan
	out  engine.Output
}

// keptOutputs are the running outputs that go on after a reload to next, in next's order:
// those of the streams it keeps, except the leaving ones.
func (l *live) keptOutputs(next *Plan, leaving map[string]bool) []engine.Output {
	var out []engine.Output
	for _, sp := range next.Streams {
		if ls := l.streams[sp.Name]; ls != nil && !leaving[sp.Name] {
			out = append(out, ls.s.output)
		}
	}
	return out
}

// record notes the outcome of a reload attempt (the caller holds l.mu): the status of
// GET /-/reload, the metrics, a log line, and an SSE notice (event: reload) on the API's
// streams when something was applied or rejected.
func (l *live) record(trigger, result string, changes []string, pauses map[string]float64, err error) reload.Status {
	log := l.plan.opts.Logger
	st := l.tracker.Record(time.Now(), trigger, result, changes, pauses, err)
	l.ro.Metrics.Reloads.WithLabelValues(result).Inc()
	switch result {
	case reload.Rejected:
		l.ro.Metrics.ConfigReloadSuccess.Set(0)
		log.Error("reload rejected; the running pipeline is unchanged", "trigger", trigger, "changes", changes, "err", err)
	case reload.Applied:
		l.ro.Metrics.ConfigReloadSuccess.Set(1)
		l.ro.Metrics.ConfigReloadTime.Set(float64(time.Now().Unix()))
		log.Info("reload applied", "trigger", trigger, "changes", changes)
	default:
		l.ro.Metrics.ConfigReloadSuccess.Set(1)
		log.Info("reload: nothing changed", "trigger", trigger)
	}
	if l.server != nil && result != reload.Unchanged {
		l.server.Announce("reload", st)
	}
	return st
}

// swapTimeout bounds how long a reload waits for one stream's commit boundary.
var swapTimeout = 30 * time.Second

// notReloadable says which changes need a restart: the broker, existing topics, lookup
// definitions, existing outputs that hold something alone (config.Claimer: a Parquet
// output's directory, which the running output holds until it stops; new ones are fine),
// and the API's listen address and dashboard.
func notReloadable(old, cfg *config.Pipeline) error {
	var errs []string
	if !reload.Same(old.Broker, cfg.Broker) {
		errs = append(errs, "broker: changing the broker needs a restart")
	}
	for _, name := range slices.Sorted(maps.Keys(old.Topics)) {
		t, ok := cfg.Topics[name]
		if !ok || !reload.Same(old.Topics[name], t) {
			errs = append(errs, fmt.Sprintf("topics.%s: changing or removing a declared topic needs a restart (adding topics does not)", name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(old.Lookups)) {
		if lk, ok := cfg.Lookups[name]; ok && !reload.Same(old.Lookups[name], lk) {
			errs = append(errs, fmt.Sprintf("lookups.%s: changing a lookup's file, topic or key needs a restart (editing the file itself does not)", name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Lookups)) {
		if _, ok := old.Lookups[name]; !ok && cfg.Lookups[name].Topic != "" {
			errs = append(errs, fmt.Sprintf("lookups.%s: adding a lookup kept in a topic needs a restart", name))
		}
	}
	switch {
	case (old.API == nil) != (cfg.API == nil):
		errs = append(errs, "api: adding or removing the API needs a restart")
	case old.API != nil:
		a, b := *old.API, *cfg.API
		a.Routes, b.Routes = nil, nil
		if !reload.Same(a, b) {
			errs = append(errs, "api: changing the listen address, the dashboard, the server limits (timeouts, max_connections, header and URL sizes), auth, tls or allow_origins needs a restart (routes reload)")
		}
	}
	co, cn := claimingOutputs(old), claimingOutputs(cfg)
	for _, k := range slices.Sorted(maps.Keys(co)) {
		if v, ok := cn[k]; !ok || !reload.Same(co[k], v) {
			errs = append(errs, fmt.Sprintf("%s: changing or removing a %s output needs a restart (adding one does not)", k, co[k].Type))
		}
	}
	errs = append(errs, httpInputsChanged(old, cfg)...)
	if len(errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(errs, "; "))
}

// httpInputsChanged lists the streams whose receivers (http, prometheus_remote_write, otlp) a
// reload would add, remove or change
// (its settings or the topic it stores into): its listener is opened once, at the start.
func httpInputsChanged(old, cfg *config.Pipeline) []string {
	inputs := func(p *config.Pipeline) map[string]config.Input {
		m := map[string]config.Input{}
		for _, s := range p.Streams {
			if len(s.Input.Receivers()) > 0 {
				m[s.Name] = s.Input
			}
		}
		return m
	}
	before, after := inputs(old), inputs(cfg)
	names := maps.Clone(before)
	maps.Copy(names, after)
	var errs []string
	for _, name := range slices.Sorted(maps.Keys(names)) {
		b, hadIt := before[name]
		a, hasIt := after[name]
		if hadIt != hasIt || b.Topic != a.Topic || !reload.Same(b.Receivers(), a.Receivers()) || !reload.Same(b.OTLP, a.OTLP) {
			errs = append(errs, fmt.Sprintf("streams.%s.input: adding, removing or changing an http, prometheus_remote_write or otlp input (or its topic) needs a restart", name))
		}
	}
	return errs
}

// claimingOutputs are the outputs of p that hold something alone (config.Claimer), by the
// stream or sink they belong to.
func claimingOutputs(p *config.Pipeline) map[string]*config.OutputEntry {
	out := map[string]*config.OutputEntry{}
	add := func(key string, e *config.OutputEntry) {
		if e == nil {
			return
		}
		if _, ok := e.Config.(config.Claimer); ok {
			out[key] = e
		}
	}
	for _, s := range p.Streams {
		add("streams."+s.Name, s.Output.Plugin)
	}
	for _, s := range p.Sinks {
		add("sinks."+s.StreamName(), s.Plugin)
	}
	return out
}

func addedTopics(old, cfg *config.Pipeline) map[string]config.Topic {
	out := map[string]config.Topic{}
	for name, t := range cfg.Topics {
		if _, ok := old.Topics[name]; !ok {
			out[name] = t
		}
	}
	return out
}

// sameInput tells whether a changed stream can swap in place: same input, consumer group
// and checkpointing (a stateful stream's input is transactional).
func sameInput(prev, next *StreamPlan) bool {
	return reload.Same(prev.Config.Input, next.Config.Input) && prev.Group() == next.Group() && prev.Transactional() == next.Transactional()
}

// ReloadFiles loads the pipeline from its files again (RunOptions.Load) and reloads it.
func (r *Running) ReloadFiles(ctx context.Context, trigger string, changedFiles []string) reload.Status {
	l := r.live
	if l.ro.Load == nil {
		return l.tracker.Status()
	}
	cfg, err := l.ro.Load()
	if err != nil {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.record(trigger, reload.Rejected, nil, nil, err)
	}
	return r.Reload(ctx, cfg, changedFiles, trigger)
}

// watch reloads on changes of the pipeline's files until ctx ends; the returned function
// stops watching.
func (r *Running) watch(ctx context.Context) (func(), error) {
	l := r.live
	debounce := l.ro.WatchDebounce
	if debounce <= 0 {
		debounce = 300 * time.Millisecond
	}
	w, err := reload.NewWatcher(l.plan.Pipeline.Files(), debounce)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-w.Errors():
				l.plan.opts.Logger.Warn("watching the pipeline's files", "err", err)
			case files := <-w.Changes():
				names := make([]string, len(files))
				for i, f := range files {
					names[i] = filepath.Base(f)
				}
				st := r.ReloadFiles(ctx, "file change: "+strings.Join(names, ", "), files)
				if st.Result == reload.Applied {
					l.mu.Lock()
					files := l.plan.Pipeline.Files()
					l.mu.Unlock()
					if err := w.Set(files); err != nil {
						l.plan.opts.Logger.Warn("watching the pipeline's files", "err", err)
					}
				}
			}
		}
	}()
	return func() { w.Close(); <-done }, nil
}
