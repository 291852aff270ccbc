package reload

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func next(t *testing.T, w *Watcher) []string {
	t.Helper()
	select {
	case files := <-w.Changes():
		return files
	case err := <-w.Errors():
		t.Fatalf("watch error: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported within 10s")
	}
	return nil
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Each way a file gets changed is reported, under the file's own name, and only for the
// watched files: a plain write, an editor's write-aside-and-rename, a delete followed by a
// new file, a file in another directory, and a file added to the set later.
func TestWatcherSeesEveryKindOfWrite(t *testing.T) {
	dir := t.TempDir()
	pipeline := filepath.Join(dir, "pipeline.yaml")
	lookups := filepath.Join(dir, "lookups")
	if err := os.Mkdir(lookups, 0o755); err != nil {
		t.Fatal(err)
	}
	cmdb := filepath.Join(lookups, "cmdb.csv")
	write(t, pipeline, "version: 1\n")
	write(t, cmdb, "host,site\n")
	w, err := NewWatcher([]string{pipeline, cmdb}, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	t.Run("a plain write", func(t *testing.T) {
		write(t, pipeline, "version: 1\n# edited\n")
		if got := next(t, w); !slices.Equal(got, []string{pipeline}) {
			t.Fatalf("changed %v, want %v", got, []string{pipeline})
		}
	})
	t.Run("an editor writing aside and renaming over the file", func(t *testing.T) {
		tmp := filepath.Join(dir, ".pipeline.yaml.swp")
		write(t, tmp, "version: 1\n# saved by an editor\n")
		if err := os.Rename(tmp, pipeline); err != nil {
			t.Fatal(err)
		}
		if got := next(t, w); !slices.Equal(got, []string{pipeline}) {
			t.Fatalf("changed %v, want %v (the temporary file is not watched)", got, []string{pipeline})
		}
	})
	t.Run("a file deleted and written again", func(t *testing.T) {
		if err := os.Remove(cmdb); err != nil {
			t.Fatal(err)
		}
		write(t, cmdb, "host,site\nhost-a,fra1\n")
		if got := next(t, w); !slices.Equal(got, []string{cmdb}) {
			t.Fatalf("changed %v, want %v", got, []string{cmdb})
		}
	})
	t.Run("other files of the directory are not changes", func(t *testing.T) {
		write(t, filepath.Join(dir, "notes.txt"), "not part of the pipeline")
		write(t, cmdb, "host,site\nhost-b,ams1\n")
		if got := next(t, w); !slices.Equal(got, []string{cmdb}) {
			t.Fatalf("changed %v, want only %v", got, []string{cmdb})
		}
	})
	t.Run("a file added to the set", func(t *testing.T) {
		schemas := filepath.Join(t.TempDir(), "raw.json")
		write(t, schemas, "{}")
		if err := w.Set([]string{pipeline, cmdb, schemas}); err != nil {
			t.Fatal(err)
		}
		write(t, schemas, `{"type":"object"}`)
		if got := next(t, w); !slices.Equal(got, []string{schemas}) {
			t.Fatalf("changed %v, want %v", got, []string{schemas})
		}
	})
}
