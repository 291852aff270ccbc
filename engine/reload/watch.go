// Package reload is what makes a running pipeline follow its files: a watcher that reports,
// debounced, when the pipeline file or a file it references changes (however an editor
// writes it), and the status of the reloads it triggers.
package reload

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher reports changes of a set of files. It watches their directories rather than the
// files: editors that save by writing a temporary file and renaming it over the original,
// and files deleted and created again, replace the inode a file watch would follow, while
// the directory sees every step under the file's name.
type Watcher struct {
	fs       *fsnotify.Watcher
	debounce time.Duration
	changes  chan []string
	errs     chan error

	mu    sync.Mutex
	files map[string]bool // absolute, cleaned
	dirs  map[string]bool

	done chan struct{}
	wg   sync.WaitGroup
}

// NewWatcher watches files. Changes arrive on Changes once no event has come for debounce,
// listing the files that changed; a burst of writes (an editor saving, a script copying
// several files) is one change.
func NewWatcher(files []string, debounce time.Duration) (*Watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watching files: %w", err)
	}
	w := &Watcher{fs: fw, debounce: debounce, changes: make(chan []string, 1), errs: make(chan error, 1),
		files: map[string]bool{}, dirs: map[string]bool{}, done: make(chan struct{})}
	if err := w.Set(files); err != nil {
		fw.Close()
		return nil, err
	}
	w.wg.Add(1)
	go w.loop()
	return w, nil
}

// Changes delivers the files changed, one list per debounced burst.
func (w *Watcher) Changes() <-chan []string { return w.changes }

// Errors delivers problems of the underlying watch (for the log); watching goes on.
func (w *Watcher) Errors() <-chan error { return w.errs }

// Set replaces the watched files (after a reload, the pipeline may reference others).
func (w *Watcher) Set(files []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	want, dirs := map[string]bool{}, map[string]bool{}
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return fmt.Errorf("watching %s: %w", f, err)
		}
		want[abs] = true
		dirs[filepath.Dir(abs)] = true
	}
	var errs []error
	for d := range dirs {
		if w.dirs[d] {
			continue
		}
		if err := w.fs.Add(d); err != nil {
			errs = append(errs, fmt.Errorf("watching directory %s: %w", d, err))
			delete(dirs, d)
		}
	}
	for d := range w.dirs {
		if !dirs[d] {
			_ = w.fs.Remove(d) // gone or no longer needed
		}
	}
	w.files, w.dirs = want, dirs
	return errors.Join(errs...)
}

func (w *Watcher) watched(path string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.files[filepath.Clean(path)]
}

// loop collects events for watched files and hands them over after the quiet period.
func (w *Watcher) loop() {
	defer w.wg.Done()
	var pending []string
	var timer *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case <-w.done:
			if timer != nil {
				timer.Stop()
			}
			return
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if !w.watched(ev.Name) || ev.Op == fsnotify.Chmod {
				continue
			}
			if !slices.Contains(pending, filepath.Clean(ev.Name)) {
				pending = append(pending, filepath.Clean(ev.Name))
			}
			if timer == nil {
				timer = time.NewTimer(w.debounce)
			} else {
				timer.Reset(w.debounce)
			}
			fire = timer.C
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			select {
			case w.errs <- err:
			default:
			}
		case <-fire:
			fire = nil
			// A file still missing (deleted, not yet written again) is not a change to act
			// on: its next creation will be.
			ready := slices.DeleteFunc(slices.Clone(pending), func(p string) bool {
				_, err := os.Stat(p)
				return err != nil
			})
			if len(ready) == 0 {
				continue
			}
			pending = slices.DeleteFunc(pending, func(p string) bool { return slices.Contains(ready, p) })
			slices.Sort(ready)
			select {
			case w.changes <- ready:
			case <-w.done:
				return
			}
		}
	}
}

// Close stops watching.
func (w *Watcher) Close() error {
	close(w.done)
	err := w.fs.Close()
	w.wg.Wait()
	return err
}
