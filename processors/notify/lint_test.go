package notify_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/runtime"
	"github.com/eventops/eventops-engine/engine/runtime/runtimetest"
	outputs "github.com/eventops/eventops-engine/outputs/all"
	processors "github.com/eventops/eventops-engine/processors/all"
	"github.com/eventops/eventops-engine/processors/notify"
)

// Lint reports the notify processor's mistakes at their file:line:col: a template using a
// field the alert records lack, and warns about matchers on
// labels no alert has (the labels a threshold processor gives its alerts: alertname,
// severity, the series' and the rules'), about alertname matchers no rule's name satisfies (an
// inhibition whose source never fires), about routes no alert can reach, and about an input
// topic of several partitions (groups are kept per partition).
func TestLintPlacesNotifyMistakes(t *testing.T) {
	const file = "testdata/lint_mistakes.yaml"
	components := engine.Components{Processors: processors.Factories(), Outputs: outputs.Factories()}
	want := []string{
		file + `:20:9: streams[1].processors[0].notify: warning: its input topic ops.alert.v1 has 3 partitions: alerts of one group that come through different partitions are grouped and notified apart`,
		file + `:21:38: streams[1].processors[0].notify.generator_url: expression "fingerprnt": unknown field "fingerprnt" (did you mean "fingerprint"?)`,
		file + `:25:29: streams[1].processors[0].notify.route.routes[0].matchers[0]: warning: no alert reaching this processor has the label instance (they have alertname, metric, severity, source_id, team, tenant_id): the matcher never matches`,
		file + `:27:17: streams[1].processors[0].notify.route.routes[2]: warning: unreachable: routes[1] before it has no matchers and no continue`,
		file + `:30:76: streams[1].processors[0].notify.inhibit_rules[0].target_matchers[0]: warning: no alert reaching this processor has the label env (they have alertname, metric, severity, source_id, team, tenant_id): the matcher always matches`,
		file + `:30:100: streams[1].processors[0].notify.inhibit_rules[0].equal[0]: warning: no alert reaching this processor has the label host`,
		file + `:31:34: streams[1].processors[0].notify.inhibit_rules[1].source_matchers[0]: warning: no rule reaching this processor has a name that satisfies alertname="node_down" (its rules: cpu_high): the matcher never matches`,
	}
	runtimetest.LintFindings(t, file, components, want)
}

// The example pipeline passes lint without a finding, warnings included.
func TestNotifyExampleLintsClean(t *testing.T) {
	components := engine.Components{Processors: processors.Factories(), Outputs: outputs.Factories()}
	_, cfg, err := runtime.Check("../../examples/notify.yaml", runtime.Options{Components: components, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
}

// A route naming a receiver that receivers does not declare is refused, wherever it is in the
// tree, and so is a root without a receiver.
func TestValidateRefusesUndeclaredReceivers(t *testing.T) {
	c := &notify.Config{
		Route:     notify.RouteConfig{Routes: []notify.RouteConfig{{Routes: []notify.RouteConfig{{Receiver: "pagr"}}}}},
		Receivers: []notify.ReceiverConfig{{Name: "pager"}},
	}
	err := c.Validate()
	for _, want := range []string{"route.receiver: the root route needs a receiver", `route.routes[0].routes[0].receiver: receiver "pagr" is not declared in receivers`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want it to say %q", err, want)
		}
	}
}
