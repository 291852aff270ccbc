package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A replay as a user runs it: events piped into the binary go through the pipeline to
// standard output, one JSON line each, in order, rule state and all; the process ends by
// itself, with status 0, when its input does.
func TestEventsPipedThroughTheBinaryComeOutOnStdoutAndItExits(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	pipeline := filepath.Join(dir, "replay.yaml")
	os.WriteFile(pipeline, []byte(fmt.Sprintf(`version: 1
broker: {embedded: {listen: 127.0.0.1:0, data_dir: %s}}
topics: {dead: {partitions: 1}}
dead_letter: dead
streams:
  - name: replay
    input: {stdin: {}}
    processors:
      - threshold:
          series: [host]
          rules:
            - name: hot
              severities: [{severity: critical, when: 'value >= 90'}]
              clear_when: 'value < 50'
    output: {stdout: {}}
`, filepath.Join(dir, "broker"))), 0o644)

	cmd := exec.Command(bin, "-c", pipeline, "--log-level", "warn")
	cmd.Stdin = strings.NewReader(`{"host":"a","value":95}
{"host":"b","value":10}
{"host":"a","value":97}
not json
{"host":"a","value":20}
`)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatalf("still running a minute after its input ended\n%s", stderr.String())
	}
	var states []string
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var alert struct{ State, SourceID string }
		if err := json.Unmarshal([]byte(line), &alert); err != nil {
			t.Fatalf("stdout line %q: %v", line, err)
		}
		states = append(states, alert.State)
	}
	if got := strings.Join(states, ","); got != "firing,resolved" {
		t.Fatalf("alerts on stdout: %s, want firing,resolved (one series, its state kept between lines)\n%s", got, stdout.String())
	}
	// Even at --log-level warn, the run says that a line went to the dead-letter topic.
	if log := stderr.String(); !strings.Contains(log, "read its input to the end") || !strings.Contains(log, "read=5") || !strings.Contains(log, "dead_lettered=1") || !strings.Contains(log, "dead_letter_topic=dead") {
		t.Fatalf("no summary naming the dead letter on stderr:\n%s", log)
	}
}
