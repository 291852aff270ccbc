package webhook

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/eventops/eventops-engine/engine/atomicfile"
)

// deliveryLog remembers the idempotency keys of the records the receiver acknowledged (a
// 2xx), in a file, so that a batch written again after a kill -9 or a crash does not send
// them again. The stream commits a batch's offsets only after Write returns, so a restart
// reads again the batch a kill cut short, records delivered and not alike; without the log
// the receiver would have to drop the repeats by their idempotency key.
//
// The file is appended to without fsync, like the embedded broker's files: it survives a
// kill of the process, not a power cut of the host. It holds the newest keep keys (the
// batches read again after a restart are the uncommitted ones, far fewer), and is rewritten
// with those once it holds twice as many lines.
type deliveryLog struct {
	mu    sync.Mutex
	path  string
	f     *os.File
	keep  int
	keys  map[string]struct{}
	order []string // keys, oldest first
	lines int      // lines in the file
}

// openDeliveryLog reads the log at path, if any, and opens it for appending.
func openDeliveryLog(path string, keep int) (*deliveryLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("delivery log: %w", err)
	}
	l := &deliveryLog{path: path, keep: keep, keys: map[string]struct{}{}}
	raw, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("delivery log: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		// A line cut short by a kill is not a key a record has (keys are 32 hex digits).
		if k := sc.Text(); len(k) == idempotencyKeyLen {
			l.remember(k)
		}
	}
	if err := l.rewrite(); err != nil {
		return nil, err
	}
	return l, nil
}

// idempotencyKeyLen is the length of the keys digest makes.
const idempotencyKeyLen = 32

// delivered says whether the receiver acknowledged the record with key before.
func (l *deliveryLog) delivered(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.keys[key]
	return ok
}

// add records that the receiver acknowledged the records with keys.
func (l *deliveryLog) add(keys []string) error {
	var buf strings.Builder
	for _, k := range keys {
		buf.WriteString(k)
		buf.WriteByte('\n')
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("delivery log: closed")
	}
	for _, k := range keys {
		l.remember(k)
	}
	if _, err := l.f.WriteString(buf.String()); err != nil {
		return fmt.Errorf("delivery log: %w", err)
	}
	l.lines += len(keys)
	if l.lines > 2*l.keep {
		return l.rewrite()
	}
	return nil
}

// remember adds k to the keys, forgetting the oldest beyond keep.
func (l *deliveryLog) remember(k string) {
	if _, ok := l.keys[k]; ok {
		return
	}
	l.keys[k] = struct{}{}
	l.order = append(l.order, k)
	if len(l.order) > l.keep {
		delete(l.keys, l.order[0])
		l.order = l.order[1:]
	}
}

// rewrite replaces the file by one holding the kept keys, and opens it for appending.
func (l *deliveryLog) rewrite() error {
	if len(l.order) > 0 && cap(l.order) > 2*len(l.order) {
		l.order = append([]string(nil), l.order...) // let the forgotten prefix go
	}
	var buf bytes.Buffer
	for _, k := range l.order {
		buf.WriteString(k)
		buf.WriteByte('\n')
	}
	if l.f != nil {
		l.f.Close()
	}
	f, err := atomicfile.Replace(l.path, buf.Bytes())
	if err != nil {
		return fmt.Errorf("delivery log: %w", err)
	}
	l.f, l.lines = f, len(l.order)
	return nil
}

// Close closes the file.
func (l *deliveryLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
