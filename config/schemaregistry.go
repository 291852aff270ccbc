package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"

	"github.com/eventops/eventops-engine/engine/protofile"
)

// checkRegistry checks schema_registry and what uses it: where the registry is, that the
// schemas registered at start parse, and that every format: confluent has a registry.
func (l *loader) checkRegistry(p *Pipeline) {
	r := p.Registry
	if r != nil {
		l.checkRegistryPlace(p, r)
		for _, name := range slices.Sorted(maps.Keys(r.Subjects)) {
			at := "schema_registry.subjects." + name
			sub := r.Subjects[name]
			l.checkRegistrySubject(&sub, at)
			r.Subjects[name] = sub
		}
	}
	for i, s := range p.Streams {
		l.checkConfluentInput(p, s.Input, indexPath("streams", i)+".input")
		l.checkConfluentOutput(p, s.Output, indexPath("streams", i)+".output")
	}
	for i, s := range p.Sinks {
		l.checkConfluentInput(p, Input{Topic: s.From, Format: s.Format}, indexPath("sinks", i))
	}
}

func (l *loader) checkRegistryPlace(p *Pipeline, r *SchemaRegistry) {
	switch {
	case r.URL != "" && r.Listen != "":
		l.errs.Add(l.posOf("schema_registry.listen"), "schema_registry.listen", "set url (an external registry) or listen (the engine's own), not both")
	case r.URL == "" && r.Listen == "":
		l.errs.Add(l.posOf("schema_registry"), "schema_registry", "set listen: HOST:PORT to serve the engine's own registry next to its embedded broker, or url: to use Redpanda's or Confluent's")
	case r.Listen != "" && p.Broker.Embedded == nil:
		l.errs.Add(l.posOf("schema_registry.listen"), "schema_registry.listen", "the engine serves its own registry next to its embedded broker only: with external brokers, set url: to their registry (Redpanda: http://HOST:8081)")
	case r.URL != "" && !strings.HasPrefix(r.URL, "http://") && !strings.HasPrefix(r.URL, "https://"):
		l.errs.Add(l.posOf("schema_registry.url"), "schema_registry.url", "url %q must start with http:// or https://", r.URL)
	}
	if r.Listen != "" {
		suggest := func(port string) string { return fmt.Sprintf("%q", "127.0.0.1:"+port) }
		host, problem := splitAddress(r.Listen, "8081", suggest)
		switch {
		case problem != "":
			l.errs.Add(l.posOf("schema_registry.listen"), "schema_registry.listen", "listen address %q %s", r.Listen, problem)
		case !isLoopback(host):
			// It has no authentication: anyone who reaches it could change or delete schemas.
			l.errs.Add(l.posOf("schema_registry.listen"), "schema_registry.listen", "listen address %q is not a loopback address: the engine's registry, like its embedded broker, serves this machine only (it has no authentication); write %s", r.Listen, suggest(strings.TrimPrefix(r.Listen[strings.LastIndex(r.Listen, ":"):], ":")))
		}
	}
}

// checkRegistrySubject resolves a subject's file and checks that it is a schema of its type.
func (l *loader) checkRegistrySubject(sub *RegistrySubject, at string) {
	before := len(l.errs)
	l.resolveFile(&sub.File, at+".file")
	if len(l.errs) > before {
		return
	}
	if sub.Type == "" {
		sub.Type = typeOfSchemaFile(sub.File)
	}
	if sub.Type == "" {
		l.errs.Add(l.posOf(at+".file"), at+".file", "cannot tell the schema type of %s from its extension: set type: AVRO, JSON or PROTOBUF", filepath.Base(sub.File))
		return
	}
	data, err := os.ReadFile(sub.File)
	if err == nil {
		err = parseSchema(sub.Type, data)
	}
	if err != nil {
		l.errs.Add(l.posOf(at+".file"), at+".file", "%s is not a valid %s schema: %v", filepath.Base(sub.File), sub.Type, err)
	}
}

func typeOfSchemaFile(file string) string {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".avsc":
		return "AVRO"
	case ".json":
		return "JSON"
	case ".proto":
		return "PROTOBUF"
	}
	return ""
}

// parseSchema checks that data is a schema of typ.
func parseSchema(typ string, data []byte) error {
	switch typ {
	case "AVRO":
		_, err := avro.ParseBytesWithCache(data, "", &avro.SchemaCache{})
		return err
	case "PROTOBUF":
		_, err := protofile.Compile(string(data))
		return err
	}
	var v any
	return json.Unmarshal(data, &v)
}

func (l *loader) checkConfluentInput(p *Pipeline, in Input, at string) {
	if in.Format != "confluent" {
		return
	}
	switch {
	case p.Registry == nil:
		l.errs.Add(l.posOf(at+".format"), at+".format", "format: confluent reads schemas from a registry: add schema_registry (listen: to serve the engine's own, url: for Redpanda's or Confluent's)")
	case len(in.Receivers()) > 0:
		l.errs.Add(l.posOf(at+".format"), at+".format", "the topic's receivers store JSON: format: confluent would refuse what they store")
	case in.File != nil || in.Stdin != nil:
		l.errs.Add(l.posOf(at+".format"), at+".format", "format: confluent is for topics; file and stdin are newline-delimited JSON")
	}
}

func (l *loader) checkConfluentOutput(p *Pipeline, o Output, at string) {
	switch {
	case o.Format != "confluent" && o.Subject != "":
		l.errs.Add(l.posOf(at+".subject"), at+".subject", "subject is the registry subject of format: confluent; set format: confluent, or remove it")
	case o.Format != "confluent":
	case o.Plugin != nil:
		l.errs.Add(l.posOf(at+".format"), at+".format", "format: confluent is how the topic output writes values; %s writes its own way", o.Plugin.Type)
	case p.Registry == nil:
		l.errs.Add(l.posOf(at+".format"), at+".format", "format: confluent writes with a registry's schema: add schema_registry (listen: to serve the engine's own, url: for Redpanda's or Confluent's)")
	case p.Registry.URL == "" && p.Registry.Subjects[o.RegistrySubject()].File == "":
		l.errs.Add(l.posOf(at+".format"), at+".format", "subject %q is not registered at start: add it under schema_registry.subjects (%s: {file: …avsc}), or set subject:", o.RegistrySubject(), o.RegistrySubject())
	}
}
