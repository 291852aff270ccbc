package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/eventops/eventops-engine/engine/netguard"
)

// Server serves a Store over the Confluent Schema Registry API.
type Server struct {
	store *Store
	log   *slog.Logger
	srv   *http.Server
	ln    net.Listener
}

// NewServer returns a server of store; Start makes it listen.
func NewServer(store *Store, log *slog.Logger) *Server {
	s := &Server{store: store, log: log}
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	return s
}

// Handler is the API, for tests and for mounting elsewhere.
func (s *Server) Handler() http.Handler { return s.srv.Handler }

// Start listens on addr and serves until Shutdown.
func (s *Server) Start(addr string) error {
	ln, err := netguard.Serve(addr, netguard.Options{Name: "schema registry", Logger: s.log}, s.srv.Serve, http.ErrServerClosed)
	if err != nil {
		return fmt.Errorf("schema registry: %w", err)
	}
	s.ln = ln
	return nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops the server.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { reply(w, map[string]any{}, nil) })
	mux.HandleFunc("GET /schemas/types", func(w http.ResponseWriter, _ *http.Request) { reply(w, []string{Avro, JSON, Protobuf}, nil) })
	mux.HandleFunc("GET /schemas/ids/{id}", s.schemaByID)
	mux.HandleFunc("GET /schemas/ids/{id}/schema", s.rawByID)
	mux.HandleFunc("GET /schemas/ids/{id}/versions", s.usages)
	mux.HandleFunc("GET /schemas/ids/{id}/subjects", s.usageSubjects)
	mux.HandleFunc("GET /subjects", func(w http.ResponseWriter, _ *http.Request) { reply(w, s.store.Subjects(), nil) })
	mux.HandleFunc("GET /subjects/{subject}/versions", s.versions)
	mux.HandleFunc("GET /subjects/{subject}/versions/{version}", withVersion(s.version))
	mux.HandleFunc("GET /subjects/{subject}/versions/{version}/schema", withVersion(s.rawVersion))
	mux.HandleFunc("POST /subjects/{subject}/versions", s.register)
	mux.HandleFunc("POST /subjects/{subject}", s.lookup)
	mux.HandleFunc("DELETE /subjects/{subject}", s.deleteSubject)
	mux.HandleFunc("DELETE /subjects/{subject}/versions/{version}", withVersion(s.deleteVersion))
	mux.HandleFunc("GET /config", s.getConfig)
	mux.HandleFunc("PUT /config", s.putConfig)
	mux.HandleFunc("GET /config/{subject}", s.getConfig)
	mux.HandleFunc("PUT /config/{subject}", s.putConfig)
	mux.HandleFunc("DELETE /config/{subject}", s.deleteConfig)
	mux.HandleFunc("POST /compatibility/subjects/{subject}/versions/{version}", withVersion(s.checkCompatibility))
	mux.HandleFunc("GET /mode", func(w http.ResponseWriter, _ *http.Request) { reply(w, map[string]string{"mode": "READWRITE"}, nil) })
	return mux
}

// reply writes v as the API's JSON, or err as its error object.
func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	if err != nil {
		var re *Error
		if !errors.As(err, &re) {
			re = &Error{Status: 500, Code: 50001, Message: err.Error()}
		}
		w.WriteHeader(re.Status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error_code": re.Code, "message": re.Message})
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

// versionParam is the request's {version}: a number, "latest" or -1.
func versionParam(r *http.Request) (int, error) {
	v := r.PathValue("version")
	if v == "latest" {
		return -1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n == 0 || n < -1 {
		return 0, &Error{Status: 422, Code: codeInvalidVersion, Message: fmt.Sprintf("The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", v)}
	}
	return n, nil
}

func idParam(r *http.Request) int {
	n, _ := strconv.Atoi(r.PathValue("id"))
	return n
}

func (s *Server) schemaByID(w http.ResponseWriter, r *http.Request) {
	f, err := s.store.ByID(idParam(r))
	reply(w, struct {
		Schema     string      `json:"schema"`
		Type       string      `json:"schemaType,omitempty"`
		References []Reference `json:"references,omitempty"`
	}{f.Schema, f.Type, f.References}, err)
}

func (s *Server) rawByID(w http.ResponseWriter, r *http.Request) {
	f, err := s.store.ByID(idParam(r))
	raw(w, f.Schema, err)
}

// raw writes a schema's own text (for JSON-based types, the JSON itself).
func raw(w http.ResponseWriter, text string, err error) {
	if err != nil {
		reply(w, nil, err)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	_, _ = w.Write([]byte(text))
}

func (s *Server) usages(w http.ResponseWriter, r *http.Request) {
	us, err := s.store.Usages(idParam(r))
	reply(w, us, err)
}

func (s *Server) usageSubjects(w http.ResponseWriter, r *http.Request) {
	us, err := s.store.Usages(idParam(r))
	names := []string{}
	for _, u := range us {
		if !slices.Contains(names, u.Subject) {
			names = append(names, u.Subject)
		}
	}
	reply(w, names, err)
}

func (s *Server) versions(w http.ResponseWriter, r *http.Request) {
	vs, err := s.store.Versions(r.PathValue("subject"))
	reply(w, vs, err)
}

// withVersion is a handler of a path with {version}: fn gets it parsed, or the request is
// answered with why it is not a version.
func withVersion(fn func(w http.ResponseWriter, r *http.Request, v int)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := versionParam(r)
		if err != nil {
			reply(w, nil, err)
			return
		}
		fn(w, r, v)
	}
}

func (s *Server) version(w http.ResponseWriter, r *http.Request, v int) {
	f, err := s.store.Version(r.PathValue("subject"), v)
	reply(w, f, err)
}

func (s *Server) rawVersion(w http.ResponseWriter, r *http.Request, v int) {
	f, err := s.store.Version(r.PathValue("subject"), v)
	raw(w, f.Schema, err)
}

// schemaRequest is the body of a registration, lookup or compatibility check.
type schemaRequest struct {
	Schema     string      `json:"schema"`
	Type       string      `json:"schemaType"`
	References []Reference `json:"references"`
}

func readSchema(r *http.Request) (schemaRequest, error) {
	var req schemaRequest
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 16<<20)).Decode(&req); err != nil {
		return req, &Error{Status: 422, Code: 42206, Message: "the body is not a schema request: " + err.Error()}
	}
	return req, nil
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	req, err := readSchema(r)
	if err != nil {
		reply(w, nil, err)
		return
	}
	id, err := s.store.Register(r.PathValue("subject"), req.Type, req.Schema, req.References)
	if err == nil {
		s.log.Info("schema registered", "subject", r.PathValue("subject"), "id", id)
	}
	reply(w, map[string]int{"id": id}, err)
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) {
	req, err := readSchema(r)
	if err != nil {
		reply(w, nil, err)
		return
	}
	f, err := s.store.Lookup(r.PathValue("subject"), req.Type, req.Schema)
	reply(w, f, err)
}

func (s *Server) deleteSubject(w http.ResponseWriter, r *http.Request) {
	vs, err := s.store.Delete(r.PathValue("subject"), 0)
	reply(w, vs, err)
}

func (s *Server) deleteVersion(w http.ResponseWriter, r *http.Request, v int) {
	vs, err := s.store.Delete(r.PathValue("subject"), v)
	if err != nil {
		reply(w, nil, err)
		return
	}
	reply(w, vs[0], nil)
}

func (s *Server) getConfig(w http.ResponseWriter, r *http.Request) {
	level, _ := s.store.Compatibility(r.PathValue("subject"))
	reply(w, map[string]string{"compatibilityLevel": level}, nil)
}

func (s *Server) putConfig(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Compatibility string `json:"compatibility"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20)).Decode(&body); err != nil {
		reply(w, nil, &Error{Status: 422, Code: codeInvalidCompat, Message: "the body is not {\"compatibility\": LEVEL}: " + err.Error()})
		return
	}
	err := s.store.SetCompatibility(r.PathValue("subject"), body.Compatibility)
	reply(w, map[string]string{"compatibility": body.Compatibility}, err)
}

func (s *Server) deleteConfig(w http.ResponseWriter, r *http.Request) {
	before, _ := s.store.Compatibility(r.PathValue("subject"))
	err := s.store.SetCompatibility(r.PathValue("subject"), "")
	reply(w, map[string]string{"compatibilityLevel": before}, err)
}

func (s *Server) checkCompatibility(w http.ResponseWriter, r *http.Request, v int) {
	req, err := readSchema(r)
	if err != nil {
		reply(w, nil, err)
		return
	}
	problems, err := s.store.Check(r.PathValue("subject"), v, req.Type, req.Schema)
	reply(w, map[string]any{"is_compatible": len(problems) == 0, "messages": problems}, err)
}
