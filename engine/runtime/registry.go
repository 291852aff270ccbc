package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/confluent"
	"github.com/eventops/eventops-engine/engine/registry"
)

// schemaRegistry is the pipeline's schema registry (schema_registry): the engine's own,
// served next to its embedded broker, or an external one; and what the streams use it with.
type schemaRegistry struct {
	server  *registry.Server // nil for an external registry
	client  *sr.Client
	decoder *confluent.Decoder // shared by every format: confluent input: a schema id is one schema
}

// registryFile is where the engine's own registry keeps its schemas, in the broker's data_dir.
const registryFile = "schema-registry.json"

// startRegistry serves the engine's own registry (schema_registry.listen) or connects to an
// external one, and registers the subjects the file declares. Nil without schema_registry.
func startRegistry(ctx context.Context, cfg *config.Pipeline, log *slog.Logger) (*schemaRegistry, error) {
	rc := cfg.Registry
	if rc == nil {
		return nil, nil
	}
	r := &schemaRegistry{}
	url := rc.URL
	if rc.Listen != "" {
		store, err := registry.Open(filepath.Join(cfg.Broker.Embedded.DataDir, registryFile))
		if err != nil {
			return nil, err
		}
		r.server = registry.NewServer(store, log.With("component", "schema registry"))
		if err := r.server.Start(rc.Listen); err != nil {
			return nil, err
		}
		url = "http://" + r.server.Addr()
		log.Info("schema registry listening", "addr", r.server.Addr())
	}
	client, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		r.stop(ctx)
		return nil, fmt.Errorf("schema registry %s: %w", url, err)
	}
	r.client, r.decoder = client, confluent.NewDecoder(client)
	if err := r.registerSubjects(ctx, rc, log); err != nil {
		r.stop(ctx)
		return nil, err
	}
	return r, nil
}

// registerSubjects registers each declared subject's schema (a new version only when it
// differs from those the subject has).
func (r *schemaRegistry) registerSubjects(ctx context.Context, rc *config.SchemaRegistry, log *slog.Logger) error {
	for _, name := range slices.Sorted(maps.Keys(rc.Subjects)) {
		sub := rc.Subjects[name]
		text, err := os.ReadFile(sub.File)
		if err != nil {
			return fmt.Errorf("schema_registry.subjects.%s: %w", name, err)
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		ss, err := r.client.CreateSchema(cctx, name, sr.Schema{Schema: string(text), Type: schemaType(sub.Type)})
		cancel()
		if err != nil {
			return fmt.Errorf("schema_registry.subjects.%s: registering %s: %w", name, sub.File, err)
		}
		log.Info("schema registered", "subject", name, "id", ss.ID, "version", ss.Version, "file", sub.File)
	}
	return nil
}

func schemaType(t string) sr.SchemaType {
	switch t {
	case "JSON":
		return sr.TypeJSON
	case "PROTOBUF":
		return sr.TypeProtobuf
	}
	return sr.TypeAvro
}

// encoder is a format: confluent output's encoder, for sp's subject.
func (r *schemaRegistry) encoder(ctx context.Context, sp *StreamPlan) (*confluent.Encoder, error) {
	if r == nil {
		return nil, fmt.Errorf("format: confluent needs schema_registry")
	}
	return confluent.NewEncoder(ctx, r.client, sp.Config.Output.RegistrySubject())
}

func (r *schemaRegistry) stop(ctx context.Context) {
	if r != nil && r.server != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = r.server.Shutdown(ctx)
	}
}

// RegistryAddr is the address the engine's own schema registry listens on ("" if none).
func (r *Running) RegistryAddr() string {
	if reg := r.live.ro.registry; reg != nil && reg.server != nil {
		return reg.server.Addr()
	}
	return ""
}
