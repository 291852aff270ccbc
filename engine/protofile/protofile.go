// Package protofile compiles a Protobuf schema given as .proto text, as a schema registry
// holds it: lint (config), the engine's registry and the wire format's reader and writer
// (engine/confluent) all compile it the same way.
package protofile

import (
	"context"
	"errors"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Compile compiles text into its file. It may import the well-known types
// (google/protobuf/*.proto); imports of other files are not resolved.
func Compile(text string) (protoreflect.FileDescriptor, error) {
	const name = "schema.proto"
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{name: text}),
	})}
	files, err := c.Compile(context.Background(), name)
	if err != nil {
		return nil, err
	}
	if files[0].Messages().Len() == 0 {
		return nil, errors.New("the schema declares no message")
	}
	return files[0], nil
}
