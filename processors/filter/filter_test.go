package filter

import (
	"context"
	"strings"
	"testing"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
)

func TestFilterKeepsMatchingRecords(t *testing.T) {
	batch := []*engine.Record{
		{Value: map[string]any{"metric": "cpu_load", "value": 92.0}},
		{Value: map[string]any{"metric": "cpu_load", "value": 12.0}},
		{Value: map[string]any{"metric": "mem_used", "value": 95.0}},
		{Value: map[string]any{"value": 99.0}},
		{Value: map[string]any{"metric": "cpu_load", "value": "high"}},
	}
	tests := []struct {
		when        string
		keep        []int
		rejectedIdx []int
	}{
		{`metric == "cpu_load"`, []int{0, 1, 4}, nil},
		{`metric == "cpu_load" && value >= 90`, []int{0}, []int{4}},
		{`metric != nil`, []int{0, 1, 2, 4}, nil},
		{`value > 50`, []int{0, 2, 3}, []int{4}},
		{`false`, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.when, func(t *testing.T) {
			p, err := Factory.Build(&Config{When: config.Expr{Src: tt.when}}, engine.BuildEnv{Path: "streams[0].processors[0].filter"})
			if err != nil {
				t.Fatal(err)
			}
			var rejects engine.Rejects
			out, err := p.Process(context.Background(), batch, &rejects)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != len(tt.keep) {
				t.Fatalf("kept %d records, want %d", len(out), len(tt.keep))
			}
			for i, k := range tt.keep {
				if out[i] != batch[k] {
					t.Errorf("out[%d] is not input record %d", i, k)
				}
			}
			if rejects.Len() != len(tt.rejectedIdx) {
				t.Fatalf("rejects = %v, want records %v", rejects.Items, tt.rejectedIdx)
			}
			for i, k := range tt.rejectedIdx {
				r := rejects.Items[i]
				if r.Record != batch[k] || r.Stage != "streams[0].processors[0].filter" || !strings.Contains(r.Err.Error(), tt.when) {
					t.Errorf("reject %d: record %v stage %q reason %q", i, r.Record.Value, r.Stage, r.Err)
				}
			}
		})
	}
}

func TestFilterConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing when", Config{}, "when: a boolean expression is required"},
		{"not boolean", Config{When: config.Expr{Src: `"cpu" + "_load"`, Pos: config.Pos{File: "p.yaml", Line: 4, Col: 20}, Path: "streams[0].processors[0].filter.when"}}, "p.yaml:4:"},
		{"syntax", Config{When: config.Expr{Src: `value >=`, Pos: config.Pos{File: "p.yaml", Line: 4, Col: 20}}}, "p.yaml:4:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate() // as the decoder does, before any build
			if err == nil {
				_, err = Factory.Build(&tt.cfg, engine.BuildEnv{})
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
