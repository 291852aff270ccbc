package lookup

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/eventops/eventops-engine/config"
)

func TestLoadReadsEveryFormat(t *testing.T) {
	tests := []struct {
		name string
		cfg  config.Lookup
		key  string
		want map[string]any
	}{
		{"csv", config.Lookup{File: "testdata/cmdb.csv", Key: "host"}, "host-b",
			map[string]any{"site": "fra2", "owner": "team-web", "tier": "2"}},
		{"json array", config.Lookup{File: "testdata/cmdb.json", Key: "host"}, "host-a",
			map[string]any{"site": "par1", "tier": 1.0}},
		{"json object", config.Lookup{File: "testdata/cmdb_object.json"}, "host-b",
			map[string]any{"site": "fra2", "tier": 2.0}},
		{"explicit format", config.Lookup{File: "testdata/cmdb.csv", Format: "csv", Key: "site"}, "par1",
			map[string]any{"host": "host-a", "owner": "team-db", "tier": "1"}},
		{"inline rows", config.Lookup{Key: "host", Rows: []map[string]string{{"host": "h1", "site": "par1"}}}, "h1",
			map[string]any{"site": "par1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl, err := Load("cmdb", tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			row, ok := tbl.Get(tt.key)
			if !ok {
				t.Fatalf("key %q not found", tt.key)
			}
			if len(row) != len(tt.want) {
				t.Fatalf("row = %v, want %v", row, tt.want)
			}
			for k, v := range tt.want {
				if row[k] != v {
					t.Errorf("row[%q] = %#v, want %#v", k, row[k], v)
				}
			}
			if _, ok := tbl.Get("no-such-host"); ok {
				t.Error("unknown key found")
			}
		})
	}
}

func TestLoadErrorsNameFileAndLine(t *testing.T) {
	tests := []struct {
		name string
		cfg  config.Lookup
		want []string
	}{
		{"short row", config.Lookup{File: "testdata/short_row.csv", Key: "host"}, []string{"lookup cmdb:", "testdata/short_row.csv:3:", "wrong number of fields"}},
		{"bad quote", config.Lookup{File: "testdata/badquote.csv", Key: "host"}, []string{"testdata/badquote.csv:", "quote"}},
		{"duplicate key", config.Lookup{File: "testdata/dup.csv", Key: "host"}, []string{"testdata/dup.csv:3:", `duplicate key "host-a" (first on line 2)`}},
		{"missing key column", config.Lookup{File: "testdata/nokey.csv", Key: "host"}, []string{"testdata/nokey.csv:1:", `no column "host"`, "name, site"}},
		{"broken json", config.Lookup{File: "testdata/broken.json", Key: "host"}, []string{"testdata/broken.json:3:", "invalid JSON"}},
		{"missing file", config.Lookup{File: "testdata/nope.csv", Key: "host"}, []string{"testdata/nope.csv", "no such file"}},
		{"unknown extension", config.Lookup{File: "testdata/cmdb.txt", Key: "host"}, []string{"set format: csv or format: json"}},
		{"no key", config.Lookup{File: "testdata/cmdb.csv"}, []string{"key: name the column"}},
		{"inline row without key", config.Lookup{Key: "host", Rows: []map[string]string{{"site": "x"}}}, []string{`rows[0]: no value for key column "host"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("cmdb", tt.cfg)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestReloadSwapsContentsAndKeepsOldOnError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cmdb.csv")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("host,site\nhost-a,par1\n")
	tbl, err := Load("cmdb", config.Lookup{File: file, Key: "host"})
	if err != nil {
		t.Fatal(err)
	}

	write("host,site\nhost-a,fra2\nhost-b,ams1\n")
	if err := tbl.Reload(); err != nil {
		t.Fatal(err)
	}
	if row, _ := tbl.Get("host-a"); row["site"] != "fra2" || tbl.Len() != 2 {
		t.Fatalf("after reload host-a = %v, len %d", row, tbl.Len())
	}

	write("host,site\nhost-a,\"broken\n")
	if err := tbl.Reload(); err == nil {
		t.Fatal("broken file reloaded without error")
	}
	if row, _ := tbl.Get("host-b"); row["site"] != "ams1" {
		t.Fatalf("broken reload changed the table: host-b = %v", row)
	}
}

func TestReplaceIsSafeDuringConcurrentGets(t *testing.T) {
	tbl := New("cmdb", Rows{"h": {"v": "0"}})
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Go(func() {
			for i := 0; i < 1000; i++ {
				row, ok := tbl.Get("h")
				if !ok || row["v"] == nil {
					t.Error("reader saw a missing or partial row during a swap")
					return
				}
			}
		})
	}
	for i := 0; i < 1000; i++ {
		tbl.Replace(Rows{"h": {"v": "x"}})
	}
	wg.Wait()
}

func TestSetFindsTablesByName(t *testing.T) {
	set, err := LoadAll(map[string]config.Lookup{
		"cmdb":  {File: "testdata/cmdb.csv", Key: "host"},
		"sites": {Key: "site", Rows: []map[string]string{{"site": "par1", "city": "Paris"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(set.Names(), ","); got != "cmdb,sites" {
		t.Fatalf("names = %s", got)
	}
	tbl, ok := set.Lookup("sites")
	if !ok {
		t.Fatal("sites not found")
	}
	if row, _ := tbl.Get("par1"); row["city"] != "Paris" {
		t.Fatalf("par1 = %v", row)
	}
	if _, ok := set.Lookup("nope"); ok {
		t.Fatal("unknown table found")
	}
}

func TestLoadAllReportsEveryBrokenTable(t *testing.T) {
	_, err := LoadAll(map[string]config.Lookup{
		"a": {File: "testdata/dup.csv", Key: "host"},
		"b": {File: "testdata/nokey.csv", Key: "host"},
		"c": {File: "testdata/cmdb.csv", Key: "host"},
	})
	if err == nil || !strings.Contains(err.Error(), "lookup a:") || !strings.Contains(err.Error(), "lookup b:") {
		t.Fatalf("error %v does not name both broken tables", err)
	}
}
