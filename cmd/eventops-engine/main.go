// Command eventops-engine runs a stream processing pipeline declared in one YAML file.
//
//	eventops-engine -c pipeline.yaml          run it (same as: eventops-engine run -c pipeline.yaml)
//	eventops-engine run --dry-run -c FILE     load and build it, start nothing
//	eventops-engine lint FILE|DIR...          check files without connecting to anything
//	eventops-engine test FILE|DIR...          run rule test files on a virtual clock
//	eventops-engine version                   print the version
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/ruletest"
	"github.com/eventops/eventops-engine/engine/runtime"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	tuneGC()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// tuneGC trades memory for CPU unless the operator chose: a stream engine allocates many
// short-lived values per event, and with Go's default GOGC=100 the collector took a fifth of
// the CPU in the end-to-end benchmark. GOGC in the environment still wins.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

const usage = `eventops-engine: a declarative stream processing engine for operations telemetry.

Usage:
  eventops-engine -c FILE               run the pipeline in FILE
  eventops-engine run -c FILE           the same
  eventops-engine run --dry-run -c FILE load and build the pipeline, start nothing
  eventops-engine lint [--format text|json|github] [--strict] FILE|DIR...
                                        check pipeline files; exit 1 if any has errors
  eventops-engine test [--junit FILE] [--coverage] FILE|DIR...
                                        run rule test files on a virtual clock; exit 1 if
                                        a case fails
  eventops-engine schema [--test]       print the JSON Schema of pipeline files (of rule
                                        test files with --test), for editors
  eventops-engine version               print the version

Run flags:
  -c, --config FILE   pipeline file (required)
  --log-level LEVEL   debug, info, warn or error (default info)
  --log-format FMT    text or json (default text)
  --dry-run           load and build, print what is wrong, start nothing
  --instance-id ID    this engine's name in its consumer groups; must differ between
                      instances running at once, should stay the same across restarts
                      (default $EVENTOPS_INSTANCE_ID, else the host name)
  --no-watch          do not reload when the pipeline file or a file it references
                      changes (watching is on by default; SIGHUP and POST /-/reload
                      reload either way)
  --cpuprofile FILE   write a CPU profile of the run to FILE when it stops (go tool
                      pprof reads it; bench/latency -profile uses it)
  --memprofile FILE   write a profile of the memory allocated during the run to FILE
                      when it stops (go tool pprof -sample_index=alloc_space reads it)
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "eventops-engine", versionString())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "lint":
		return lint(args[1:], stdout, stderr)
	case "run":
		return runPipeline(args[1:], stderr)
	case "schema":
		return schemaCmd(args[1:], stdout, stderr)
	case "test":
		return testCmd(args[1:], stdout, stderr)
	}
	if !strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "eventops-engine: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	return runPipeline(args, stderr)
}

func versionString() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

func runPipeline(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var file, level, format string
	fs.StringVar(&file, "c", "", "pipeline file")
	fs.StringVar(&file, "config", "", "pipeline file")
	fs.StringVar(&level, "log-level", "info", "log level")
	fs.StringVar(&format, "log-format", "text", "log format: text or json")
	dryRun := fs.Bool("dry-run", false, "load and build the pipeline, print what is wrong, start nothing")
	instanceID := fs.String("instance-id", "", "this engine's name among the members of its consumer groups (default $EVENTOPS_INSTANCE_ID, else the host name)")
	watch := fs.Bool("watch", true, "reload when the pipeline file or a file it references changes")
	noWatch := fs.Bool("no-watch", false, "do not watch the pipeline's files (SIGHUP and POST /-/reload still reload)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (for benchmarks)")
	memProfile := fs.String("memprofile", "", "write a profile of the memory allocated during the run to this file (for benchmarks)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "eventops-engine:", err)
			return 2
		}
		defer stopProfile()
	}
	if *memProfile != "" {
		defer writeAllocProfile(*memProfile, stderr)
	}
	if file == "" {
		fmt.Fprintln(stderr, "eventops-engine: no pipeline file: use -c FILE")
		return 2
	}
	if ruletest.IsTestFile(file) {
		fmt.Fprintf(stderr, "eventops-engine: %s is a rule test file (its name ends in _test.yaml): run it with eventops-engine test %s\n", file, file)
		return 2
	}
	logger, err := newLogger(stderr, level, format)
	if err != nil {
		fmt.Fprintln(stderr, "eventops-engine:", err)
		return 2
	}

	checked := checkFile(file, logger)
	if checked.unreadable != nil {
		fmt.Fprintf(stderr, "%s: %v\n", file, checked.unreadable)
		return 1
	}
	for _, f := range checked.findings {
		fmt.Fprintln(stderr, f)
	}
	if checked.failed(false) {
		fmt.Fprintf(stderr, "%s: %s; nothing was started\n", file, plural(countErrors(checked.findings), "error"))
		return 1
	}
	if *dryRun {
		fmt.Fprintf(stderr, "%s: ok, nothing started\n", file)
		return 0
	}
	plan := checked.plan
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	opts := runtime.RunOptions{
		InstanceID: *instanceID,
		// For measuring what decode once saves (docs/benchmarks.md); not a setting.
		DecodeEveryRecord: os.Getenv("EVENTOPS_DECODE_EVERY_RECORD") == "1",
		Load:              func() (*config.Pipeline, error) { return config.Load(file, components().Registry()) },
		Watch:             *watch && !*noWatch,
		Started: func(r *runtime.Running) {
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						r.ReloadFiles(ctx, "SIGHUP", nil)
					}
				}
			}()
		},
	}
	if err := plan.Run(ctx, opts); err != nil {
		logger.Error("pipeline stopped", "err", err)
		return 1
	}
	return 0
}

// startCPUProfile profiles the process until the returned function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// writeAllocProfile writes the allocations made since the start (the heap profile, whose
// alloc_space and alloc_objects samples count every allocation, freed or not).
func writeAllocProfile(path string, stderr io.Writer) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "eventops-engine: memory profile:", err)
	}
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("bad --log-format %q: use text or json", format)
}
