package lookup

import (
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/broker"
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
		{"broken json", config.Lookup{File: "testdata/broken.json", Key: "host"}, []string{"testdata/broken.json:3:21: invalid JSON"}},
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

// TestCSVErrorsPointAtTheMistake checks that a broken CSV file is reported at the character
// to fix, with what to do there, and not where encoding/csv gave up reading.
func TestCSVErrorsPointAtTheMistake(t *testing.T) {
	tests := []struct {
		name string
		csv  string
		want string // after "lookup cmdb: <file>"
	}{
		{
			name: "quote never closed runs to the end of the file",
			csv:  "host,owner,site\nhost-a,team-platform,fra1\nhost-b,\"team-data,ams2\nhost-c,team-platform,fra1\n",
			want: `:3:8: the quoted field that starts here is never closed; end it with " (a " inside a quoted field is written "")`,
		},
		{
			name: "quote never closed after a leading space",
			csv:  "host,site\nhost-a, \"par1\n",
			want: `:2:9: the quoted field that starts here is never closed; end it with " (a " inside a quoted field is written "")`,
		},
		{
			name: "text after the closing quote",
			csv:  "host,site\nhost-a,\"par\"1,x\n",
			want: `:2:12: this " ends a quoted field, but the field goes on after it; write a " inside a quoted field as ""`,
		},
		{
			name: "text after a closing quote on the next line",
			csv:  "host,site\nhost-a,\"par\n1\"x\nhost-b,fra2\n",
			want: `:3:2: this " ends a quoted field, but the field goes on after it; write a " inside a quoted field as ""`,
		},
		{
			name: "the first mistake of a row is the one reported",
			csv:  "host,site,owner\nhost-a,\"par\"1,\"team\n",
			want: `:2:12: this " ends a quoted field, but the field goes on after it; write a " inside a quoted field as ""`,
		},
		{
			name: "quote inside an unquoted field",
			csv:  "host,site\nhost-a,par\"1\n",
			want: `:2:11: a " in a field that is not quoted; quote the whole field and write the " inside it as ""`,
		},
		{
			name: "columns count characters, not bytes",
			csv:  "host,site\nhöst-ä,\"pär\"1\n",
			want: `:2:12: this " ends a quoted field, but the field goes on after it; write a " inside a quoted field as ""`,
		},
		{
			name: "short row",
			csv:  "host,site,owner\nhost-a,par1,team-db\nhost-b,fra2\n",
			want: `:3: wrong number of fields: the row has 2, the header has 3 (host, site, owner)`,
		},
		{
			name: "broken header",
			csv:  "host,\"site\n",
			want: `:1:6: the quoted field that starts here is never closed; end it with " (a " inside a quoted field is written "")`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "cmdb.csv")
			if err := os.WriteFile(file, []byte(tt.csv), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load("cmdb", config.Lookup{File: file, Key: "host"})
			want := "lookup cmdb: " + file + tt.want
			if err == nil || err.Error() != want {
				t.Fatalf("got  %v\nwant %s", err, want)
			}
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				t.Errorf("the error does not wrap the *csv.ParseError: %#v", err)
			}
		})
	}
}

func TestJSONErrorsPointAtTheMistake(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"missing comma", "[\n  {\"host\": \"host-a\" \"site\": \"par1\"}\n]\n", `:2:21: invalid JSON: invalid character '"' after object key:value pair`},
		{"file ends inside the array", "[\n  {\"host\": \"host-a\"}\n", ":2:21: invalid JSON: unexpected EOF"},
		{"columns count characters", `[{"host": "hôst-a",, "site": "par1"}]`, `:1:20: invalid JSON: invalid character ',' looking for beginning of object key string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "cmdb.json")
			if err := os.WriteFile(file, []byte(tt.json), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load("cmdb", config.Lookup{File: file, Key: "host"})
			if want := "lookup cmdb: " + file + tt.want; err == nil || err.Error() != want {
				t.Fatalf("got  %v\nwant %s", err, want)
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

// A table kept in a topic takes each record's value as the row of its key, deletes a key
// on a record without a value, and leaves out (and reports) a value that is no row.
func TestATopicsRecordsAreTheRows(t *testing.T) {
	table, err := Load("calls", config.Lookup{Topic: "edges"})
	if err != nil {
		t.Fatal(err)
	}
	var skipped []string
	skip := func(key []byte, err error) { skipped = append(skipped, string(key)+": "+err.Error()) }
	table.Apply([]broker.KeyValue{
		{Key: []byte("a->b"), Value: []byte(`{"from":"a","to":"b"}`)},
		{Key: []byte("b->c"), Value: []byte(`{"from":"b","to":"c"}`)},
		{Key: []byte("bad"), Value: []byte(`[1,2]`)},
	}, skip)
	table.Apply([]broker.KeyValue{{Key: []byte("a->b"), Value: nil}, {Key: []byte("b->c"), Value: []byte(`{"from":"b","to":"c","calls":3}`)}}, skip)
	if _, ok := table.Get("a->b"); ok {
		t.Error("a->b is still there after a record without a value")
	}
	if row, _ := table.Get("b->c"); row["calls"] != 3.0 {
		t.Errorf("b->c is %v, want its latest value", row)
	}
	if len(skipped) != 1 || !strings.HasPrefix(skipped[0], "bad: the value is not a JSON object") {
		t.Errorf("skipped %v, want the record bad, saying why", skipped)
	}
	if err := table.Reload(); err != nil || table.Len() != 1 {
		t.Errorf("a file reload emptied a table kept in a topic (%v, %d rows)", err, table.Len())
	}

	byField, _ := Load("cmdb", config.Lookup{Topic: "cmdb", Key: "service"})
	byField.Apply([]broker.KeyValue{{Key: []byte("ignored"), Value: []byte(`{"service":"api","owner":"team-a"}`)}, {Key: []byte("x"), Value: []byte(`{"owner":"none"}`)}}, skip)
	if row, ok := byField.Get("api"); !ok || row["owner"] != "team-a" {
		t.Errorf("keyed by its service field: %v", row)
	}
	if len(skipped) != 2 || !strings.Contains(skipped[1], `no key field "service"`) {
		t.Errorf("a row without its key field: skipped %v", skipped)
	}
}
