package postgres_test

import (
	"strings"
	"testing"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/postgres"
)

// What Validate knows without a database, each problem named by its field.
func TestConfigValidate(t *testing.T) {
	col := func(name string) config.Field { return config.Field{Name: name, Expr: &config.Expr{Src: name}} }
	for _, tc := range []struct {
		name string
		cfg  postgres.Config
		want string // the finding, "" for none
	}{
		{"built-in table", postgres.Config{Table: "metrics"}, ""},
		{"built-in table in a schema", postgres.Config{Table: "ops.alerts"}, ""},
		{"custom table with columns", postgres.Config{Table: "t", DedupeKey: "id", Columns: config.Fields{col("id")}}, ""},
		{"too many dots", postgres.Config{Table: "a.b.c"}, `table: table "a.b.c": want a table name or schema.table`},
		{"empty part", postgres.Config{Table: "ops."}, `table: table "ops.": empty name`},
		{"custom table without columns", postgres.Config{Table: "t"}, "columns: table t is not a built-in table"},
		{"dedupe key not written", postgres.Config{Table: "t", Columns: config.Fields{col("id")}}, `dedupe_key: dedupe key "event_id" is not one of the columns the output writes (id)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
}
