package amalert

import "testing"

func TestLabelNamesOfSeriesExpressions(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"tenant_id", "tenant_id"},
		{"source.source_id", "source_id"},
		{"tags?.env", "tags__env"},
		{`lower(host)`, "lower_host_"},
		{"1x", "_1x"},
	} {
		if got := seriesLabelName(tt.src, map[string]string{}); got != tt.want {
			t.Errorf("seriesLabelName(%q) = %q, want %q", tt.src, got, tt.want)
		}
	}
	if got := seriesLabelName("b.id", map[string]string{"id": "x"}); got != "b_id" {
		t.Errorf("a taken name: got %q, want b_id", got)
	}
}
