package stdout

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/enginetest"
)

// lockedBuffer is a writer the test reads while the output writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	return out
}

// The stdout output passes the conformance suite every output passes: its lines are what it
// wrote, readable once Write returns; a record that is not JSON goes to rejects.
func TestStdoutConformance(t *testing.T) {
	enginetest.TestOutput(t, func(t *testing.T) (engine.Output, enginetest.ReadBack) {
		var buf lockedBuffer
		o := New(&buf, false)
		t.Cleanup(func() { o.Close() })
		return o, func(context.Context) ([]map[string]any, error) {
			var rows []map[string]any
			for _, l := range buf.lines() {
				var row map[string]any
				if err := json.Unmarshal(l, &row); err != nil {
					return nil, err
				}
				rows = append(rows, row)
			}
			return rows, nil
		}
	})
}

// raw: true writes the bytes as read, so a replayed topic comes out as it went in.
func TestStdoutRawWritesTheBytesAsRead(t *testing.T) {
	var buf lockedBuffer
	o := New(&buf, true)
	rec := &engine.Record{Raw: []byte(`{"b":1, "a":2}`), Value: map[string]any{"a": 2, "b": 1}}
	if err := o.Write(context.Background(), []*engine.Record{rec}, &engine.Rejects{}); err != nil {
		t.Fatal(err)
	}
	if got := buf.lines(); len(got) != 1 || string(got[0]) != `{"b":1, "a":2}` {
		t.Errorf("raw line %q, want the bytes as read", got)
	}
}
