package notify

import (
	"fmt"
	"slices"
	"strings"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
	"github.com/eventops/eventops-engine/engine/amalert"
	"github.com/eventops/eventops-engine/engine/types"
)

// lint warns about what would silently never happen: a matcher on a label no alert reaching
// the processor has (so it never matches, or always does), and routes that no alert can
// reach because a sibling before them takes every alert.
func lint(c *Config, env engine.BuildEnv) {
	if env.Warnings == nil {
		return
	}
	warn := func(path, format string, args ...any) {
		env.Warnings.AddWarning(config.Pos{}, env.Path+"."+path, "%s", fmt.Sprintf(format, args...))
	}
	if names := knownLabels(env.Input); names != nil {
		lintMatchers(c, names, ruleNames(env.Input), warn)
	}
	lintRoutes(&c.Route, "route", warn)
}

// knownLabels are the label names the alerts of records of type in can have; nil when the
// type does not say (records from elsewhere than a threshold processor).
func knownLabels(in *types.Type) []string {
	series, ok1 := in.Field("series")
	labels, ok2 := in.Field("labels")
	if !ok1 || !ok2 || series == nil || labels == nil || series.Extra != nil || labels.Extra != nil ||
		series.Kind != types.Object || labels.Kind != types.Object {
		return nil
	}
	return amalert.LabelNames(series.FieldNames(), labels.FieldNames())
}

// ruleNames are the names of the rules whose alerts records of type in are, nil when the
// type does not say.
func ruleNames(in *types.Type) []string {
	if rule, ok := in.Field("rule"); ok && rule != nil && rule.Kind == types.String {
		return rule.Values
	}
	return nil
}

// lintMatchers warns about each matcher on an unknown label whose outcome is then fixed, and
// about each matcher on alertname that no rule's name satisfies.
func lintMatchers(c *Config, names, rules []string, warn func(path, format string, args ...any)) {
	check := func(path string, raw []string) {
		for i, s := range raw {
			m, err := ParseMatcher(s)
			if err != nil {
				continue
			}
			if m.Name == "alertname" && rules != nil && (m.Op == MatchEqual || m.Op == MatchRegexp) &&
				!slices.ContainsFunc(rules, func(r string) bool { return m.Matches(map[string]string{"alertname": r}) }) {
				warn(fmt.Sprintf("%s[%d]", path, i), "no rule reaching this processor has a name that satisfies %s (its rules: %s): the matcher never matches", m, strings.Join(rules, ", "))
				continue
			}
			if slices.Contains(names, m.Name) {
				continue
			}
			outcome := "never matches"
			if m.Matches(map[string]string{}) {
				outcome = "always matches"
			}
			warn(fmt.Sprintf("%s[%d]", path, i), "no alert reaching this processor has the label %s (they have %s): the matcher %s", m.Name, strings.Join(names, ", "), outcome)
		}
	}
	var walk func(r *RouteConfig, path string)
	walk = func(r *RouteConfig, path string) {
		check(path+".matchers", r.Matchers)
		for i := range r.Routes {
			walk(&r.Routes[i], fmt.Sprintf("%s.routes[%d]", path, i))
		}
	}
	walk(&c.Route, "route")
	for i, ir := range c.InhibitRules {
		check(fmt.Sprintf("inhibit_rules[%d].source_matchers", i), ir.SourceMatchers)
		check(fmt.Sprintf("inhibit_rules[%d].target_matchers", i), ir.TargetMatchers)
		for j, l := range ir.Equal {
			if !slices.Contains(names, l) {
				warn(fmt.Sprintf("inhibit_rules[%d].equal[%d]", i, j), "no alert reaching this processor has the label %s: every source and target are equal on it", l)
			}
		}
	}
	for i, s := range c.Silences {
		check(fmt.Sprintf("silences[%d].matchers", i), s.Matchers)
	}
}

// lintRoutes warns about child routes that come after a sibling that takes every alert
// (no matchers) without continue: no alert ever reaches them.
func lintRoutes(r *RouteConfig, path string, warn func(path, format string, args ...any)) {
	catchAll := -1
	for i := range r.Routes {
		child := &r.Routes[i]
		childPath := fmt.Sprintf("%s.routes[%d]", path, i)
		if catchAll >= 0 {
			warn(childPath, "unreachable: routes[%d] before it has no matchers and no continue, so it takes every alert", catchAll)
		} else if len(child.Matchers) == 0 && !child.Continue {
			catchAll = i
		}
		lintRoutes(child, childPath, warn)
	}
}
