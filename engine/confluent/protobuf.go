package confluent

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// readIndexes reads the wire format's message indexes after the header: which message of the
// schema's file the value is (a path through nested messages). A single 0 byte is [0], the
// first message.
func readIndexes(b []byte) ([]int, []byte, error) {
	n, l := binary.Varint(b)
	if l <= 0 || n < 0 || n > 64 {
		return nil, nil, errors.New("no message indexes after the schema id (Protobuf in the wire format has them)")
	}
	b = b[l:]
	if n == 0 {
		return []int{0}, b, nil
	}
	indexes := make([]int, n)
	for i := range indexes {
		v, l := binary.Varint(b)
		if l <= 0 || v < 0 {
			return nil, nil, errors.New("malformed message indexes")
		}
		indexes[i], b = int(v), b[l:]
	}
	return indexes, b, nil
}

// messageAt is the message the indexes name in fd.
func messageAt(fd protoreflect.FileDescriptor, indexes []int) (protoreflect.MessageDescriptor, error) {
	msgs := fd.Messages()
	var md protoreflect.MessageDescriptor
	for _, i := range indexes {
		if i >= msgs.Len() {
			return nil, fmt.Errorf("message index %v is not in the schema", indexes)
		}
		md = msgs.Get(i)
		msgs = md.Messages()
	}
	return md, nil
}

// protoValue is message m as the engine's values (what protobuf's JSON mapping gives, with
// the schema's field names, every number a float64, enums by name, bytes base64, a
// google.protobuf.Timestamp an RFC 3339 string). Scalars are there even when zero (proto3
// does not tell zero from unset); unset messages and oneof members are not.
func protoValue(m protoreflect.Message) map[string]any {
	out := map[string]any{}
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		unsetMessage := fd.Message() != nil && !fd.IsList() && !fd.IsMap() && !m.Has(fd)
		if unsetMessage || fd.ContainingOneof() != nil && !m.Has(fd) {
			continue
		}
		out[string(fd.Name())] = fieldValue(fd, m.Get(fd))
	}
	return out
}

func fieldValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch {
	case fd.IsList():
		list := v.List()
		out := make([]any, list.Len())
		for i := range out {
			out[i] = singular(fd, list.Get(i))
		}
		return out
	case fd.IsMap():
		out := map[string]any{}
		v.Map().Range(func(k protoreflect.MapKey, item protoreflect.Value) bool {
			out[k.String()] = singular(fd.MapValue(), item)
			return true
		})
		return out
	}
	return singular(fd, v)
}

func singular(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return v.Bool()
	case protoreflect.StringKind:
		return v.String()
	case protoreflect.BytesKind:
		return base64.StdEncoding.EncodeToString(v.Bytes())
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return float64(v.Enum())
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return v.Float()
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind, protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return float64(v.Int())
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return float64(v.Uint())
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if fd.Message().FullName() == "google.protobuf.Timestamp" {
			m := v.Message()
			fields := m.Descriptor().Fields()
			sec, nanos := m.Get(fields.ByName("seconds")).Int(), m.Get(fields.ByName("nanos")).Int()
			return time.Unix(sec, nanos).UTC().Format(time.RFC3339Nano)
		}
		return protoValue(v.Message())
	}
	return nil
}

// protoMessage builds a message of md from v: fields by the schema's names (others are left
// out, as for Avro), each value fitted to its field's kind; an error says which field.
func protoMessage(md protoreflect.MessageDescriptor, v map[string]any, at string) (*dynamicpb.Message, error) {
	m := dynamicpb.NewMessage(md)
	fields := md.Fields()
	for k, item := range v {
		fd := fields.ByName(protoreflect.Name(k))
		if fd == nil || item == nil {
			continue
		}
		if err := setField(m, fd, item, join(at, k)); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func setField(m *dynamicpb.Message, fd protoreflect.FieldDescriptor, v any, at string) error {
	switch {
	case fd.IsList():
		items, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: want an array, got %T", where(at), v)
		}
		list := m.Mutable(fd).List()
		for i, item := range items {
			pv, err := protoScalar(fd, item, fmt.Sprintf("%s[%d]", at, i))
			if err != nil {
				return err
			}
			list.Append(pv)
		}
		return nil
	case fd.IsMap():
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %T", where(at), v)
		}
		mp := m.Mutable(fd).Map()
		for k, item := range obj {
			pv, err := protoScalar(fd.MapValue(), item, at+"."+k)
			if err != nil {
				return err
			}
			mp.Set(protoreflect.ValueOfString(k).MapKey(), pv)
		}
		return nil
	}
	pv, err := protoScalar(fd, v, at)
	if err == nil {
		m.Set(fd, pv)
	}
	return err
}

// protoScalar is v as one value of field fd (a message is a scalar here: one item).
func protoScalar(fd protoreflect.FieldDescriptor, v any, at string) (protoreflect.Value, error) {
	bad := func(want string) (protoreflect.Value, error) {
		return protoreflect.Value{}, fmt.Errorf("%s: want %s, got %T %v", where(at), want, v, v)
	}
	switch fd.Kind() {
	case protoreflect.BoolKind:
		if b, ok := v.(bool); ok {
			return protoreflect.ValueOfBool(b), nil
		}
		return bad("a boolean")
	case protoreflect.StringKind:
		switch x := v.(type) {
		case string:
			return protoreflect.ValueOfString(x), nil
		case time.Time:
			return protoreflect.ValueOfString(x.UTC().Format(time.RFC3339Nano)), nil
		}
		return bad("a string")
	case protoreflect.BytesKind:
		if s, ok := v.(string); ok {
			return protoreflect.ValueOfBytes([]byte(s)), nil
		}
		return bad("a string")
	case protoreflect.EnumKind:
		return protoEnum(fd, v, bad)
	case protoreflect.FloatKind:
		if f, ok := number(v); ok {
			return protoreflect.ValueOfFloat32(float32(f)), nil
		}
		return bad("a number")
	case protoreflect.DoubleKind:
		if f, ok := number(v); ok {
			return protoreflect.ValueOfFloat64(f), nil
		}
		return bad("a number")
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return protoSubMessage(fd, v, at, bad)
	}
	return protoInt(fd, v, bad)
}

func protoInt(fd protoreflect.FieldDescriptor, v any, bad func(string) (protoreflect.Value, error)) (protoreflect.Value, error) {
	n, ok := whole(v)
	if !ok {
		return bad("a whole number")
	}
	switch fd.Kind() {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if n < math.MinInt32 || n > math.MaxInt32 {
			return bad("a 32-bit whole number")
		}
		return protoreflect.ValueOfInt32(int32(n)), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(n), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		if n < 0 || n > math.MaxUint32 {
			return bad("an unsigned 32-bit whole number")
		}
		return protoreflect.ValueOfUint32(uint32(n)), nil
	}
	if n < 0 {
		return bad("an unsigned whole number")
	}
	return protoreflect.ValueOfUint64(uint64(n)), nil
}

func protoEnum(fd protoreflect.FieldDescriptor, v any, bad func(string) (protoreflect.Value, error)) (protoreflect.Value, error) {
	if s, ok := v.(string); ok {
		if ev := fd.Enum().Values().ByName(protoreflect.Name(s)); ev != nil {
			return protoreflect.ValueOfEnum(ev.Number()), nil
		}
	}
	if n, ok := whole(v); ok {
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), nil
	}
	return bad("a value of enum " + string(fd.Enum().FullName()))
}

func protoSubMessage(fd protoreflect.FieldDescriptor, v any, at string, bad func(string) (protoreflect.Value, error)) (protoreflect.Value, error) {
	if fd.Message().FullName() == "google.protobuf.Timestamp" {
		return protoTimestamp(fd.Message(), v, bad)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return bad("an object")
	}
	m, err := protoMessage(fd.Message(), obj, at)
	if err != nil {
		return protoreflect.Value{}, err
	}
	return protoreflect.ValueOfMessage(m), nil
}

func protoTimestamp(md protoreflect.MessageDescriptor, v any, bad func(string) (protoreflect.Value, error)) (protoreflect.Value, error) {
	t, ok := v.(time.Time)
	if s, isString := v.(string); isString {
		var err error
		t, err = time.Parse(time.RFC3339Nano, s)
		ok = err == nil
	}
	if !ok {
		return bad("an RFC 3339 time")
	}
	m := dynamicpb.NewMessage(md)
	m.Set(md.Fields().ByName("seconds"), protoreflect.ValueOfInt64(t.Unix()))
	m.Set(md.Fields().ByName("nanos"), protoreflect.ValueOfInt32(int32(t.Nanosecond())))
	return protoreflect.ValueOfMessage(m), nil
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}
