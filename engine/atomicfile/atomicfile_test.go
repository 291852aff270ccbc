package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// Replace leaves the new content, no temporary file, and a file that appends after it.
func TestReplaceThenAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("old\nold\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Replace(path, []byte("new\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("appended\n")
	f.Close()
	got, _ := os.ReadFile(path)
	if string(got) != "new\nappended\n" {
		t.Errorf("file holds %q", got)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("the temporary file is left: %v", err)
	}
}
