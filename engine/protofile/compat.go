package protofile

import (
	"fmt"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Breaks lists what in next keeps data written with prev from being read the same way (or
// the reverse: the checks are symmetric but for removals, which break only one way), as a
// schema registry's compatibility checks for Protobuf: the package changed; a message of
// prev gone from next; a field number whose type (beyond the wire-compatible groups),
// cardinality, message or enum type changed, or that moved in or out of a oneof. Fields
// added or removed are compatible (proto3 readers skip what they do not know).
func Breaks(prev, next protoreflect.FileDescriptor) []string {
	var out []string
	if prev.Package() != next.Package() {
		out = append(out, fmt.Sprintf("the package changes from %q to %q", prev.Package(), next.Package()))
	}
	eachMessage(prev.Messages(), func(pm protoreflect.MessageDescriptor) {
		nm := findMessage(next, pm.FullName())
		if nm == nil {
			out = append(out, fmt.Sprintf("message %s is removed", pm.FullName()))
			return
		}
		out = append(out, fieldBreaks(pm, nm)...)
	})
	return out
}

func eachMessage(msgs protoreflect.MessageDescriptors, fn func(protoreflect.MessageDescriptor)) {
	for i := range msgs.Len() {
		m := msgs.Get(i)
		if m.IsMapEntry() {
			continue
		}
		fn(m)
		eachMessage(m.Messages(), fn)
	}
}

func findMessage(fd protoreflect.FileDescriptor, name protoreflect.FullName) protoreflect.MessageDescriptor {
	var found protoreflect.MessageDescriptor
	eachMessage(fd.Messages(), func(m protoreflect.MessageDescriptor) {
		if m.FullName() == name {
			found = m
		}
	})
	return found
}

// fieldBreaks compares the fields prev and next share by number.
func fieldBreaks(prev, next protoreflect.MessageDescriptor) []string {
	var out []string
	for i := range prev.Fields().Len() {
		pf := prev.Fields().Get(i)
		nf := next.Fields().ByNumber(pf.Number())
		if nf == nil {
			continue
		}
		if why := fieldChange(pf, nf); why != "" {
			out = append(out, fmt.Sprintf("field %d (%s) of %s: %s", pf.Number(), pf.Name(), prev.FullName(), why))
		}
	}
	return out
}

func fieldChange(pf, nf protoreflect.FieldDescriptor) string {
	switch {
	case pf.IsMap() != nf.IsMap() || pf.IsList() != nf.IsList():
		return fmt.Sprintf("its cardinality changes (%s to %s)", cardinality(pf), cardinality(nf))
	case wireGroup(pf.Kind()) != wireGroup(nf.Kind()):
		return fmt.Sprintf("its type changes from %s to %s", pf.Kind(), nf.Kind())
	case pf.Message() != nil && nf.Message() != nil && pf.Message().FullName() != nf.Message().FullName():
		return fmt.Sprintf("its message type changes from %s to %s", pf.Message().FullName(), nf.Message().FullName())
	case pf.Enum() != nil && nf.Enum() != nil && pf.Enum().FullName() != nf.Enum().FullName():
		return fmt.Sprintf("its enum type changes from %s to %s", pf.Enum().FullName(), nf.Enum().FullName())
	case (pf.ContainingOneof() == nil) != (nf.ContainingOneof() == nil):
		return "it moves into or out of a oneof"
	}
	return ""
}

func cardinality(f protoreflect.FieldDescriptor) string {
	switch {
	case f.IsMap():
		return "map"
	case f.IsList():
		return "repeated"
	}
	return "singular"
}

// wireGroup names the kinds whose values read each other on the wire as Protobuf allows.
func wireGroup(k protoreflect.Kind) string {
	switch k {
	case protoreflect.Int32Kind, protoreflect.Uint32Kind, protoreflect.Int64Kind, protoreflect.Uint64Kind, protoreflect.BoolKind:
		return "varint"
	case protoreflect.Sint32Kind, protoreflect.Sint64Kind:
		return "zigzag"
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
		return "fixed32"
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		return "fixed64"
	case protoreflect.StringKind, protoreflect.BytesKind:
		return "bytes"
	}
	return k.String()
}
