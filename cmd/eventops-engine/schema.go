package main

import (
	"fmt"
	"io"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/ruletest"
)

const schemaUsage = `Usage: eventops-engine schema [--test] > pipeline.schema.json

Prints the JSON Schema (draft-07) of pipeline files, or with --test of rule test files, for
editors: with the YAML extension of VS Code (yaml-language-server), put this first line in a
pipeline file:
  # yaml-language-server: $schema=path/to/pipeline.schema.json
The repository keeps both in schemas/ (pipeline.schema.json, pipeline-test.schema.json).
`

// schemaCmd prints the JSON Schema of the pipeline file, generated from the same specs the
// loader decodes with, so that it describes exactly what this binary accepts.
func schemaCmd(args []string, stdout, stderr io.Writer) int {
	generate := func() ([]byte, error) { return config.JSONSchema(components().Registry()) }
	if len(args) > 0 {
		switch args[0] {
		case "-h", "--help", "help":
			fmt.Fprint(stdout, schemaUsage)
			return 0
		case "--test", "-test":
			generate = ruletest.JSONSchema
			args = args[1:]
		}
	}
	if len(args) > 0 {
		fmt.Fprintf(stderr, "eventops-engine schema: takes no arguments but --test, got %q\n\n%s", args[0], schemaUsage)
		return 2
	}
	schema, err := generate()
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
