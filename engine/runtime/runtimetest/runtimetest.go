// Package runtimetest runs pipelines in a test's process: built, started, and stopped at
// the end of the test.
package runtimetest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/runtime"
)

// Timeout bounds starting and stopping a pipeline.
const Timeout = 30 * time.Second

// Start builds cfg with components and runs it with ro, and returns once it is up. stop
// (also called at the end of the test) ends the run and returns its error. The pipeline
// logs to stderr under go test -v, and nowhere otherwise.
func Start(tb testing.TB, cfg *config.Pipeline, components engine.Components, ro runtime.RunOptions) (running *runtime.Running, stop func() error) {
	tb.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	plan, err := runtime.Build(cfg, runtime.Options{Logger: logger, Components: components})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan *runtime.Running, 1)
	done := make(chan error, 1)
	ro.Started = func(r *runtime.Running) { started <- r }
	go func() { done <- plan.Run(ctx, ro) }()
	select {
	case running = <-started:
	case err := <-done:
		cancel()
		tb.Fatalf("pipeline stopped before starting: %v", err)
	case <-time.After(Timeout):
		cancel()
		tb.Fatalf("pipeline did not start within %s", Timeout)
	}
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(Timeout):
				tb.Errorf("pipeline did not stop within %s", Timeout)
			}
		})
		return runErr
	}
	tb.Cleanup(func() { stop() })
	return running, stop
}

// LintFindings lints file as `eventops-engine lint` does and checks its findings, errors and
// warnings sorted by position, against want: each finding must start with its want.
func LintFindings(t testing.TB, file string, components engine.Components, want []string) {
	t.Helper()
	_, cfg, err := runtime.Check(file, runtime.Options{Components: components, Logger: slog.New(slog.DiscardHandler)})
	var errs config.Errors
	if err != nil && !errors.As(err, &errs) {
		t.Fatalf("lint failed without findings: %v", err)
	}
	var findings config.Errors
	findings = append(findings, errs...)
	if cfg != nil {
		findings = append(findings, cfg.Warnings...)
	}
	findings.Sort()
	if len(findings) != len(want) {
		t.Errorf("%d findings, want %d:\n%v", len(findings), len(want), findings)
	}
	for i := range min(len(findings), len(want)) {
		if got := findings[i].Error(); !strings.HasPrefix(got, want[i]) {
			t.Errorf("finding %d:\ngot  %s\nwant %s...", i, got, want[i])
		}
	}
}
