// Package confluent reads and writes record values in the Confluent wire format: a zero
// byte, the schema's registry id (4 bytes, big-endian), then the value encoded with that
// schema — Avro binary, JSON for a JSON Schema, or for Protobuf the message indexes (which
// message of the schema's file) and the message. Inputs decode what any Confluent
// serializer wrote (Java, Go, kafkajs, confluent-kafka-python) into the engine's values;
// outputs encode values with a subject's latest schema, for any Confluent deserializer.
// Schemas come from a Confluent-compatible registry (the engine's own, engine/registry, or
// Redpanda's or Confluent's) through franz-go's sr client, and are cached by id.
package confluent

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/codec"
	"github.com/eventops/eventops-engine/engine/protofile"
)

// headerBytes is the wire format's header: the magic byte and the schema id.
const headerBytes = 5

// ErrNotWireFormat marks a value that does not start with the wire format's header.
var ErrNotWireFormat = errors.New("not in the Confluent wire format (a 0 byte, then a 4-byte schema id)")

// SchemaID is the id in raw's header.
func SchemaID(raw []byte) (int, error) {
	if len(raw) < headerBytes || raw[0] != 0 {
		return 0, ErrNotWireFormat
	}
	return int(binary.BigEndian.Uint32(raw[1:headerBytes])), nil
}

// schema is a registered schema, ready to decode or encode with.
type schema struct {
	id    int
	typ   sr.SchemaType
	avro  avro.Schema                 // for Avro
	proto protoreflect.FileDescriptor // for Protobuf
}

func parse(id int, s sr.Schema) (*schema, error) {
	sc := &schema{id: id, typ: s.Type}
	switch s.Type {
	case sr.TypeAvro:
		a, err := avro.ParseWithCache(s.Schema, "", &avro.SchemaCache{})
		if err != nil {
			return nil, fmt.Errorf("schema %d is not a valid Avro schema: %w", id, err)
		}
		sc.avro = a
	case sr.TypeProtobuf:
		fd, err := protofile.Compile(s.Schema)
		if err != nil {
			return nil, fmt.Errorf("schema %d is not a Protobuf schema the engine can compile (imports of other subjects are not resolved yet): %w", id, err)
		}
		sc.proto = fd
	case sr.TypeJSON:
	default:
		return nil, fmt.Errorf("schema %d is of type %s, which the engine does not know", id, s.Type)
	}
	return sc, nil
}

// Decoder turns wire-format values into the engine's values (engine.ValueDecoder), fetching
// each schema id once (Prepare).
type Decoder struct {
	client *sr.Client
	mu     sync.RWMutex
	byID   map[int]*schema
	bad    map[int]error // ids the registry has no usable schema for
}

// NewDecoder returns a decoder that asks client for schemas.
func NewDecoder(client *sr.Client) *Decoder {
	return &Decoder{client: client, byID: map[int]*schema{}, bad: map[int]error{}}
}

// Prepare fetches the schemas of batch's values not fetched yet. An error means the registry
// could not be asked (send the batch again later); an id the registry does not have is
// remembered, and its records are refused by Decode with the reason.
func (d *Decoder) Prepare(ctx context.Context, batch []*engine.Record) error {
	for _, r := range batch {
		id, err := SchemaID(r.Raw)
		if err != nil || d.known(id) {
			continue
		}
		if err := d.fetch(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

func (d *Decoder) known(id int) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	_, ok := d.byID[id]
	_, bad := d.bad[id]
	return ok || bad
}

// fetch asks the registry for schema id and keeps it, or keeps why it cannot be used.
func (d *Decoder) fetch(ctx context.Context, id int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := d.client.SchemaByID(ctx, id)
	var re *sr.ResponseError
	if errors.As(err, &re) && re.StatusCode == 404 {
		d.remember(id, nil, fmt.Errorf("schema id %d is not in the registry", id))
		return nil
	}
	if err != nil {
		return fmt.Errorf("schema registry: fetching schema %d: %w", id, err)
	}
	sc, err := parse(id, s)
	d.remember(id, sc, err)
	return nil
}

func (d *Decoder) remember(id int, sc *schema, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.bad[id] = err
		return
	}
	d.byID[id] = sc
}

// Decode turns one wire-format value into an object.
func (d *Decoder) Decode(raw []byte) (map[string]any, error) {
	id, err := SchemaID(raw)
	if err != nil {
		return nil, err
	}
	d.mu.RLock()
	sc, bad := d.byID[id], d.bad[id]
	d.mu.RUnlock()
	switch {
	case bad != nil:
		return nil, bad
	case sc == nil:
		return nil, fmt.Errorf("schema id %d was not fetched", id)
	case sc.typ == sr.TypeJSON:
		return codec.DecodeObject(raw[headerBytes:])
	case sc.typ == sr.TypeProtobuf:
		return decodeProto(sc, raw[headerBytes:])
	}
	var v any
	if err := avro.Unmarshal(sc.avro, raw[headerBytes:], &v); err != nil {
		return nil, fmt.Errorf("not Avro of schema %d: %w", id, err)
	}
	obj, ok := plain(v).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("schema %d is not an Avro record: a record's value must be an object", id)
	}
	return obj, nil
}

// plain is v in the engine's data model (what decoding JSON gives): numbers as float64,
// bytes as base64 strings, times as RFC 3339 strings.
func plain(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, item := range x {
			x[k] = plain(item)
		}
		return x
	case []any:
		for i, item := range x {
			x[i] = plain(item)
		}
		return x
	case int:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case float32:
		return float64(x)
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case time.Duration:
		return x.String()
	}
	return v
}

// Encoder writes values in the wire format with one subject's latest schema
// (engine.ValueEncoder).
type Encoder struct {
	sc     *schema
	header [headerBytes]byte
}

// NewEncoder resolves subject's latest version.
func NewEncoder(ctx context.Context, client *sr.Client, subject string) (*Encoder, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ss, err := client.SchemaByVersion(ctx, subject, -1)
	if err != nil {
		return nil, fmt.Errorf("schema registry: subject %q: %w", subject, err)
	}
	sc, err := parse(ss.ID, ss.Schema)
	if err != nil {
		return nil, fmt.Errorf("subject %q: %w", subject, err)
	}
	e := &Encoder{sc: sc}
	binary.BigEndian.PutUint32(e.header[1:], uint32(ss.ID))
	return e, nil
}

// SchemaID is the id the encoder writes.
func (e *Encoder) SchemaID() int { return e.sc.id }

// Encode appends v in the wire format to dst.
func (e *Encoder) Encode(dst []byte, v map[string]any) ([]byte, error) {
	dst = append(dst, e.header[:]...)
	switch e.sc.typ {
	case sr.TypeJSON:
		return codec.AppendObject(dst, v)
	case sr.TypeProtobuf:
		return encodeProto(dst, e.sc, v)
	}
	value, err := fit(e.sc.avro, v, "")
	if err != nil {
		return nil, fmt.Errorf("schema %d: %w", e.sc.id, err)
	}
	b, err := avro.Marshal(e.sc.avro, value)
	if err != nil {
		return nil, fmt.Errorf("schema %d: %w", e.sc.id, err)
	}
	return append(dst, b...), nil
}

// fit converts v to the Go type Avro's encoder wants for s (a JSON number for an int field is
// a float64 here, a time may be a time.Time), and says where a value does not fit.
func fit(s avro.Schema, v any, at string) (any, error) {
	switch s := s.(type) {
	case *avro.RecordSchema:
		return fitRecord(s, v, at)
	case *avro.UnionSchema:
		return fitUnion(s, v, at)
	case *avro.ArraySchema:
		items, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("%s: want an array, got %T", where(at), v)
		}
		out := make([]any, len(items))
		for i, item := range items {
			var err error
			if out[i], err = fit(s.Items(), item, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case *avro.MapSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: want an object, got %T", where(at), v)
		}
		out := make(map[string]any, len(m))
		for k, item := range m {
			var err error
			if out[k], err = fit(s.Values(), item, at+"."+k); err != nil {
				return nil, err
			}
		}
		return out, nil
	case *avro.PrimitiveSchema:
		return fitPrimitive(s, v, at)
	}
	return v, nil
}

func fitRecord(s *avro.RecordSchema, v any, at string) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: want an object for record %s, got %T", where(at), s.FullName(), v)
	}
	out := make(map[string]any, len(s.Fields()))
	for _, f := range s.Fields() {
		item, present := m[f.Name()]
		if !present && f.HasDefault() {
			continue // the encoder writes the default
		}
		fv, err := fit(f.Type(), item, join(at, f.Name()))
		if err != nil {
			return nil, err
		}
		out[f.Name()] = fv
	}
	return out, nil
}

// fitUnion picks the branch v fits: null for nil, else the first other branch it fits.
func fitUnion(s *avro.UnionSchema, v any, at string) (any, error) {
	if v == nil {
		if s.Nullable() {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: missing, and its union has no null", where(at))
	}
	var firstErr error
	for _, branch := range s.Types() {
		if branch.Type() == avro.Null {
			continue
		}
		fv, err := fit(branch, v, at)
		if err == nil {
			if s.Nullable() {
				return fv, nil
			}
			return map[string]any{unionName(branch): fv}, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

func unionName(s avro.Schema) string {
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	return string(s.Type())
}

func fitPrimitive(s *avro.PrimitiveSchema, v any, at string) (any, error) {
	switch s.Type() {
	case avro.Int, avro.Long:
		n, ok := whole(v)
		if !ok {
			return nil, fmt.Errorf("%s: want a whole number for %s, got %v", where(at), s.Type(), v)
		}
		if s.Type() == avro.Int {
			if n < math.MinInt32 || n > math.MaxInt32 {
				return nil, fmt.Errorf("%s: %d does not fit an Avro int", where(at), n)
			}
			return int(n), nil
		}
		return n, nil
	case avro.Float, avro.Double:
		switch x := v.(type) {
		case float64:
			if s.Type() == avro.Float {
				return float32(x), nil
			}
			return x, nil
		case int, int64:
			n, _ := whole(x)
			return float64(n), nil
		}
	case avro.String:
		switch x := v.(type) {
		case string:
			return x, nil
		case time.Time:
			return x.UTC().Format(time.RFC3339Nano), nil
		}
	case avro.Boolean:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case avro.Null:
		if v == nil {
			return nil, nil
		}
	default:
		return v, nil
	}
	return nil, fmt.Errorf("%s: want %s, got %T %v", where(at), s.Type(), v, v)
}

func whole(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
			return int64(x), true
		}
	}
	return 0, false
}

func join(at, name string) string {
	if at == "" {
		return name
	}
	return at + "." + name
}

func where(at string) string {
	if at == "" {
		return "the value"
	}
	return "field " + at
}

// decodeProto reads the message indexes and the message they name.
func decodeProto(sc *schema, b []byte) (map[string]any, error) {
	indexes, rest, err := readIndexes(b)
	if err != nil {
		return nil, err
	}
	md, err := messageAt(sc.proto, indexes)
	if err != nil {
		return nil, fmt.Errorf("schema %d: %w", sc.id, err)
	}
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(rest, m); err != nil {
		return nil, fmt.Errorf("not Protobuf of message %s (schema %d): %w", md.FullName(), sc.id, err)
	}
	return protoValue(m), nil
}

// encodeProto writes v as the schema's first message (message index [0], one 0 byte).
func encodeProto(dst []byte, sc *schema, v map[string]any) ([]byte, error) {
	md := sc.proto.Messages().Get(0)
	m, err := protoMessage(md, v, "")
	if err != nil {
		return nil, fmt.Errorf("schema %d, message %s: %w", sc.id, md.FullName(), err)
	}
	dst = append(dst, 0)
	return proto.MarshalOptions{}.MarshalAppend(dst, m)
}
