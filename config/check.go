package config

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// check runs the rules that span the whole file, after decoding: references between
// sections, settings that only make sense together, and files the pipeline points at.
// It also records the positions of named things in p.Pos for the build phase.
func (l *loader) check(p *Pipeline) {
	p.Pos = map[string]Pos{}
	// A value that failed to decode holds a zero value; complaining about that zero too
	// ("partitions must be at least 1, got 0") would only repeat the first error.
	decodeErrs := len(l.errs)
	failed := l.failedPaths
	for _, e := range l.errs {
		failed[e.Path] = true
	}
	// Nor is a value that an unset ${VAR} emptied what the user meant ("127.0.0.1:"): the
	// variable's own finding says what to fix.
	for _, w := range l.warns {
		failed[w.Path] = true
	}
	defer func() {
		kept := l.errs[:decodeErrs]
		for _, e := range l.errs[decodeErrs:] {
			if !failed[e.Path] {
				kept = append(kept, e)
			}
		}
		l.errs = kept
	}()
	l.checkVersion(p)
	l.checkBroker(p)
	l.checkBrokerSecurity(&p.Broker)
	l.checkTopics(p)
	l.checkSchemas(p)
	l.checkTopology(p)
	l.checkLookups(p)
	l.checkStreams(p)
	l.checkSinks(p)
	l.checkRegistry(p)
	l.checkAPI(p)
	l.checkClaims(p)
	l.checkReferences(p)
	l.checkProducers(p)
	l.checkCycles(p)
	l.checkTopicLimits(p)
}

// recordOverheadBytes is what a record batch adds around one record (the engine's broker
// package uses the same figure for the producers it configures).
const recordOverheadBytes = 1 << 10

// checkTopicLimits reports topic settings that a stream's records or a slow reader would
// run into: a max.message.bytes smaller than what broker.max_record_bytes lets a stream write
// (every larger record would be refused, and retried without end), and no compaction lag on
// a compacted topic that the pipeline reads (explained as a warning: the trade-off is the
// user's to make).
func (l *loader) checkTopicLimits(p *Pipeline) {
	readers := map[string]bool{}
	for _, s := range p.Streams {
		readers[s.Input.Topic] = true
	}
	for _, s := range p.Sinks {
		readers[s.From] = true
	}
	maxRecord := p.Broker.MaxRecordBytes
	for _, name := range slices.Sorted(maps.Keys(p.Topics)) {
		t := p.Topics[name]
		path := joinPath("topics", name)
		if v, ok := t.Configs["max.message.bytes"]; ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && maxRecord > 0 && n < int64(maxRecord)+recordOverheadBytes {
				at := joinPath(path+".configs", "max.message.bytes")
				l.errs.Add(l.posOf(at), at, "%d bytes is less than broker.max_record_bytes (%d) plus a batch's framing (%d): records the streams may write to %s would be refused by the broker; raise it to at least %d or lower broker.max_record_bytes", n, int64(maxRecord), recordOverheadBytes, name, int64(maxRecord)+recordOverheadBytes)
			}
		}
		if t.Cleanup != "delete" && t.Cleanup != "" && t.MinCompactionLag == 0 && readers[name] {
			at := path + ".min_compaction_lag"
			l.warns.AddWarning(l.posOf(at), at, "with no compaction lag, Kafka or Redpanda may compact %s as soon as a record has a later one of its key: a stream or sink that is behind (a sink whose database is down) then never sees the replaced records; the default 1d keeps them for a day (at the cost of disk), and the embedded broker waits for its readers either way", name)
		}
	}
}

// checkProducers reports topics that are read but that nothing writes: no stream outputs
// to them, they receive no dead letters or side outputs, and they are not marked ingest (written by
// producers outside the pipeline). A stream or sink reading one waits forever, which may be
// intended while the pipeline is being built (a warning); a route streaming one can never
// show anything (an error).
func (l *loader) checkProducers(p *Pipeline) {
	written := map[string]bool{}
	if p.DeadLetter != "" {
		written[p.DeadLetter] = true
	}
	for i, s := range p.Streams {
		for _, w := range l.streamWrites(p, i) {
			written[w.topic] = true // outputs, dead letters and side outputs (late: topics)
		}
		if len(s.Input.Receivers()) > 0 {
			written[s.Input.Topic] = true // what its http and remote_write inputs receive
		}
	}
	// When what a stream writes is itself broken (no output, an undeclared or misspelled
	// topic), which topics are written is not known: say nothing rather than guess.
	for i := range p.Streams {
		prefix := indexPath("streams", i)
		for _, e := range l.errs {
			if strings.HasPrefix(e.Path, prefix+".output") || l.failedPaths[prefix+".output"] {
				return
			}
		}
	}
	unwritten := func(topic string) bool {
		t, declared := p.Topics[topic]
		return topic != "" && declared && !t.Ingest && !written[topic] && !l.failedPaths[joinPath("topics", topic)+".ingest"]
	}
	const hint = "mark it ingest: true under topics: if producers outside the pipeline write to it"
	for i, s := range p.Streams {
		if unwritten(s.Input.Topic) {
			path := indexPath("streams", i) + ".input.topic"
			l.warns.AddWarning(l.posOf(path), path, "nothing in this pipeline writes to topic %q, so stream %q waits for records that never come (%s)", s.Input.Topic, s.Name, hint)
		}
	}
	for i, s := range p.Sinks {
		if unwritten(s.From) {
			path := indexPath("sinks", i) + ".from"
			l.warns.AddWarning(l.posOf(path), path, "nothing in this pipeline writes to topic %q, so this sink stores nothing (%s)", s.From, hint)
		}
	}
	if p.API != nil {
		for i, r := range p.API.Routes {
			if unwritten(r.Stream) {
				path := indexPath("api.routes", i) + ".stream"
				l.errs.Add(l.posOf(path), path, "nothing in this pipeline writes to topic %q, so this route would never send an event (%s)", r.Stream, hint)
			}
		}
	}
}

// checkReferences reports every value tagged ref:"<section>" that names nothing declared
// in that section, with the closest declared name as a suggestion.
func (l *loader) checkReferences(p *Pipeline) {
	for _, r := range l.refs {
		var declared []string
		switch r.section {
		case "topics":
			declared = slices.Sorted(maps.Keys(p.Topics))
		case "schemas":
			declared = slices.Sorted(maps.Keys(p.Schemas))
		case "lookups":
			declared = slices.Sorted(maps.Keys(p.Lookups))
		default:
			l.errs.Add(l.posOf(r.path), r.path, "internal error: unknown reference section %q", r.section)
			continue
		}
		if slices.Contains(declared, r.name) {
			continue
		}
		what := map[string]string{"topics": "topic", "schemas": "schema", "lookups": "lookup table"}[r.section]
		if len(declared) == 0 {
			l.errs.Add(l.posOf(r.path), r.path, "%s %q is not declared: there is no %s: section", what, r.name, r.section)
			continue
		}
		l.errs.Add(l.posOf(r.path), r.path, "%s %q is not declared under %s:%s", what, r.name, r.section, suggestion(r.name, declared))
	}
}

func (l *loader) checkVersion(p *Pipeline) {
	if _, ok := l.nodes["version"]; !ok {
		l.errs.Add(l.posOf(""), "", "missing required field \"version\" (add version: 1 at the top)")
		return
	}
	if p.Version != 1 {
		l.errs.Add(l.posOf("version"), "version", "unsupported version %d: this engine reads version 1", p.Version)
	}
}

func (l *loader) checkBroker(p *Pipeline) {
	b := p.Broker
	switch {
	case len(b.Brokers) > 0 && b.Embedded != nil:
		l.errs.Add(l.keyPosOf("broker.embedded"), "broker", "set exactly one of brokers and embedded, not both")
	case len(b.Brokers) == 0 && b.Embedded == nil:
		l.errs.Add(l.posOf("broker"), "broker", "set one of brokers (an external Redpanda or Kafka cluster, e.g. brokers: [localhost:9092]) or embedded (an in-process broker, e.g. embedded: {data_dir: data/broker})")
	}
	for i, addr := range b.Brokers {
		path := indexPath("broker.brokers", i)
		if _, problem := splitAddress(addr, "9092", func(port string) string { return strconv.Quote("localhost:" + port) }); problem != "" {
			l.errs.Add(l.posOf(path), path, "broker address %q %s", addr, problem)
		}
	}
	if e := b.Embedded; e != nil {
		l.checkEmbeddedListen(e.Listen)
		if e.DataDir == "" {
			l.errs.Add(l.posOf("broker.embedded.data_dir"), "broker.embedded.data_dir", "must not be empty: records persist there")
		}
		if e.CleanerInterval <= 0 {
			l.errs.Add(l.posOf("broker.embedded.cleaner_interval"), "broker.embedded.cleaner_interval", "must be a positive duration, got %s", e.CleanerInterval)
		}
	}
}

// checkEmbeddedListen refuses what the embedded broker would refuse at start: it has no
// authentication, so it listens on a loopback address only.
func (l *loader) checkEmbeddedListen(listen string) {
	const path = "broker.embedded.listen"
	host, problem := splitAddress(listen, "9092", func(port string) string { return strconv.Quote("127.0.0.1:" + port) })
	switch {
	case problem != "":
		l.errs.Add(l.posOf(path), path, "listen address %q %s", listen, problem)
	case !isLoopback(host):
		l.errs.Add(l.posOf(path), path, "listen address %q is not a loopback address: the embedded broker has no authentication, so it listens on 127.0.0.1, ::1 or localhost only (use an external broker under brokers: to serve other machines)", listen)
	}
}

// splitAddress checks a host:port address as the engine's listeners and clients take it.
// It returns the host, or what is wrong with it and how to write it: suggest(port) with
// the port written, when only a port was (the common slip: listen: 8088), or examplePort.
func splitAddress(addr, examplePort string, suggest func(port string) string) (host, problem string) {
	host, port, err := net.SplitHostPort(addr)
	switch {
	case err != nil:
		if _, perr := strconv.ParseUint(addr, 10, 16); perr == nil {
			return "", "must be host:port, not a port alone: write " + suggest(addr)
		}
		return "", "must be host:port, e.g. " + suggest(examplePort)
	case port == "":
		return "", "has no port after the colon: write " + suggest(examplePort)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Sprintf("has port %q, which is not a number from 0 to 65535", port)
	}
	return host, ""
}

// isLoopback reports whether host only reaches this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkBrokerSecurity checks broker.tls and broker.sasl: their files, what each mechanism
// needs, and what an embedded broker can do.
func (l *loader) checkBrokerSecurity(b *Broker) {
	if t := b.TLS; t != nil {
		if b.Embedded != nil {
			l.errs.Add(l.keyPosOf("broker.tls"), "broker.tls", "tls is for external brokers: the embedded broker listens on this machine only")
		}
		for _, f := range []struct {
			v    *string
			name string
		}{{&t.CA, "ca"}, {&t.Cert, "cert"}, {&t.Key, "key"}} {
			if *f.v != "" {
				l.resolveFile(f.v, "broker.tls."+f.name)
			}
		}
		if (t.Cert == "") != (t.Key == "") {
			l.errs.Add(l.posOf("broker.tls"), "broker.tls", "set both cert and key (a client certificate and its key), or neither")
		}
	}
	if s := b.SASL; s != nil {
		l.checkSASL(s, b.Embedded != nil)
	}
}

func (l *loader) checkSASL(s *BrokerSASL, embedded bool) {
	const path = "broker.sasl"
	if s.Mechanism == "OAUTHBEARER" {
		if embedded {
			l.errs.Add(l.posOf(path+".mechanism"), path+".mechanism", "the embedded broker takes PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, not OAUTHBEARER")
		}
		if s.TokenFile == "" {
			l.errs.Add(l.posOf(path), path, "OAUTHBEARER needs token_file: a file holding the token")
		} else {
			l.resolveFile(&s.TokenFile, path+".token_file")
		}
		return
	}
	if s.Username == "" {
		l.errs.Add(l.posOf(path), path, "%s needs username", s.Mechanism)
	}
	l.oneSecret(s.Password, &s.PasswordFile, path, "password", "password_file",
		s.Mechanism+" needs password (e.g. ${KAFKA_PASSWORD}, which must then be set) or password_file")
}

func (l *loader) checkTopics(p *Pipeline) {
	for _, name := range slices.Sorted(maps.Keys(p.Topics)) {
		t := p.Topics[name]
		path := joinPath("topics", name)
		p.Pos[path] = l.keyPosOf(path)
		if name == "" {
			l.errs.Add(l.keyPosOf(path), "topics", "topic name must not be empty")
		}
		if t.Partitions < 1 {
			l.errs.Add(l.posOf(path+".partitions"), path+".partitions", "must be at least 1, got %d", t.Partitions)
		}
		if t.Replication < 1 {
			l.errs.Add(l.posOf(path+".replication"), path+".replication", "must be at least 1, got %d", t.Replication)
		}
		if t.Retention < Forever {
			l.errs.Add(l.posOf(path+".retention"), path+".retention", "must not be negative (use forever to keep records)")
		}
		if t.RetentionBytes < -1 {
			l.errs.Add(l.posOf(path+".retention_bytes"), path+".retention_bytes", "must be 0 (no limit) or more, got %d", t.RetentionBytes)
		}
		for _, key := range slices.Sorted(maps.Keys(t.Configs)) {
			l.checkTopicConfig(path+".configs", key, t.Configs[key])
		}
	}
}

// topicConfigKind says how a Kafka topic config value is checked.
type topicConfigKind int

const (
	kindInt topicConfigKind = iota
	kindMillis
	kindBool
	kindRatio
	kindEnum
)

type topicConfigSpec struct {
	kind  topicConfigKind
	enum  []string
	field string // the first-class Topic field that sets it, if any
}

// knownTopicConfigs are the Kafka topic configs the engine accepts in configs:. Values are
// checked here because brokers differ in how they treat bad ones: kfake reads
// retention.ms=7d as 0 and deletes every record.
var knownTopicConfigs = map[string]topicConfigSpec{
	"cleanup.policy":                      {kind: kindEnum, enum: []string{"delete", "compact", "compact,delete", "delete,compact"}, field: "cleanup"},
	"compression.type":                    {kind: kindEnum, enum: []string{"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"}},
	"delete.retention.ms":                 {kind: kindMillis},
	"file.delete.delay.ms":                {kind: kindMillis},
	"flush.messages":                      {kind: kindInt},
	"flush.ms":                            {kind: kindMillis},
	"index.interval.bytes":                {kind: kindInt},
	"local.retention.bytes":               {kind: kindInt},
	"local.retention.ms":                  {kind: kindMillis},
	"max.compaction.lag.ms":               {kind: kindMillis},
	"max.message.bytes":                   {kind: kindInt},
	"message.downconversion.enable":       {kind: kindBool},
	"message.timestamp.after.max.ms":      {kind: kindMillis},
	"message.timestamp.before.max.ms":     {kind: kindMillis},
	"message.timestamp.difference.max.ms": {kind: kindMillis},
	"message.timestamp.type":              {kind: kindEnum, enum: []string{"CreateTime", "LogAppendTime"}},
	"min.cleanable.dirty.ratio":           {kind: kindRatio},
	"min.compaction.lag.ms":               {kind: kindMillis, field: "min_compaction_lag"},
	"min.insync.replicas":                 {kind: kindInt},
	"preallocate":                         {kind: kindBool},
	"retention.bytes":                     {kind: kindInt, field: "retention_bytes"},
	"retention.ms":                        {kind: kindMillis, field: "retention"},
	"segment.bytes":                       {kind: kindInt},
	"segment.index.bytes":                 {kind: kindInt},
	"segment.jitter.ms":                   {kind: kindMillis},
	"segment.ms":                          {kind: kindMillis},
	"unclean.leader.election.enable":      {kind: kindBool},
	"remote.storage.enable":               {kind: kindBool},
}

// KnownTopicConfigs returns the Kafka topic config names accepted under topics.<name>.configs.
func KnownTopicConfigs() []string { return slices.Sorted(maps.Keys(knownTopicConfigs)) }

func (l *loader) checkTopicConfig(configsPath, key, value string) {
	path := joinPath(configsPath, key)
	spec, ok := knownTopicConfigs[key]
	if !ok {
		l.errs.Add(l.keyPosOf(path), configsPath, "unknown topic config %q%s", key, suggestion(key, KnownTopicConfigs()))
		return
	}
	if spec.field != "" {
		hint := ""
		if spec.kind == kindMillis {
			if ms, err := strconv.ParseInt(value, 10, 64); err == nil && ms > 0 {
				hint = fmt.Sprintf(", e.g. %s: %s", spec.field, Duration(ms*1e6))
			} else if d, err := ParseDuration(value); err == nil {
				hint = fmt.Sprintf(", e.g. %s: %s", spec.field, d)
			}
		}
		l.errs.Add(l.keyPosOf(path), path, "%s duplicates the topic's %s field; set %s instead%s", key, spec.field, spec.field, hint)
		return
	}
	at := l.posOf(path)
	switch spec.kind {
	case kindInt, kindMillis:
		if _, err := strconv.ParseInt(value, 10, 64); err != nil {
			hint := ""
			if d, derr := ParseDuration(value); spec.kind == kindMillis && derr == nil {
				hint = fmt.Sprintf(" (for %s write %d)", value, d.D().Milliseconds())
			}
			l.errs.Add(at, path, "must be an integer%s, got %q%s", map[bool]string{true: " number of milliseconds", false: ""}[spec.kind == kindMillis], value, hint)
		}
	case kindBool:
		if value != "true" && value != "false" {
			l.errs.Add(at, path, "must be true or false, got %q", value)
		}
	case kindRatio:
		if f, err := strconv.ParseFloat(value, 64); err != nil || f < 0 || f > 1 {
			l.errs.Add(at, path, "must be a number between 0 and 1, got %q", value)
		}
	case kindEnum:
		if !contains(spec.enum, value) {
			l.errs.Add(at, path, "must be one of %s; got %q", strings.Join(spec.enum, ", "), value)
		}
	}
}

// resolveFile rewrites a relative path against the pipeline file's directory, as Prometheus
// does for rule files, so a pipeline behaves the same whatever directory it is started from.
func (l *loader) resolveFile(value *string, path string) {
	if *value == "" {
		l.errs.Add(l.posOf(path), path, "file path must not be empty")
		return
	}
	resolved := *value
	if !filepath.IsAbs(resolved) {
		resolved = filepath.Join(filepath.Dir(l.file), resolved)
	}
	if _, err := os.Stat(resolved); err != nil {
		if os.IsNotExist(err) {
			l.errs.Add(l.posOf(path), path, "file %s does not exist (paths are relative to the pipeline file's directory)", resolved)
		} else {
			l.errs.Add(l.posOf(path), path, "cannot read %s: %v", resolved, err)
		}
		return
	}
	*value = resolved
}

func (l *loader) checkSchemas(p *Pipeline) {
	for _, name := range slices.Sorted(maps.Keys(p.Schemas)) {
		path := joinPath("schemas", name)
		p.Pos[path] = l.keyPosOf(path)
		file := p.Schemas[name]
		l.resolveFile(&file, path)
		p.Schemas[name] = file
	}
}

func (l *loader) checkLookups(p *Pipeline) {
	for _, name := range slices.Sorted(maps.Keys(p.Lookups)) {
		lk := p.Lookups[name]
		path := joinPath("lookups", name)
		p.Pos[path] = l.keyPosOf(path)
		sources := lookupSources(lk)
		switch {
		case len(sources) > 1:
			l.errs.Add(l.keyPosOf(path+"."+sources[1]), path, "set exactly one of file, rows and topic, not %s", strings.Join(sources, " and "))
		case len(sources) == 0:
			l.errs.Add(l.posOf(path), path, "set one of file (a CSV or JSON file), rows (inline rows) and topic (a topic whose records are the rows)")
		case lk.File != "":
			l.resolveFile(&lk.File, path+".file")
			if lk.Format == "" {
				switch strings.ToLower(filepath.Ext(lk.File)) {
				case ".csv":
					lk.Format = "csv"
				case ".json":
					lk.Format = "json"
				default:
					l.errs.Add(l.posOf(path+".file"), path+".file", "cannot tell the format of %s from its extension; set format: csv or format: json", filepath.Base(lk.File))
				}
			}
		}
		if lk.Key == "" && lk.Topic == "" {
			l.errs.Add(l.posOf(path), path, "missing required field \"key\" (the column that holds the lookup key)")
		}
		for i, row := range lk.Rows {
			if _, ok := row[lk.Key]; lk.Key != "" && !ok {
				rp := indexPath(path+".rows", i)
				l.errs.Add(l.posOf(rp), rp, "row has no value for the key column %q", lk.Key)
			}
		}
		p.Lookups[name] = lk
	}
}

// lookupSources names the sources a lookup sets, in the order of its fields.
func lookupSources(lk Lookup) []string {
	return setOnes(option{"file", lk.File != ""}, option{"rows", lk.Rows != nil}, option{"topic", lk.Topic != ""})
}

// option is a setting of which exactly one of several is expected, and whether it is set.
type option struct {
	name string
	set  bool
}

// setOnes names the options that are set, in order.
func setOnes(options ...option) []string {
	var out []string
	for _, o := range options {
		if o.set {
			out = append(out, o.name)
		}
	}
	return out
}

var streamNameRE = regexp.MustCompile(`^[a-z0-9._-]+$`)

func (l *loader) checkStreams(p *Pipeline) {
	first := map[string]Pos{}
	stdinAt := ""
	for i, s := range p.Streams {
		path := indexPath("streams", i)
		if s.Input.Stdin != nil {
			if stdinAt != "" {
				l.errs.Add(l.posOf(path+".input.stdin"), path+".input.stdin", "standard input is read by one stream only, and %s already reads it (line %d)", stdinAt, l.posOf(stdinAt+".input.stdin").Line)
			} else {
				stdinAt = path
			}
		}
		namePath := path + ".name"
		switch {
		case s.Name == "":
			if _, written := l.nodes[namePath]; written {
				l.errs.Add(l.posOf(namePath), namePath, "stream name must not be empty")
			}
		case !streamNameRE.MatchString(s.Name):
			l.errs.Add(l.posOf(namePath), namePath, "stream name %q may only use a-z, 0-9, '.', '_' and '-' (it names the consumer group)", s.Name)
		}
		if s.Name != "" {
			if at, dup := first[s.Name]; dup {
				l.errs.Add(l.posOf(namePath), namePath, "duplicate stream name %q (first used at line %d)", s.Name, at.Line)
			} else {
				first[s.Name] = l.posOf(namePath)
				p.Pos["streams."+s.Name] = l.posOf(path)
			}
		}
		if _, ok := l.nodes[path+".input"]; ok {
			if s.Input.DeadLetter == "" && p.DeadLetter == "" && !l.typos["dead_letter"] && !l.typos[path+".input.dead_letter"] {
				l.errs.Add(l.posOf(path+".input"), path+".input", "stream has no dead-letter topic for records it cannot process: set input.dead_letter: <topic> here, or dead_letter: <topic> at the top level for every stream")
			}
			if s.Input.BatchSize < 1 {
				l.errs.Add(l.posOf(path+".input.batch_size"), path+".input.batch_size", "must be at least 1, got %d", s.Input.BatchSize)
			}
			l.checkInput(&p.Streams[i].Input, path+".input")
			if ci := s.Input.CommitInterval; ci < 0 || ci.D() > MaxCommitInterval {
				at := path + ".input.commit_interval"
				l.errs.Add(l.posOf(at), at, "must be between 0 and %s, got %s: a checkpoint transaction held open longer than the transaction timeout (%s) is aborted by the broker, and the stream would redo its work for ever", MaxCommitInterval, ci.D(), 2*MaxCommitInterval)
			}
		}
		if _, ok := l.nodes[path+".output"]; ok {
			l.checkOutput(s.Output, path+".output")
		}
	}
	l.checkListenersDiffer(p)
}

// checkListenersDiffer makes sure no two listeners of the pipeline (the API, each http
// input) ask for the same address: the second could not start.
func (l *loader) checkListenersDiffer(p *Pipeline) {
	first := map[string]string{}
	if p.API != nil && p.API.Listen != "" {
		first[p.API.Listen] = "api.listen"
	}
	for i, s := range p.Streams {
		receivers := s.Input.Receivers()
		for _, key := range slices.Sorted(maps.Keys(receivers)) {
			listen := receivers[key].Listen
			if listen == "" {
				continue
			}
			at := indexPath("streams", i) + ".input." + key + ".listen"
			if other, ok := first[listen]; ok && !strings.HasSuffix(listen, ":0") {
				l.errs.Add(l.posOf(at), at, "listen address %q is %s's too (line %d): give each listener its own port", listen, other, l.posOf(other).Line)
				continue
			}
			first[listen] = at
		}
	}
}

// MaxCommitInterval is the longest commit_interval: half the transaction timeout of the
// engine's transactional consumers (broker.TransactionTimeout; a broker test keeps the two
// in step), so that a transaction held open for it, plus the batch and commit after it,
// ends well before the broker aborts it.
const MaxCommitInterval = 5 * time.Second

// checkInput makes sure a stream reads exactly one of a topic, a file and standard input,
// and resolves a file's path against the pipeline file's directory. (The file need not exist
// yet: a replay file may be written after the pipeline.)
func (l *loader) checkInput(in *Input, path string) {
	var set []string
	for _, s := range []struct {
		name string
		set  bool
	}{{"topic", in.Topic != ""}, {"file", in.File != nil}, {"stdin", in.Stdin != nil}} {
		if s.set {
			set = append(set, s.name)
		}
	}
	switch {
	case len(set) > 1:
		l.errs.Add(l.posOf(path+"."+set[1]), path, "set exactly one of topic, file and stdin, not %s", strings.Join(set, " and "))
	case len(set) == 0 && len(in.Receivers()) > 0:
		l.errs.Add(l.posOf(path), path, "missing required field \"topic\": an http, prometheus_remote_write or otlp input stores what it receives in the stream's topic before answering")
	case len(set) == 0 && !l.failedPaths[path+".topic"] && !l.typos[path+".topic"]:
		l.errs.Add(l.posOf(path), path, "missing required field \"topic\" (or file: or stdin: to read newline-delimited JSON)")
	}
	if in.File != nil && in.File.Path != "" && !filepath.IsAbs(in.File.Path) {
		in.File.Path = filepath.Join(filepath.Dir(l.file), in.File.Path)
	}
	checkMax := func(at string, n Size) {
		if _, written := l.nodes[at]; written && n < 1 {
			l.errs.Add(l.posOf(at), at, "must be at least 1 byte, got %d", n)
		}
	}
	if in.File != nil {
		checkMax(path+".file.max_line_bytes", in.File.MaxLineBytes)
	}
	if in.Stdin != nil {
		checkMax(path+".stdin.max_line_bytes", in.Stdin.MaxLineBytes)
	}
	for _, key := range slices.Sorted(maps.Keys(in.Receivers())) {
		l.checkReceiver(in, in.Receivers()[key], path+"."+key)
	}
	if in.OTLP != nil && in.OTLP.HTTP == nil && in.OTLP.GRPC == nil {
		l.errs.Add(l.posOf(path+".otlp"), path+".otlp", "set http, grpc or both: the protocols the otlp input serves")
	}
}

// checkReceiver makes sure a receiver (http, prometheus_remote_write, otlp) at at has a topic to
// store what it receives in, and settings it can run with.
func (l *loader) checkReceiver(in *Input, h HTTPInput, at string) {
	everyInterface := func(port string) string {
		return fmt.Sprintf("%q (every interface) or %q (this machine only)", ":"+port, "127.0.0.1:"+port)
	}
	if _, problem := splitAddress(h.Listen, "8090", everyInterface); problem != "" && h.Listen != "" {
		l.errs.Add(l.posOf(at+".listen"), at+".listen", "listen address %q %s", h.Listen, problem)
	}
	if in.File != nil || in.Stdin != nil {
		l.errs.Add(l.posOf(at), at, "a receiver stores what it receives in a topic: it goes with topic, not with file or stdin")
	}
	if h.Path == "" || h.Path[0] != '/' {
		l.errs.Add(l.posOf(at+".path"), at+".path", "must start with /, got %q", h.Path)
	}
	if h.MaxBodyBytes < 1 {
		l.errs.Add(l.posOf(at+".max_body_bytes"), at+".max_body_bytes", "must be at least 1 byte, got %d", h.MaxBodyBytes)
	}
	if h.MaxInFlight < 1 {
		l.errs.Add(l.posOf(at+".max_in_flight"), at+".max_in_flight", "must be at least 1, got %d", h.MaxInFlight)
	}
	if h.Timeout.D() <= 0 {
		l.errs.Add(l.posOf(at+".timeout"), at+".timeout", "must be more than 0, got %v", h.Timeout.D())
	}
}

// checkOutput makes sure a stream's output is exactly one of the topic output and a
// registered output (a second registered one is the decoder's error).
func (l *loader) checkOutput(o Output, path string) {
	switch {
	case o.Topic != "" && o.Plugin != nil:
		hint := ""
		if l.reg.Outputs[o.Plugin.Type].InSinks {
			hint = fmt.Sprintf(" (use a sink to also copy the topic to %s)", o.Plugin.Type)
		}
		l.errs.Add(l.keyPosOf(o.Plugin.Path), path, "set exactly one of topic and %s, not both%s", o.Plugin.Type, hint)
	case o.Topic == "" && o.Plugin == nil && !l.typoOfOutput(path):
		l.errs.Add(l.posOf(path), path, "set one of %s", orList(append([]string{"topic"}, l.reg.outputTypes(false)...)))
	}
}

// orList is "a", "a or b", "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

func (l *loader) checkSinks(p *Pipeline) {
	for i, s := range p.Sinks {
		path := indexPath("sinks", i)
		p.Pos[path] = l.posOf(path)
		if s.Plugin == nil && !l.typoOfOutput(path) {
			l.errs.Add(l.posOf(path), path, "a sink needs an output to copy its topic to: add one of %s", strings.Join(l.reg.outputTypes(true), ", "))
		}
		if s.BatchSize < 1 {
			l.errs.Add(l.posOf(path+".batch_size"), path+".batch_size", "must be at least 1, got %d", s.BatchSize)
		}
	}
}

var orderRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\s+(?i:asc|desc))?$`)

func (l *loader) checkAPI(p *Pipeline) {
	if p.API == nil {
		return
	}
	everyInterface := func(port string) string {
		return fmt.Sprintf("%q (every interface) or %q (this machine only)", ":"+port, "127.0.0.1:"+port)
	}
	host, problem := splitAddress(p.API.Listen, "8088", everyInterface)
	if problem != "" {
		l.errs.Add(l.posOf("api.listen"), "api.listen", "listen address %q %s", p.API.Listen, problem)
	} else {
		l.checkAPIExposure(p.API, host)
	}
	l.checkAPIAuth(p.API.Auth)
	if t := p.API.TLS; t != nil {
		l.resolveFile(&t.Cert, "api.tls.cert")
		l.resolveFile(&t.Key, "api.tls.key")
		if t.ClientCA != "" {
			l.resolveFile(&t.ClientCA, "api.tls.client_ca")
		}
	}
	l.checkOrigins(p.API.AllowOrigins)
	tables := l.writtenTables(p)
	written := slices.Sorted(maps.Keys(tables.stores))
	firstPath := map[string]Pos{}
	for i, r := range p.API.Routes {
		path := indexPath("api.routes", i)
		p.Pos[path] = l.posOf(path)
		pathPath := path + ".path"
		switch {
		case r.Path == "":
		case !strings.HasPrefix(r.Path, "/"):
			l.errs.Add(l.posOf(pathPath), pathPath, "route path %q must start with /", r.Path)
		case strings.HasPrefix(r.Path, "/-/"):
			l.errs.Add(l.posOf(pathPath), pathPath, "route path %q is under /-/, which is reserved for health and metrics endpoints", r.Path)
		default:
			if at, dup := firstPath[r.Path]; dup {
				l.errs.Add(l.posOf(pathPath), pathPath, "duplicate route path %q (first used at line %d)", r.Path, at.Line)
			} else {
				firstPath[r.Path] = l.posOf(pathPath)
			}
		}
		switch kinds := routeKinds(r); {
		case len(kinds) > 1:
			l.errs.Add(l.keyPosOf(path+"."+kinds[1]), path, "set exactly one of table, stream and topology, not %s", strings.Join(kinds, " and "))
		case len(kinds) == 0:
			l.errs.Add(l.posOf(path), path, "set one of table (query rows a sink or output writes), stream (live records of a topic) and topology (a dependency graph; or learned, its edges learned from spans)")
		}
		l.checkRouteTable(r.Table, path+".table", tables, written)
		if r.Order != "" && !orderRE.MatchString(strings.TrimSpace(r.Order)) {
			l.errs.Add(l.posOf(path+".order"), path+".order", "order must be a column, optionally followed by asc or desc (e.g. \"ts desc\"), got %q", r.Order)
		}
		if r.Limit < 1 {
			l.errs.Add(l.posOf(path+".limit"), path+".limit", "must be at least 1, got %d", r.Limit)
		}
	}
	l.checkDashboard(p.API)
}

// writtenTables are the tables the pipeline's outputs write (TableWriter), with the kinds
// of store each goes to, in the order first written.
type writtenTables struct {
	stores map[string][]string
	// unknown: an output's table did not decode; it may be the one a route means, and its
	// own error is enough.
	unknown bool
	// writers are the output types that write tables, for messages.
	writers []string
}

func (l *loader) writtenTables(p *Pipeline) writtenTables {
	w := writtenTables{stores: map[string][]string{}}
	for _, e := range l.outputEntries(p) {
		w.add(e, true)
	}
	for _, e := range l.extraOutputs {
		// Its own error says a place has one output; a route reading its table, or the
		// same table in two stores, is not a second mistake.
		w.add(e, false)
	}
	for _, typ := range l.reg.outputTypes(false) {
		if _, ok := l.reg.Outputs[typ].NewConfig().(TableWriter); ok {
			w.writers = append(w.writers, typ)
		}
	}
	return w
}

// add notes the table e writes, and the kind of its store when counted.
func (w *writtenTables) add(e *OutputEntry, counted bool) {
	tw, ok := e.Config.(TableWriter)
	switch {
	case !ok:
	case tw.TableName() == "":
		w.unknown = true
	case !counted:
		if _, seen := w.stores[tw.TableName()]; !seen {
			w.stores[tw.TableName()] = nil
		}
	case !slices.Contains(w.stores[tw.TableName()], tw.StoreKind()):
		w.stores[tw.TableName()] = append(w.stores[tw.TableName()], tw.StoreKind())
	}
}

// checkRouteTable makes sure a route's table is written, and to one kind of store.
func (l *loader) checkRouteTable(table, path string, tables writtenTables, written []string) {
	if table == "" {
		return
	}
	stores, ok := tables.stores[table]
	if !ok && !tables.unknown {
		list := "no output or sink writes a table"
		if len(written) > 0 {
			list = "tables written: " + strings.Join(written, ", ")
		}
		l.errs.Add(l.posOf(path), path, "table %q is not written by any %s output or sink (%s)", table, orList(tables.writers), list)
	}
	if len(stores) > 1 {
		l.errs.Add(l.posOf(path), path, "table %q is written both to %s and to %s, so the route could read either; give one of the writers another table name", table, stores[0], stores[1])
	}
}

// checkClaims makes sure that what an output holds alone (Claimer: a Parquet table and
// its directory, whose write-ahead log two writers would corrupt) is claimed once.
func (l *loader) checkClaims(p *Pipeline) {
	first := map[string]string{} // claim key -> path of the output holding it
	for _, e := range append(l.outputEntries(p), l.extraOutputs...) {
		c, ok := e.Config.(Claimer)
		if !ok {
			continue
		}
		for _, claim := range c.Claims() {
			if holder, taken := first[claim.Key]; taken {
				at := joinPath(e.Path, claim.Field)
				l.errs.Add(l.posOf(at), at, "%s by %s; %s", claim.Taken, holder, claim.Hint)
				continue
			}
			first[claim.Key] = e.Path
		}
	}
}

// TopologyLookup is the name of the lookup table the pipeline's topology: block becomes.
const TopologyLookup = "topology"

// checkTopology makes the topology: block the lookup table topology (key node, column
// depends_on: the dependencies separated by spaces), unless a lookup has that name already.
func (l *loader) checkTopology(p *Pipeline) {
	if len(p.Topology) == 0 {
		return
	}
	if _, taken := p.Lookups[TopologyLookup]; taken {
		l.errs.Add(l.keyPosOf("topology"), "topology", "the topology: block is the lookup table %q, and lookups: declares one of that name already: rename that lookup", TopologyLookup)
		return
	}
	var rows []map[string]string
	for _, node := range slices.Sorted(maps.Keys(p.Topology)) {
		for i, dep := range p.Topology[node] {
			if strings.TrimSpace(dep) == "" || strings.ContainsAny(dep, " ,;") {
				at := indexPath(joinPath("topology", node), i)
				l.errs.Add(l.posOf(at), at, "a node name must not be empty or hold spaces, commas or semicolons, got %q", dep)
			}
		}
		rows = append(rows, map[string]string{"node": node, "depends_on": strings.Join(p.Topology[node], " ")})
	}
	if p.Lookups == nil {
		p.Lookups = map[string]Lookup{}
	}
	p.Lookups[TopologyLookup] = Lookup{Key: "node", Rows: rows}
}

// routeKinds are the kinds a route sets, of table, stream and topology.
func routeKinds(r Route) []string {
	return setOnes(option{"table", r.Table != ""}, option{"stream", r.Stream != ""}, option{"topology", r.Topology != "" || r.Learned != ""})
}

// checkAPIExposure refuses an API that other machines reach without auth, unless insecure
// says so (and then warns).
func (l *loader) checkAPIExposure(a *API, host string) {
	switch {
	case isLoopback(host) || a.Auth != nil:
		if a.Insecure {
			l.warns.AddWarning(l.posOf("api.insecure"), "api.insecure", "insecure: true has no effect: the API %s", map[bool]string{true: "listens on this machine only", false: "has auth"}[isLoopback(host)])
		}
	case a.Insecure:
		l.warns.AddWarning(l.posOf("api.insecure"), "api.insecure", "the API listens on %q without auth: anyone who can connect reads every tenant's data and can reload the pipeline (docs/security.md)", a.Listen)
	default:
		l.errs.Add(l.posOf("api.listen"), "api.listen", "the API would listen on %q, which other machines reach, without auth: add api.auth with tokens (docs/security.md), listen on 127.0.0.1, or set api.insecure: true if the network is protected otherwise", a.Listen)
	}
}

// minTokenLength keeps tokens out of reach of guessing: 16 random characters.
const minTokenLength = 16

// checkAPIAuth checks the tokens: each is one of token and file, long enough, with known
// scopes; a tenant-bound one is not admin; names are unique.
func (l *loader) checkAPIAuth(auth *APIAuth) {
	if auth == nil {
		return
	}
	if len(auth.Tokens) == 0 {
		l.errs.Add(l.posOf("api.auth"), "api.auth", "auth needs at least one token under tokens")
	}
	names := map[string]bool{}
	for i := range auth.Tokens {
		t := &auth.Tokens[i]
		path := indexPath("api.auth.tokens", i)
		if names[t.Name] {
			l.errs.Add(l.posOf(path+".name"), path+".name", "another token is named %q: names tell tokens apart in logs", t.Name)
		}
		names[t.Name] = true
		l.checkToken(t, path)
	}
}

func (l *loader) checkToken(t *APIToken, path string) {
	inline := l.oneSecret(t.Token, &t.File, path, "token", "file",
		"the token is empty: set token (e.g. ${EVENTOPS_API_TOKEN}, which must then be set) or file")
	if inline && len(t.Token) < minTokenLength {
		l.errs.Add(l.posOf(path+".token"), path+".token", "the token has %d characters; use at least %d random ones (e.g. openssl rand -hex 16)", len(t.Token), minTokenLength)
	}
	for j, sc := range t.Scopes {
		if sc != "read" && sc != "admin" {
			sp := indexPath(path+".scopes", j)
			l.errs.Add(l.posOf(sp), sp, "unknown scope %q: scopes are read and admin", sc)
		}
	}
	if t.Tenant != "" && slices.Contains(t.Scopes, "admin") {
		l.errs.Add(l.posOf(path+".tenant"), path+".tenant", "a token bound to a tenant cannot have scope admin: admin reloads the whole pipeline and silences every tenant's alerts")
	}
}

// checkOrigins checks allow_origins: each is *, or scheme://host[:port].
func (l *loader) checkOrigins(origins []string) {
	for i, o := range origins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			p := indexPath("api.allow_origins", i)
			l.errs.Add(l.posOf(p), p, "origin %q must be scheme://host[:port] (e.g. https://ops.example.com) or *", o)
		}
	}
}

// oneSecret checks a secret given either written in (value) or in a file: not both, the file
// resolved, and neither is the error empty (an unset ${VAR} leaves the value empty). It says
// whether the secret is written in.
func (l *loader) oneSecret(value string, file *string, path, valueName, fileName, empty string) bool {
	switch {
	case value != "" && *file != "":
		l.errs.Add(l.posOf(path+"."+fileName), path, "set one of %s and %s, not both", valueName, fileName)
	case *file != "":
		l.resolveFile(file, path+"."+fileName)
	case value == "":
		l.errs.Add(l.posOf(path), path, "%s", empty)
	default:
		return true
	}
	return false
}
