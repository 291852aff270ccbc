package main

import (
	"fmt"
	"io"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/processors/all"
)

const schemaUsage = `Usage: eventops-engine schema > pipeline.schema.json

Prints the JSON Schema (draft-07) of pipeline files, for editors: with the YAML extension of
VS Code (yaml-language-server), put this first line in a pipeline file:
  # yaml-language-server: $schema=path/to/pipeline.schema.json
`

// schemaCmd prints the JSON Schema of the pipeline file, generated from the same specs the
// loader decodes with, so that it describes exactly what this binary accepts.
func schemaCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			fmt.Fprint(stdout, schemaUsage)
			return 0
		}
		fmt.Fprintf(stderr, "eventops-engine schema: takes no arguments, got %q\n\n%s", args[0], schemaUsage)
		return 2
	}
	schema, err := config.JSONSchema(all.Registry())
	if err != nil {
		fmt.Fprintln(stderr, "eventops-engine schema:", err)
		return 1
	}
	if _, err := stdout.Write(schema); err != nil {
		fmt.Fprintln(stderr, "eventops-engine schema:", err)
		return 1
	}
	return 0
}
