package broker

import (
	"bytes"
	"encoding/binary"
	"os"
	"syscall"
	"testing"
)

// watchSegmentDeletes sends on the returned channel each time a segment file is deleted in
// one of dirs (Linux inotify), until the test ends.
func watchSegmentDeletes(t *testing.T, dirs ...string) <-chan struct{} {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	for _, d := range dirs {
		if _, err := syscall.InotifyAddWatch(fd, d, syscall.IN_DELETE); err != nil {
			t.Fatalf("inotify watch %s: %v", d, err)
		}
	}
	f := os.NewFile(uintptr(fd), "inotify") // non-blocking: Close ends a pending Read
	t.Cleanup(func() { f.Close() })
	out := make(chan struct{}, 1)
	go func() {
		defer close(out)
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			if deletedSegment(buf[:n]) {
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}

// deletedSegment reports whether a read of inotify events names a segment file.
func deletedSegment(events []byte) bool {
	const header = syscall.SizeofInotifyEvent
	for len(events) >= header {
		nameLen := int(binary.NativeEndian.Uint32(events[12:16]))
		name := string(bytes.TrimRight(events[header:header+nameLen], "\x00"))
		if segmentFile(name) {
			return true
		}
		events = events[header+nameLen:]
	}
	return false
}
