package fileinput

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventops/eventops-engine/engine"
)

// readAll reads in to its end, batch by batch.
func readAll(t *testing.T, in *Input) ([]*engine.Record, error) {
	t.Helper()
	var out []*engine.Record
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		batch, err := in.Read(ctx)
		out = append(out, batch...)
		if err != nil {
			return out, err
		}
	}
}

func TestEveryLineIsOneRecordNamedByItsLineNumber(t *testing.T) {
	cases := []struct {
		name, text string
		want       []string
		offsets    []int64
	}{
		{"newline at the end", "{\"a\":1}\n{\"a\":2}\n", []string{`{"a":1}`, `{"a":2}`}, []int64{0, 1}},
		{"no newline at the end", "{\"a\":1}\n{\"a\":2}", []string{`{"a":1}`, `{"a":2}`}, []int64{0, 1}},
		{"CRLF line ends", "{\"a\":1}\r\n{\"a\":2}\r\n", []string{`{"a":1}`, `{"a":2}`}, []int64{0, 1}},
		{"empty lines are skipped but counted", "\n{\"a\":1}\n\n\n{\"a\":2}\n\n", []string{`{"a":1}`, `{"a":2}`}, []int64{1, 4}},
		{"an empty input", "", nil, nil},
		{"a line longer than the read buffer", strings.Repeat("x", 200_000) + "\nend\n", []string{strings.Repeat("x", 200_000), "end"}, []int64{0, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := New(io.NopCloser(strings.NewReader(c.text)), Config{Source: "file:/x", BatchSize: 1, MaxLineBytes: 1 << 20})
			defer in.Close()
			recs, err := readAll(t, in)
			if !errors.Is(err, engine.ErrEndOfInput) {
				t.Fatalf("end: %v, want ErrEndOfInput", err)
			}
			if len(recs) != len(c.want) {
				t.Fatalf("%d records, want %d", len(recs), len(c.want))
			}
			for i, r := range recs {
				if string(r.Raw) != c.want[i] || r.Source.Offset != c.offsets[i] || r.Source.Topic != "file:/x" {
					t.Errorf("record %d: %.20q at %s offset %d, want %.20q at offset %d", i, r.Raw, r.Source.Topic, r.Source.Offset, c.want[i], c.offsets[i])
				}
			}
			if _, err := in.Read(context.Background()); !errors.Is(err, engine.ErrEndOfInput) {
				t.Errorf("a Read after the end: %v, want ErrEndOfInput again", err)
			}
		})
	}
}

func TestBatchesHoldUpToTheBatchSize(t *testing.T) {
	text := strings.Repeat("{}\n", 25)
	in := New(io.NopCloser(strings.NewReader(text)), Config{Source: "stdin", BatchSize: 10, MaxLineBytes: 100})
	defer in.Close()
	total := 0
	for {
		batch, err := in.Read(context.Background())
		if len(batch) > 10 {
			t.Fatalf("a batch of %d records, batch size 10", len(batch))
		}
		total += len(batch)
		if err != nil {
			break
		}
	}
	if total != 25 {
		t.Fatalf("%d records, want 25", total)
	}
}

// A line over the limit stops the input with an error naming it: it is neither cut nor
// skipped. The lines before it are read.
func TestALineOverTheLimitStopsTheInputNamingTheLine(t *testing.T) {
	text := "{\"a\":1}\n" + strings.Repeat("y", 101) + "\n{\"a\":3}\n"
	in := New(io.NopCloser(strings.NewReader(text)), Config{Source: "file:big.ndjson", BatchSize: 100, MaxLineBytes: 100})
	defer in.Close()
	recs, err := readAll(t, in)
	if len(recs) != 1 || string(recs[0].Raw) != `{"a":1}` {
		t.Fatalf("records before the long line: %d", len(recs))
	}
	if err == nil || errors.Is(err, engine.ErrEndOfInput) || !strings.Contains(err.Error(), "file:big.ndjson: line 2 is longer than max_line_bytes (100 bytes)") {
		t.Fatalf("error: %v", err)
	}
	if _, again := in.Read(context.Background()); again == nil || again.Error() != err.Error() {
		t.Fatalf("the next Read: %v, want the same error", again)
	}
}

// A line exactly at the limit is read; its line end does not count.
func TestALineAtTheLimitIsRead(t *testing.T) {
	text := strings.Repeat("z", 100) + "\r\n"
	in := New(io.NopCloser(strings.NewReader(text)), Config{Source: "stdin", MaxLineBytes: 100})
	defer in.Close()
	recs, err := readAll(t, in)
	if !errors.Is(err, engine.ErrEndOfInput) || len(recs) != 1 || len(recs[0].Raw) != 100 {
		t.Fatalf("%d records, err %v", len(recs), err)
	}
}

// Reading standard input blocks until a line comes; a Read must still end with its context
// (a stream ticks its processors and takes reloads between reads), and lose no line.
func TestAReadWaitingForStdinEndsWithItsContextAndLosesNothing(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	in := New(r, Config{Source: "stdin", MaxLineBytes: 100})
	defer in.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := in.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read with nothing written: %v, want the context's error", err)
	}
	w.WriteString("{\"late\":true}\n")
	w.Close()
	recs, err := readAll(t, in)
	if !errors.Is(err, engine.ErrEndOfInput) || len(recs) != 1 || string(recs[0].Raw) != `{"late":true}` {
		t.Fatalf("after the write: %d records, %v", len(recs), err)
	}
}

func TestOpenNamesAMissingFile(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing.ndjson"), Config{})
	if err == nil || !strings.Contains(err.Error(), "missing.ndjson") {
		t.Fatalf("error: %v", err)
	}
}
