package postgres_test

import (
	"reflect"
	"testing"

	"github.com/eventops/eventops-engine/engine/eval"
	"github.com/eventops/eventops-engine/engine/postgres"
)

// The output reads plain field paths without the expression VM; it must agree with expr
// on every shape of record, or a column would fill differently depending on how the
// mapping is spelled.
func TestFieldPathsAgreeWithExpr(t *testing.T) {
	records := []map[string]any{
		{"metric": "cpu", "source": map[string]any{"source_id": "h1", "deep": map[string]any{"x": 1.0}}},
		{"source": nil},
		{"source": "flat"},
		{"source": map[string]any{}},
		{},
	}
	for _, src := range []string{"metric", "source.source_id", "source.deep.x", "missing", "missing.x", "source", "source?.source_id", "source?.deep?.x", "source?.deep.x", "missing?.x"} {
		for _, rec := range records {
			got, gotErr := postgres.ColumnValue(src, rec)
			want, wantErr := eval.MustCompile(src, eval.Any).Eval(eval.Env{Vars: rec})
			if (gotErr != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
				t.Errorf("%s over %v: got %#v (err %v), expr gives %#v (err %v)", src, rec, got, gotErr, want, wantErr)
			}
		}
	}
}
