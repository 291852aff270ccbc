package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/ruletest"
)

const testUsage = `Usage: eventops-engine test [--junit FILE] [--coverage] [--run REGEXP] FILE|DIR...

Runs rule test files: each case feeds records to the pipeline it names and checks the alerts,
the records written and the records rejected at points of a virtual clock, without a broker
or a database. A directory stands for every *_test.yaml and *_test.yml file below it. The
format is in docs/testing.md; examples/*_test.yaml are examples. Flags may come before or
after the files.

Flags:
  --junit FILE   also write the results as JUnit XML to FILE
  --coverage     report the rules that never raised an alert and the streams that never
                 read a record, over every case run
  --run REGEXP   run only the cases whose name matches

Exit status: 0 every case passed, 1 a case failed, 2 usage error or a file that cannot be
read or has errors.
`

func testCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, testUsage) }
	junit := fs.String("junit", "", "write JUnit XML to this file")
	coverage := fs.Bool("coverage", false, "report rules never fired and streams never exercised")
	only := fs.String("run", "", "run only the cases whose name matches this regular expression")
	paths, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if len(paths) == 0 {
		fmt.Fprint(stderr, "eventops-engine test: no files given\n\n", testUsage)
		return 2
	}
	filter, err := ruletest.NameFilter(*only)
	if err != nil {
		fmt.Fprintf(stderr, "eventops-engine test: --run: %v\n", err)
		return 2
	}
	files, problems := expandPaths(paths, ruletest.IsTestFile, "*_test.yaml or *_test.yml")
	code := 0
	var report ruletest.Report
	t0 := time.Now()
	for _, file := range files {
		suite, err := ruletest.Load(file, components())
		if err != nil {
			var errs config.Errors
			if errors.As(err, &errs) {
				for _, e := range errs {
					fmt.Fprintln(stdout, e)
				}
				report.Broken(file, err)
				code = 2
				continue
			}
			problems = append(problems, err)
			continue
		}
		t1 := time.Now()
		results := suite.RunMatching(context.Background(), filter)
		report.Add(suite, results)
		failed := 0
		for _, r := range results {
			if !r.Passed() {
				failed++
			}
		}
		status := "ok  "
		if failed > 0 {
			status = "FAIL"
		}
		fmt.Fprintf(stdout, "%s %s: %s, %d failed (%s)\n", status, file, plural(len(results), "case"), failed, time.Since(t1).Round(time.Millisecond))
		for _, r := range results {
			if r.Passed() {
				continue
			}
			if code == 0 {
				code = 1
			}
			fmt.Fprintf(stdout, "--- FAIL: %s (%s)\n", r.Name, r.Pos)
			if r.Err != nil {
				fmt.Fprintf(stdout, "    %v\n", r.Err)
			}
			for _, f := range r.Failures {
				fmt.Fprintf(stdout, "    %s\n", strings.ReplaceAll(strings.TrimRight(f.String(), "\n"), "\n", "\n    "))
			}
		}
	}
	for _, p := range problems {
		fmt.Fprintf(stderr, "eventops-engine test: %v\n", describeIOError(p))
		code = 2
	}
	if *coverage {
		report.WriteCoverage(stdout)
	}
	if *junit != "" {
		if err := report.WriteJUnitFile(*junit); err != nil {
			fmt.Fprintf(stderr, "eventops-engine test: --junit: %v\n", err)
			code = 2
		}
	}
	fmt.Fprintln(stderr, report.Summary(time.Since(t0)))
	return code
}
