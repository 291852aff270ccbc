package runtime

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/eventops/eventops-engine/engine/schema"
	"github.com/eventops/eventops-engine/engine/types"
)

// Checks that need the built plan: what the runtime derives from the file (consumer groups,
// the type of the records reaching an output) decides whether the pipeline can work.

// member is a stream or sink as the file names it, for messages about the plan.
type member struct {
	what string // stream "rules", sink "sink.ops.alert.v1.alerts"
	path string // where the user changes it: the group, or the name it is derived from
}

// memberOf describes plan.Streams[k]: the streams come first, then the sinks.
func (b *builder) memberOf(k int) member {
	sp := b.plan.Streams[k]
	if k < len(b.p.Streams) {
		path := fmt.Sprintf("streams[%d]", k)
		if sp.Config.Input.Group != "" {
			return member{what: fmt.Sprintf("stream %q", sp.Name), path: path + ".input.group"}
		}
		return member{what: fmt.Sprintf("stream %q", sp.Name), path: path + ".name"}
	}
	i := k - len(b.p.Streams)
	sk, path := b.p.Sinks[i], fmt.Sprintf("sinks[%d]", i)
	switch {
	case sk.Group != "":
		path += ".group"
	case sk.Name != "":
		path += ".name"
	}
	return member{what: fmt.Sprintf("sink %q", sp.Name), path: path}
}

// checkGroups reports streams and sinks that share a consumer group, named explicitly or
// derived from their names. Members of one group split the partitions of a topic they both
// read, so each would process only part of it; and they share the transactional id and the
// changelog topic derived from the group, so their transactions fence each other
// (PRODUCER_FENCED) and their state is mixed.
func (b *builder) checkGroups() {
	first := map[string]int{}
	for k, sp := range b.plan.Streams {
		if sp == nil || sp.Name == "" {
			continue // a stream without a name has its own error
		}
		group := sp.Group()
		j, taken := first[group]
		if !taken {
			first[group] = k
			continue
		}
		if k < len(b.p.Streams) && b.p.Streams[j].Name == sp.Name && sp.Config.Input.Group == "" {
			continue // a duplicate stream name, reported as such
		}
		this, other := b.memberOf(k), b.memberOf(j)
		split := ""
		if in := sp.Config.Input.Topic; in == b.plan.Streams[j].Config.Input.Topic {
			split = fmt.Sprintf("each would get only some of the partitions of %s, and ", in)
		}
		b.errs.Add(b.p.At(this.path), this.path,
			"%s is in consumer group %q, like %s (line %d): %sthe two would share the group's rebalances, transactional id and changelog, and fence each other (PRODUCER_FENCED); give one of them its own group (group: on a sink, input.group: on a stream) or another name",
			this.what, group, other.what, b.p.At(other.path).Line, split)
	}
}

// checkOutputSchema reports what the records reaching a stream's output (of type in) can
// never satisfy in its output schema: each such record goes to the dead-letter topic, so a
// demand no record meets stops the stream's whole output (an error), and one that no record
// having the field meets loses those records (a warning).
//
// It reports whether no record can pass: then what the stream writes is only what the
// schema admits (nothing), and the streams reading its topic are checked against the
// schema's type rather than repeating the mistake.
func (b *builder) checkOutputSchema(streamPath, name string, v *schema.Validator, in *types.Type) (never bool) {
	at := streamPath + ".output.schema"
	pos := b.p.At(at)
	for _, u := range v.Unmet(in) {
		if u.Every {
			never = true
			b.errs.Add(pos, at, "schema %s can never be met: %s %s, so every record would go to the dead-letter topic", name, fieldNames(u.Fields), u.Why)
			continue
		}
		b.warns.AddWarning(pos, at, "schema %s: %s %s, so every record that has it would go to the dead-letter topic", name, fieldNames(u.Fields), u.Why)
	}
	return never
}

// fieldNames is `field "a"` or `fields "a", "b" and "c"`.
func fieldNames(fields []string) string {
	quoted := make([]string, len(fields))
	for i, f := range fields {
		quoted[i] = strconv.Quote(f)
	}
	if len(quoted) == 1 {
		return "field " + quoted[0]
	}
	return "fields " + strings.Join(quoted[:len(quoted)-1], ", ") + " and " + quoted[len(quoted)-1]
}
