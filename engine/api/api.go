// Package api serves the HTTP side of a pipeline: the query and live-stream routes declared
// under api: in the pipeline file, the operational endpoints (/-/healthy, /-/ready,
// /-/metrics) and a small dashboard.
//
// Table routes answer GET requests from a store.Store; their filters are expr-lang
// expressions over the request, compiled once when the server is built. Stream routes relay
// a topic to browsers as Server-Sent Events through one shared consumer per topic, so the
// number of connected clients never changes the load on the broker or the pipeline.
//
// The server holds out against abusive clients (limits.go): read, write and idle timeouts,
// a connection limit, request head and URL limits answered with 431 and 414, and a
// listener that survives failed accepts (engine/netguard).
package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/netguard"
	"github.com/eventops/eventops-engine/engine/store"
	"github.com/eventops/eventops-engine/engine/telemetry"
)

// Defaults for the tunables of Deps.
const (
	DefaultHeartbeat    = 15 * time.Second
	DefaultClientBuffer = 256
	DefaultReplayEvents = 1024
)

// Deps is what the server needs from the rest of the engine.
type Deps struct {
	// Stores maps a table name to the store that holds it.
	Stores map[string]store.Store
	// KafkaOpts connect the SSE consumers to the broker (seed brokers, client id, ...).
	KafkaOpts []kgo.Opt
	// Metrics is where SSE gauges and counters go and what /-/metrics serves. Nil makes a
	// private set.
	Metrics *telemetry.Metrics
	// Ready reports whether the engine is ready to serve (nil error) for /-/ready. Nil means
	// always ready.
	Ready  func() error
	Logger *slog.Logger
	Clock  engine.Clock
	// Heartbeat is how often an idle SSE stream gets a comment line, which keeps proxies from
	// closing it and lets the server notice a client that went away. Default 15s.
	Heartbeat time.Duration
	// ClientBuffer is how many events may wait for one SSE client before it is disconnected
	// as too slow. Default 256.
	ClientBuffer int
	// ReplayEvents is how many recent events per topic are kept in memory for clients that
	// reconnect with Last-Event-ID. Older positions are read back from the broker. Default 1024.
	ReplayEvents int
	// Pos gives positions of config paths ("api.routes[0]", "api.routes[0].table", ...) so
	// that errors about a route point at it; the loader's Pipeline.Pos. Optional.
	Pos map[string]config.Pos
	// Reload, if set, serves POST /-/reload: it reloads the pipeline from its files and
	// returns the outcome (JSON); ReloadStatus serves GET /-/reload.
	Reload       func(ctx context.Context, trigger string) any
	ReloadStatus func() any
	// Dispatchers, if set, returns the alert dispatchers (notify processors) running now,
	// whose silences and alerts /api/v2 serves as Alertmanager's API does, or an error when
	// it cannot tell now (a reload is changing them).
	Dispatchers func() ([]engine.AlertDispatcher, error)
	// Lookups, if set, returns the lookup tables in force now, for topology routes.
	Lookups func() engine.LookupSource
}

// Server is the HTTP server. Build it with New, then Start and Shutdown it.
type Server struct {
	cfg    *config.API
	limits limits
	auth   *authenticator // nil: every request is served (a loopback or insecure API)
	deps   Deps
	app    *fiber.App
	log    *slog.Logger
	// routes are the declared routes, served by their own app that a reload replaces
	// (RoutesFor, UseRoutes); requests already being served (SSE streams) go on in the app
	// that took them.
	routes atomic.Pointer[RouteSet]

	hubsMu sync.Mutex
	hubs   map[string]*hub // by topic
	runCtx context.Context // set by Start: hubs added by a reload run under it

	mu     sync.Mutex
	ln     net.Listener
	cancel context.CancelFunc
	done   chan struct{} // closed by Shutdown: ends every SSE stream
	served chan struct{} // closed when the listener loop returns
	wg     sync.WaitGroup
}

// routeInfo describes a declared route for /-/routes, which the dashboard reads.
type routeInfo struct {
	Path   string   `json:"path"`
	Kind   string   `json:"kind"` // "table" or "stream"
	Table  string   `json:"table,omitempty"`
	Topic  string   `json:"topic,omitempty"`
	Event  string   `json:"event,omitempty"`
	Params []string `json:"params,omitempty"`
	// LatestBy: the route answers the newest row of each value of this column (what fires
	// now, on the alerts table).
	LatestBy string `json:"latest_by,omitempty"`
	// Limit is the most rows the route answers (a chart says when it was reached).
	Limit int `json:"limit,omitempty"`
}

// New builds the server and compiles every route. Problems in the config (an expression that
// does not compile, a table no store holds, an unknown column) come back as config.Errors
// placed at the route.
func New(cfg *config.API, deps Deps) (*Server, error) {
	if cfg == nil {
		cfg = &config.API{}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Clock == nil {
		deps.Clock = engine.WallClock{}
	}
	if deps.Metrics == nil {
		deps.Metrics = telemetry.New()
	}
	if deps.Heartbeat <= 0 {
		deps.Heartbeat = DefaultHeartbeat
	}
	if deps.ClientBuffer <= 0 {
		deps.ClientBuffer = DefaultClientBuffer
	}
	if deps.ReplayEvents <= 0 {
		deps.ReplayEvents = DefaultReplayEvents
	}
	s := &Server{
		cfg:    cfg,
		limits: limitsOf(cfg),
		deps:   deps,
		log:    deps.Logger,
		hubs:   map[string]*hub{},
		done:   make(chan struct{}),
	}
	s.app = fiber.New(s.limits.fiberConfig(fiber.Config{
		DisableStartupMessage: true,
		ErrorHandler:          s.handleError,
		// Route handlers keep request strings (query values) past the handler in logs and
		// store queries; immutable strings make that safe.
		Immutable: true,
	}))

	var err error
	if s.auth, err = newAuthenticator(cfg.Auth); err != nil {
		return nil, err
	}
	s.app.Use(s.limitURL)
	s.app.Use(s.guard)
	s.app.Get("/-/healthy", func(c *fiber.Ctx) error { return c.SendString("OK\n") })
	s.app.Get("/-/ready", s.handleReady)
	if deps.ReloadStatus != nil {
		s.app.Get("/-/reload", func(c *fiber.Ctx) error { return c.JSON(deps.ReloadStatus()) })
	}
	if deps.Reload != nil {
		s.app.Post("/-/reload", func(c *fiber.Ctx) error {
			st := deps.Reload(c.UserContext(), "POST /-/reload")
			if r, ok := st.(interface{ Rejected() bool }); ok && r.Rejected() {
				c.Status(fiber.StatusUnprocessableEntity)
			}
			return c.JSON(st)
		})
	}
	s.app.Get("/-/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(deps.Metrics.Registry, promhttp.HandlerOpts{})))
	s.app.Get("/-/routes", func(c *fiber.Ctx) error { return c.JSON(s.routes.Load().info) })
	s.serveAlertmanagerAPI()
	if cfg.Dashboard.On() {
		s.serveDashboard()
	}
	// Every other request goes to the declared routes in force.
	s.app.Use(func(c *fiber.Ctx) error {
		s.routes.Load().handler(c.Context())
		return nil
	})
	rs, err := s.RoutesFor(cfg, deps.Stores, deps.Pos)
	if err != nil {
		return nil, err
	}
	s.UseRoutes(rs)
	return s, nil
}

// RouteSet is a compiled set of declared routes, ready to serve.
type RouteSet struct {
	app     *fiber.App
	handler fasthttp.RequestHandler
	info    []routeInfo
	// dashboard is what /-/dashboard answers: it follows the routes through a reload.
	dashboard dashboardView
}

// RoutesFor compiles cfg's routes against stores, without serving them: a reload checks
// its routes this way while the old ones serve. pos places errors (the loader's
// Pipeline.Pos). Problems come back as config.Errors placed at the route.
func (s *Server) RoutesFor(cfg *config.API, stores map[string]store.Store, pos map[string]config.Pos) (*RouteSet, error) {
	if cfg == nil {
		cfg = &config.API{}
	}
	at := positions(s.deps.Pos)
	if pos != nil {
		at = positions(pos)
	}
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		ErrorHandler:          s.handleError,
		Immutable:             true,
	})
	rs := &RouteSet{app: app, info: []routeInfo{}}
	var errs config.Errors
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		path := fmt.Sprintf("api.routes[%d]", i)
		switch {
		case (r.Topology != "" || r.Learned != "") && (r.Table != "" || r.Stream != ""):
			errs.Add(at.of(path), path, "a route has one of table, stream and topology (or learned)")
		case r.Topology != "" || r.Learned != "":
			tr := &topologyRoute{srv: s, lookup: r.Topology, learned: r.Learned, maxAge: r.MaxAge.D()}
			app.Get(r.Path, tr.serve)
			rs.info = append(rs.info, routeInfo{Path: r.Path, Kind: "topology", Table: strings.Trim(r.Topology+","+r.Learned, ",")})
		case r.Table != "" && r.Stream != "":
			errs.Add(at.of(path), path, "a route has either table or stream, not both")
		case r.Table != "":
			h, err := s.buildTableRoute(r, path, stores, at)
			if err != nil {
				errs.Append(at.of(path), path, err)
				continue
			}
			app.Get(r.Path, h.serve)
			rs.info = append(rs.info, routeInfo{Path: r.Path, Kind: "table", Table: r.Table, Params: h.params, LatestBy: r.LatestBy, Limit: r.Limit})
		case r.Stream != "":
			hb := s.hub(r.Stream)
			st := &streamRoute{srv: s, hub: hb, path: r.Path, event: eventName(r.Path)}
			// Zero-valued series from the start, so dashboards see the route before a client.
			s.deps.Metrics.SSEClients.WithLabelValues(r.Path)
			s.deps.Metrics.SSEDropped.WithLabelValues(r.Path)
			app.Get(r.Path, st.serve)
			rs.info = append(rs.info, routeInfo{Path: r.Path, Kind: "stream", Topic: r.Stream, Event: st.event})
		default:
			errs.Add(at.of(path), path, "a route needs table or stream")
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	rs.handler = app.Handler()
	rs.dashboard = dashboardFor(&cfg.Dashboard, rs.info)
	return rs, nil
}

// UseRoutes serves rs from now on. Hubs of topics the server did not stream yet start now
// (when the server runs; otherwise Start starts them).
func (s *Server) UseRoutes(rs *RouteSet) {
	s.hubsMu.Lock()
	runCtx := s.runCtx
	var start []*hub
	if runCtx != nil {
		for _, h := range s.hubs {
			if !h.started {
				h.started = true
				start = append(start, h)
			}
		}
	}
	s.hubsMu.Unlock()
	for _, h := range start {
		if err := h.position(runCtx); err != nil {
			s.log.Warn("api: SSE consumer not positioned yet; retrying in the background", "topic", h.topic, "err", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			h.run(runCtx)
		}()
	}
	s.routes.Store(rs)
}

// Announce sends a notice to every open SSE stream: an event of type name (such as
// "reload") whose data is v as JSON. Notices carry no id and are not replayed, so a client
// that reconnects resumes its topic where it was.
func (s *Server) Announce(name string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		s.log.Warn("api: SSE notice not sent", "event", name, "err", err)
		return
	}
	ev := &event{name: name, data: data}
	s.hubsMu.Lock()
	hubs := slices.Collect(maps.Values(s.hubs))
	s.hubsMu.Unlock()
	for _, h := range hubs {
		h.notify(ev)
	}
}

// hub returns the hub of topic, made (not started) if new.
func (s *Server) hub(topic string) *hub {
	s.hubsMu.Lock()
	defer s.hubsMu.Unlock()
	hb := s.hubs[topic]
	if hb == nil {
		hb = newHub(topic, s.deps.KafkaOpts, s.deps.ReplayEvents, s.auth.hasTenants(), s.log)
		s.hubs[topic] = hb
	}
	return hb
}

// positions are the config paths' positions (the loader's Pipeline.Pos), for errors about
// routes.
type positions map[string]config.Pos

// of returns the position of the config path, or of the api section.
func (ps positions) of(path string) config.Pos {
	if p, ok := ps[path]; ok {
		return p
	}
	return ps["api"]
}

// or returns the position of path, else of fallback.
func (ps positions) or(path, fallback string) config.Pos {
	if p, ok := ps[path]; ok {
		return p
	}
	return ps.of(fallback)
}

// Start positions the SSE consumers at the end of their topics and starts serving on
// cfg.Listen. It returns once the listener is bound; serving continues until Shutdown.
func (s *Server) Start(ctx context.Context) error {
	listen := s.cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:8088"
	}
	if err := exposedWithoutAuth(listen, s.cfg); err != nil {
		return err
	}
	guarded, err := netguard.Listen("tcp", listen, netguard.Options{Name: "api", Logger: s.log})
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w", listen, err)
	}
	var inner net.Listener = guarded
	if s.cfg.TLS != nil {
		tc, err := tlsConfig(s.cfg.TLS, s.log.Warn)
		if err != nil {
			guarded.Close()
			return err
		}
		inner = tls.NewListener(guarded, tc) // inside clientListener: its conns see requests decrypted
	}
	ln := clientListener{inner}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.mu.Lock()
	s.ln, s.cancel = ln, cancel
	s.served = make(chan struct{})
	s.mu.Unlock()

	// Position every consumer before accepting clients, so that an event produced after a
	// client connected is always one the hub will see.
	s.hubsMu.Lock()
	s.runCtx = runCtx
	hubs := slices.Collect(maps.Values(s.hubs))
	for _, h := range hubs {
		h.started = true
	}
	s.hubsMu.Unlock()
	for _, h := range hubs {
		if err := h.position(ctx); err != nil {
			s.log.Warn("api: SSE consumer not positioned yet; retrying in the background", "topic", h.topic, "err", err)
		}
	}
	for _, h := range hubs {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			h.run(runCtx)
		}()
	}
	go func() {
		defer close(s.served)
		if err := s.app.Listener(ln); err != nil {
			s.log.Error("api: server stopped", "err", err)
		}
	}()
	s.log.Info("api: listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the address the server listens on (useful with port 0), or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown ends SSE streams, stops the consumers and waits for requests in flight until
// ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	cancel, served := s.cancel, s.served
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	err := s.app.ShutdownWithContext(ctx)
	s.wg.Wait()
	if served != nil {
		select {
		case <-served:
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		}
	}
	return err
}

func (s *Server) handleReady(c *fiber.Ctx) error {
	if s.deps.Ready != nil {
		if err := s.deps.Ready(); err != nil {
			return c.Status(fiber.StatusServiceUnavailable).SendString("not ready: " + err.Error() + "\n")
		}
	}
	return c.SendString("OK\n")
}

// errorBody is the JSON every error response carries.
type errorBody struct {
	Error string `json:"error"`
}

func (s *Server) handleError(c *fiber.Ctx, err error) error {
	code := fiber.StatusInternalServerError
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code = fe.Code
	}
	if code == fiber.StatusRequestHeaderFieldsTooLarge {
		return s.headTooLarge(c)
	}
	return c.Status(code).JSON(errorBody{Error: err.Error()})
}

func jsonError(c *fiber.Ctx, code int, format string, args ...any) error {
	return c.Status(code).JSON(errorBody{Error: fmt.Sprintf(format, args...)})
}

// exposedWithoutAuth refuses to serve, without auth, on an address other machines reach,
// unless insecure says so: lint says it first, this holds for pipelines built otherwise.
func exposedWithoutAuth(listen string, cfg *config.API) error {
	if cfg.Auth != nil || cfg.Insecure {
		return nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("api: listen address %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("api: refusing to listen on %q, which other machines reach, without auth: add api.auth, listen on 127.0.0.1, or set api.insecure: true", listen)
}
