package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/ruletest"
	"github.com/eventops/eventops-engine/engine/runtime"
)

const lintUsage = `Usage: eventops-engine lint [--format text|json|github] [--strict] FILE|DIR...

Checks pipeline files without connecting to anything. A directory stands for every *.yaml
and *.yml file below it (hidden files and directories skipped); each of them is linted as a
pipeline file, except *_test.yaml and *_test.yml files, which are rule test files (see
eventops-engine test): their format, the pipeline they name, and the streams, topics and
rules they refer to are checked. Flags may come before or after the files.

Flags:
  --format FMT   text (file:line:col: path: message), json (one object per line) or
                 github (GitHub Actions annotations); default text
  --strict       treat warnings as errors

Exit status: 0 no errors, 1 errors found, 2 usage error or a path that cannot be read.
`

// checkResult is what loading and building one pipeline file found.
type checkResult struct {
	plan *runtime.Plan
	// findings are the file's errors and warnings, sorted by position.
	findings config.Errors
	// unreadable is set when the file could not be checked at all (it does not exist, it
	// cannot be read); it is not a finding about the file's content.
	unreadable error
	// test is set for a rule test file, which has no plan of its own.
	test bool
}

// failed reports whether the file must not run. A missing plan counts even when every
// finding is a warning, so that lint never accepts a file that run would refuse.
func (r checkResult) failed(strict bool) bool {
	if r.unreadable != nil || (r.plan == nil && !r.test) {
		return true
	}
	return slices.ContainsFunc(r.findings, func(f *config.Error) bool { return strict || !f.Warning })
}

// checkFile loads and builds file exactly as run does before starting anything. Lint and
// run both go through it, which is what makes "lint accepts it" mean "run accepts it".
func checkFile(file string, logger *slog.Logger) checkResult {
	plan, cfg, err := runtime.Check(file, runtime.Options{Logger: logger, Components: components()})
	var r checkResult
	if cfg != nil {
		r.findings = append(r.findings, cfg.Warnings...)
	}
	var errs config.Errors
	switch {
	case err == nil:
		r.plan = plan
	case errors.As(err, &errs):
		r.findings = append(r.findings, errs...)
	default:
		r.unreadable = err
	}
	r.findings.Sort()
	return r
}

// checkTestFile loads a rule test file as eventops-engine test does.
func checkTestFile(file string) checkResult {
	r := checkResult{test: true}
	_, err := ruletest.Load(file, components())
	var errs config.Errors
	switch {
	case err == nil:
	case errors.As(err, &errs):
		r.findings = append(r.findings, errs...)
	default:
		r.unreadable = err
	}
	r.findings.Sort()
	return r
}

// lintFormats print one finding each; strict has already turned warnings into errors.
var lintFormats = map[string]func(w io.Writer, f *config.Error){
	"text":   func(w io.Writer, f *config.Error) { fmt.Fprintln(w, f) },
	"json":   writeJSONFinding,
	"github": writeGitHubFinding,
}

func lint(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, lintUsage) }
	format := fs.String("format", "text", "output format: text, json or github")
	strict := fs.Bool("strict", false, "treat warnings as errors")
	paths, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	write, ok := lintFormats[*format]
	if !ok {
		fmt.Fprintf(stderr, "eventops-engine lint: unknown --format %q: use text, json or github\n", *format)
		return 2
	}
	if len(paths) == 0 {
		fmt.Fprint(stderr, "eventops-engine lint: no files given\n\n", lintUsage)
		return 2
	}

	files, problems := expandPaths(paths, isYAML, "*.yaml or *.yml")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var findings config.Errors
	code := 0
	for _, file := range files {
		var r checkResult
		if ruletest.IsTestFile(file) {
			r = checkTestFile(file)
		} else {
			r = checkFile(file, logger)
		}
		if r.unreadable != nil {
			problems = append(problems, r.unreadable)
			continue
		}
		if r.failed(*strict) {
			code = 1
		}
		findings = append(findings, r.findings...)
	}
	findings.Sort()

	var nErrors, nWarnings int
	for _, f := range findings {
		if *strict && f.Warning {
			promoted := *f
			promoted.Warning = false
			f = &promoted
		}
		if f.Warning {
			nWarnings++
		} else {
			nErrors++
		}
		write(stdout, f)
	}
	for _, p := range problems {
		fmt.Fprintf(stderr, "eventops-engine lint: %v\n", describeIOError(p))
	}
	if len(problems) > 0 {
		code = 2
	}
	fmt.Fprintln(stderr, lintSummary(paths, len(files), nErrors, nWarnings, len(problems)))
	return code
}

// parseInterspersed parses flags wherever they appear among the arguments, since the flag
// package stops at the first non-flag and "lint pipelines/ --strict" is a natural thing
// to type. Everything after "--" is a path.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// expandPaths turns the command line's files and directories into the sorted, deduplicated
// list of files to lint, and the paths that could not be read.
// isYAML tells a YAML file by its extension.
func isYAML(path string) bool {
	ext := filepath.Ext(path)
	return ext == ".yaml" || ext == ".yml"
}

// expandPaths lists the files named, and for a directory the files below it that keep
// accepts (hidden ones skipped); a directory with none is a problem (described as what).
func expandPaths(paths []string, keep func(string) bool, what string) (files []string, problems []error) {
	seen := map[string]bool{}
	add := func(file string) {
		if !seen[filepath.Clean(file)] {
			seen[filepath.Clean(file)] = true
			files = append(files, file)
		}
	}
	for _, path := range paths {
		info, err := os.Stat(path)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if !info.IsDir() {
			add(path)
			continue
		}
		found := 0
		walkErr := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				problems = append(problems, err)
				return nil
			}
			hidden := p != path && strings.HasPrefix(d.Name(), ".")
			if d.IsDir() {
				if hidden {
					return filepath.SkipDir
				}
				return nil
			}
			if !hidden && keep(p) {
				add(p)
				found++
			}
			return nil
		})
		if walkErr != nil {
			problems = append(problems, walkErr)
		} else if found == 0 {
			// A CI job pointed at the wrong directory must not pass for having checked nothing.
			problems = append(problems, fmt.Errorf("%s: no %s files in this directory", path, what))
		}
	}
	slices.Sort(files)
	return files, problems
}

// describeIOError says "cannot read PATH: reason" rather than Go's "open PATH: reason".
func describeIOError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Sprintf("cannot read %s: %v", pe.Path, pe.Err)
	}
	return err.Error()
}

func lintSummary(paths []string, nFiles, nErrors, nWarnings, nProblems int) string {
	var parts []string
	if nErrors > 0 {
		parts = append(parts, plural(nErrors, "error"))
	}
	if nWarnings > 0 {
		parts = append(parts, plural(nWarnings, "warning"))
	}
	if nProblems > 0 {
		parts = append(parts, plural(nProblems, "path")+" not checked")
	}
	if len(parts) > 0 {
		return plural(nFiles, "file") + ": " + strings.Join(parts, ", ")
	}
	if len(paths) == 1 {
		return paths[0] + ": ok"
	}
	return plural(nFiles, "file") + ": ok"
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func countErrors(findings config.Errors) int {
	n := 0
	for _, f := range findings {
		if !f.Warning {
			n++
		}
	}
	return n
}

func severity(f *config.Error) string {
	if f.Warning {
		return "warning"
	}
	return "error"
}

func writeJSONFinding(w io.Writer, f *config.Error) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // keep "valeu >= 1" readable in the message
	_ = enc.Encode(struct {
		File     string `json:"file"`
		Line     int    `json:"line"`
		Col      int    `json:"col"`
		Path     string `json:"path"`
		Severity string `json:"severity"`
		Message  string `json:"message"`
	}{f.Pos.File, f.Pos.Line, f.Pos.Col, f.Path, severity(f), f.Msg})
}

// writeGitHubFinding prints a GitHub Actions workflow command, which the Actions runner
// turns into an annotation on the file and line.
func writeGitHubFinding(w io.Writer, f *config.Error) {
	var props []string
	if f.Pos.File != "" {
		props = append(props, "file="+escapeGitHubProperty(f.Pos.File))
	}
	if f.Pos.Line > 0 {
		props = append(props, fmt.Sprintf("line=%d", f.Pos.Line))
	}
	if f.Pos.Col > 0 {
		props = append(props, fmt.Sprintf("col=%d", f.Pos.Col))
	}
	if f.Path != "" {
		props = append(props, "title="+escapeGitHubProperty(f.Path))
	}
	command := severity(f)
	if len(props) > 0 {
		command += " " + strings.Join(props, ",")
	}
	fmt.Fprintf(w, "::%s::%s\n", command, escapeGitHubData(f.Msg))
}

var (
	gitHubDataEscaper     = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	gitHubPropertyEscaper = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
)

func escapeGitHubData(s string) string     { return gitHubDataEscaper.Replace(s) }
func escapeGitHubProperty(s string) string { return gitHubPropertyEscaper.Replace(s) }
