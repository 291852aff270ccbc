// Package fileinput is the input that reads newline-delimited records from a file or from
// standard input: replays, debugging, and measuring a pipeline without a broker in front.
//
// It reads once, from the start, and keeps no position: a restart reads everything again.
// Each line is one record (its bytes, as a topic record's value would be); empty lines are
// skipped but counted, so a record's source offset is its line number less one, and
// record_id() gives the same line of the same file the same id on every run. At the end of
// the input, Read returns engine.ErrEndOfInput once every line has been returned.
package fileinput

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/eventops/eventops-engine/engine"
)

// Input reads lines from r in a goroutine of its own, so that Read can give up when its
// context ends (a read of standard input cannot be interrupted).
type Input struct {
	source    string // Source.Topic of the records: "file:PATH" or "stdin"
	batchSize int
	clock     engine.Clock

	lines   chan line
	stop    chan struct{}
	closeMu sync.Once
	closer  io.Closer
	ended   bool // every line has been returned
	pending *line
}

// line is one line read, or the error that ended the input (io.EOF at its end).
type line struct {
	number int64 // from 1
	data   []byte
	err    error
}

// Config says how to read.
type Config struct {
	// Source names the input in records (Source.Topic) and messages.
	Source       string
	BatchSize    int
	MaxLineBytes int
	Clock        engine.Clock
}

// Open opens the file at path.
func Open(path string, cfg Config) (*Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("file input: %w", err)
	}
	return New(f, cfg), nil
}

// New reads r, which Close closes.
func New(r io.ReadCloser, cfg Config) *Input {
	if cfg.BatchSize < 1 {
		cfg.BatchSize = 10000
	}
	if cfg.Clock == nil {
		cfg.Clock = engine.WallClock{}
	}
	in := &Input{source: cfg.Source, batchSize: cfg.BatchSize, clock: cfg.Clock,
		lines: make(chan line, cfg.BatchSize), stop: make(chan struct{}), closer: r}
	go in.scan(r, max(cfg.MaxLineBytes, 1))
	return in
}

// scan sends every non-empty line of r, then the error that ended it.
func (in *Input) scan(r io.Reader, maxLine int) {
	br := bufio.NewReaderSize(r, 64<<10)
	var n int64
	for {
		data, err := readLine(br, maxLine)
		n++
		if err != nil && !(errors.Is(err, io.EOF) && len(data) > 0) {
			if errors.Is(err, errTooLong) {
				err = fmt.Errorf("%s: line %d is longer than max_line_bytes (%d bytes)", in.source, n, maxLine)
			}
			in.send(line{number: n, err: err})
			return
		}
		if len(data) > 0 && !in.send(line{number: n, data: data}) {
			return
		}
		if err != nil { // io.EOF after a last line without a newline
			in.send(line{number: n + 1, err: io.EOF})
			return
		}
	}
}

func (in *Input) send(l line) bool {
	select {
	case in.lines <- l:
		return true
	case <-in.stop:
		return false
	}
}

var errTooLong = errors.New("line too long")

// readLine reads the next line without its end ("\n" or "\r\n"), in a buffer of its own.
// A line longer than maxLine is errTooLong, found before more than one read buffer past
// the limit is held.
func readLine(br *bufio.Reader, maxLine int) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		out = append(out, chunk...)
		more := errors.Is(err, bufio.ErrBufferFull)
		if len(out) > maxLine+2 || !more && len(bytes.TrimRight(out, "\r\n")) > maxLine {
			return nil, errTooLong
		}
		if !more {
			return bytes.TrimRight(out, "\r\n"), err
		}
	}
}

// Read returns the lines read so far (at least one, waiting for it), up to the batch size.
func (in *Input) Read(ctx context.Context) ([]*engine.Record, error) {
	if in.ended {
		return nil, engine.ErrEndOfInput
	}
	first, err := in.next(ctx)
	if err != nil {
		return nil, err
	}
	now := in.clock.Now()
	batch := []*engine.Record{in.record(first, now)}
	for len(batch) < in.batchSize {
		select {
		case l := <-in.lines:
			if l.err != nil {
				in.pending = &l // returned by the next Read, after this batch
				return batch, nil
			}
			batch = append(batch, in.record(l, now))
		default:
			return batch, nil
		}
	}
	return batch, nil
}

// next waits for a line; the input's end and read errors come as errors.
func (in *Input) next(ctx context.Context) (line, error) {
	l, ok := in.takePending()
	if !ok {
		select {
		case l = <-in.lines:
		case <-ctx.Done():
			return line{}, ctx.Err()
		}
	}
	switch {
	case errors.Is(l.err, io.EOF):
		in.ended = true
		return line{}, engine.ErrEndOfInput
	case l.err != nil:
		in.pending = &l // an input that failed stays failed
		return line{}, l.err
	}
	return l, nil
}

func (in *Input) takePending() (line, bool) {
	if in.pending == nil {
		return line{}, false
	}
	l := *in.pending
	in.pending = nil
	return l, true
}

func (in *Input) record(l line, now time.Time) *engine.Record {
	return &engine.Record{Raw: l.data, Source: engine.Source{Topic: in.source, Offset: l.number - 1}, Timestamp: now}
}

// Ack does nothing: the input keeps no position.
func (in *Input) Ack(context.Context, []*engine.Record) error { return nil }

// Close stops reading and closes the file.
func (in *Input) Close() error {
	var err error
	in.closeMu.Do(func() {
		close(in.stop)
		err = in.closer.Close()
	})
	return err
}
