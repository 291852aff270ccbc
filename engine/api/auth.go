package api

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/eventops/eventops-engine/config"
)

// principal is who a request authenticated as.
type principal struct {
	name   string
	admin  bool
	tenant string // the one tenant it may see; "" for every tenant
}

// principalKey is where guard leaves the request's principal (fiber Locals).
const principalKey = "eventops.principal"

// principalOf is the request's principal; nil when the API has no auth.
func principalOf(c *fiber.Ctx) *principal {
	p, _ := c.Locals(principalKey).(*principal)
	return p
}

// tokenEntry is an accepted token: only its SHA-256 is kept.
type tokenEntry struct {
	hash [sha256.Size]byte
	who  principal
}

// authenticator knows the accepted tokens.
type authenticator struct {
	tokens      []tokenEntry
	metricsOpen bool
}

// newAuthenticator reads the tokens (from the file, or as written after ${ENV} was put in)
// and keeps their hashes. nil cfg is no auth.
func newAuthenticator(cfg *config.APIAuth) (*authenticator, error) {
	if cfg == nil {
		return nil, nil
	}
	a := &authenticator{metricsOpen: cfg.Metrics == "open"}
	for i, t := range cfg.Tokens {
		secret, err := tokenSecret(t)
		if err != nil {
			return nil, fmt.Errorf("api.auth.tokens[%d] (%s): %w", i, t.Name, err)
		}
		who := principal{name: t.Name, admin: slices.Contains(t.Scopes, "admin"), tenant: t.Tenant}
		a.tokens = append(a.tokens, tokenEntry{hash: sha256.Sum256([]byte(secret)), who: who})
	}
	return a, nil
}

// hasTenants says whether a token is bound to a tenant (nil: no auth, none is).
func (a *authenticator) hasTenants() bool {
	if a == nil {
		return false
	}
	for _, t := range a.tokens {
		if t.who.tenant != "" {
			return true
		}
	}
	return false
}

// minTokenLength is lint's bound, checked again on what a token file holds.
const minTokenLength = 16

func tokenSecret(t config.APIToken) (string, error) {
	if t.File == "" {
		return t.Token, nil
	}
	f, err := os.Open(t.File)
	if err != nil {
		return "", fmt.Errorf("reading the token file: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("the token file %s is empty", t.File)
	}
	secret := strings.TrimSpace(line)
	if len(secret) < minTokenLength {
		return "", fmt.Errorf("the token in %s has %d characters; use at least %d random ones", t.File, len(secret), minTokenLength)
	}
	return secret, nil
}

// identify finds the token the request carries. Every accepted hash is compared, in
// constant time, whether or not an earlier one matched, so the time taken tells nothing.
func (a *authenticator) identify(c *fiber.Ctx) (*principal, string) {
	secret := presentedToken(c)
	if secret == "" {
		return nil, "missing"
	}
	h := sha256.Sum256([]byte(secret))
	var found *principal
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(h[:], a.tokens[i].hash[:]) == 1 {
			found = &a.tokens[i].who
		}
	}
	if found == nil {
		return nil, "invalid"
	}
	return found, ""
}

// presentedToken is the bearer token of the Authorization header, or the X-API-Key header.
func presentedToken(c *fiber.Ctx) string {
	if h := c.Get(fiber.HeaderAuthorization); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(token)
		}
		return h // another scheme: a credential presented, which no token matches
	}
	return c.Get("X-API-Key")
}

// open says whether path is served to anyone: health, the dashboard page itself when it is
// served (its data calls are guarded; without it, "/" may be a declared route), and
// /-/metrics when auth leaves it open.
func (s *Server) open(path string) bool {
	switch path {
	case "/-/healthy", "/-/ready":
		return true
	case "/", "/favicon.ico":
		return s.cfg.Dashboard.On()
	case "/-/metrics":
		return s.auth == nil || s.auth.metricsOpen
	}
	return strings.HasPrefix(path, uiPrefix) && s.cfg.Dashboard.On()
}

// guard is the API's access check, before every handler but the open ones: a
// state-changing request from another site is refused whatever it carries; then, with auth,
// a request needs a valid token, with scope admin to change anything.
func (s *Server) guard(c *fiber.Ctx) error {
	if s.cors(c) {
		return nil // a preflight, answered
	}
	if s.open(c.Path()) {
		return c.Next()
	}
	unsafe := !slices.Contains([]string{fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions}, c.Method())
	if unsafe && crossSite(c) {
		return s.refuse(c, fiber.StatusForbidden, "cross_site", nil, "a state-changing request from another site is refused")
	}
	if s.auth == nil {
		return c.Next()
	}
	who, reason := s.auth.identify(c)
	if who == nil {
		c.Set(fiber.HeaderWWWAuthenticate, wwwAuthenticate(reason))
		return s.refuse(c, fiber.StatusUnauthorized, reason, nil, "send a token: Authorization: Bearer TOKEN")
	}
	if unsafe && !who.admin {
		return s.refuse(c, fiber.StatusForbidden, "scope", who, "token %q has no scope admin, which changing anything needs", who.name)
	}
	c.Locals(principalKey, who)
	return c.Next()
}

func wwwAuthenticate(reason string) string {
	if reason == "invalid" {
		return `Bearer realm="eventops", error="invalid_token"`
	}
	return `Bearer realm="eventops"`
}

// refuse counts and logs (without the token) a request refused for its credentials, and
// returns the error that answers it: the handler must return it, and do nothing more.
func (s *Server) refuse(c *fiber.Ctx, code int, reason string, who *principal, format string, args ...any) error {
	s.deps.Metrics.APIAuthFailures.WithLabelValues(reason).Inc()
	name := ""
	if who != nil {
		name = who.name
	}
	s.log.Warn("api: request refused", "reason", reason, "method", c.Method(), "path", c.Path(), "remote", c.IP(), "token", name)
	return fiber.NewError(code, fmt.Sprintf(format, args...))
}

// crossSite says whether a request comes from a page of another site: what the browser
// says (Sec-Fetch-Site), or else an Origin that is not this host.
func crossSite(c *fiber.Ctx) bool {
	if site := c.Get("Sec-Fetch-Site"); site != "" {
		return site != "same-origin" && site != "none"
	}
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host != string(c.Request().Host())
}

// cors adds the CORS headers for an allowed origin, and answers its preflight (true).
func (s *Server) cors(c *fiber.Ctx) bool {
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" || !s.originAllowed(origin) {
		return false
	}
	c.Set(fiber.HeaderAccessControlAllowOrigin, origin)
	c.Vary(fiber.HeaderOrigin)
	if c.Method() != fiber.MethodOptions || c.Get(fiber.HeaderAccessControlRequestMethod) == "" {
		return false
	}
	c.Set(fiber.HeaderAccessControlAllowMethods, "GET, HEAD")
	c.Set(fiber.HeaderAccessControlAllowHeaders, "Authorization, X-API-Key, Last-Event-ID")
	c.Set(fiber.HeaderAccessControlMaxAge, "600")
	c.Status(fiber.StatusNoContent)
	return true
}

func (s *Server) originAllowed(origin string) bool {
	for _, o := range s.cfg.AllowOrigins {
		if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}
