package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/postgres"
	"github.com/eventops/eventops-engine/engine/postgres/pgtest"
)

// Every column type the hand-written binary COPY encoder handles round-trips to exactly the
// value PostgreSQL reads back as text, NULLs included — twice, so that the second write goes
// through the staging table (the rows are already there) and is a no-op.
func TestBinaryCopyRoundTripsEveryType(t *testing.T) {
	dsn := pgtest.DSN(t)
	exec(t, dsn, `CREATE TABLE typed (
		k TEXT PRIMARY KEY, v VARCHAR(20), c CHAR(3), f8 DOUBLE PRECISION, f4 REAL,
		i2 SMALLINT, i4 INTEGER, i8 BIGINT, b BOOLEAN, ts TIMESTAMPTZ, j JSON, jb JSONB, u UUID)`)
	f := func(name string) config.Field { return config.Field{Name: name, Expr: &config.Expr{Src: name}} }
	o := newOutput(t, dsn, postgres.Config{Table: "typed", DedupeKey: "k", Columns: config.Fields{
		f("k"), f("v"), f("c"), f("f8"), f("f4"), f("i2"), f("i4"), f("i8"), f("b"), f("ts"), f("j"), f("jb"), f("u"),
	}})
	full := map[string]any{"k": "full", "v": "héllo ✓", "c": "abc", "f8": -1234.5678e-3, "f4": 0.25,
		"i2": -32768.0, "i4": 2147483647.0, "i8": -9007199254740991.0, "b": true,
		"ts": "2025-10-16T09:00:00.123456+02:00", "j": map[string]any{"a": []any{1.0, "x"}},
		"jb": map[string]any{"z": nil, "a": 1.5}, "u": "7d47aa4a-0000-8001-8000-000000000000"}
	empty := map[string]any{"k": "nulls"}
	batch := []*engine.Record{{Value: full}, {Value: empty}}
	for attempt := 0; attempt < 2; attempt++ {
		if rej := write(t, o, batch); rej.Len() != 0 {
			t.Fatalf("attempt %d: rejected %v", attempt+1, rej.Items)
		}
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	conn.QueryRow(context.Background(), "SELECT count(*) FROM typed").Scan(&n)
	if n != 2 {
		t.Fatalf("%d rows after writing the batch twice, want 2", n)
	}
	var got []string
	rows, err := conn.Query(context.Background(), `SELECT concat_ws('|', v, c, f8, f4, i2, i4, i8, b, ts AT TIME ZONE 'UTC', j, jb, u) FROM typed WHERE k = 'full'`)
	if err != nil {
		t.Fatal(err)
	}
	got, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := `héllo ✓|abc|-1.2345678|0.25|-32768|2147483647|-9007199254740991|t|2025-10-16 07:00:00.123456|{"a":[1,"x"]}|{"a": 1.5, "z": null}|7d47aa4a-0000-8001-8000-000000000000`
	if len(got) != 1 || got[0] != want {
		t.Fatalf("row read back as\n %q\nwant\n %q", got, want)
	}
	var nulls int
	conn.QueryRow(context.Background(), `SELECT num_nulls(v, c, f8, f4, i2, i4, i8, b, ts, j, jb, u) FROM typed WHERE k = 'nulls'`).Scan(&nulls)
	if nulls != 12 {
		t.Fatalf("missing fields gave %d NULLs, want 12", nulls)
	}
}
