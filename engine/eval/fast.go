package eval

import (
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// A fastForm answers an expression of one of the shapes pipeline files use most (a field, a
// literal, `tenant_id ?? "default"`, `metric == "cpu_load"`, `value >= 90`, `now()`,
// `record_id()`, `float(value)`, `parse_time(ts_event)`, and `&&`, `||`, `!` and `?:` of
// these) without the VM, whose
// fixed cost per run is larger than the work of such an expression: the quickstart evaluates
// a dozen of them per event. ok is false whenever a value is of a type the form does not
// handle or a path goes through something that is not an object; the caller then runs the
// VM, whose answer is the reference (TestFastFormsAnswerAsTheVMDoes holds the two equal).
// Forms are pure: they may run on many records at once.
type fastForm func(vars map[string]any) (v any, ok bool)

// shapeOf returns the fast form of src (nil when src is not of a shape it has) and, when src
// is nothing but a field path (metric, source?.source_id), that path.
func shapeOf(src string) (fast fastForm, path []string) {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, nil
	}
	return fastNode(tree.Node), nodePath(tree.Node)
}

func fastNode(n ast.Node) fastForm {
	switch n := n.(type) {
	case *ast.StringNode:
		return constant(n.Value)
	case *ast.IntegerNode:
		return constant(n.Value)
	case *ast.FloatNode:
		return constant(n.Value)
	case *ast.BoolNode:
		return constant(n.Value)
	case *ast.NilNode:
		return constant(nil)
	case *ast.MapNode:
		return emptyObject(n)
	case *ast.IdentifierNode, *ast.MemberNode, *ast.ChainNode:
		return fastPath(n)
	case *ast.BinaryNode:
		return fastBinary(n)
	case *ast.UnaryNode:
		return fastNot(n)
	case *ast.ConditionalNode:
		return fastConditional(n)
	case *ast.CallNode:
		if callee, isName := n.Callee.(*ast.IdentifierNode); isName {
			if callee.Value == "parse_time" {
				return fastParseTime(n.Arguments)
			}
			return fastContextCall(callee.Value, n.Arguments)
		}
	case *ast.BuiltinNode: // now() parses as expr's builtin, which ours replaces
		if n.Name == "float" {
			return fastFloat(n.Arguments)
		}
		return fastContextCall(n.Name, n.Arguments)
	}
	return nil
}

// constant is a literal. Only immutable values are constants: `{}` makes a new object each
// time (emptyObject), since a later processor may add fields to it.
func constant(v any) fastForm {
	return func(map[string]any) (any, bool) { return v, true }
}

func emptyObject(n *ast.MapNode) fastForm {
	if len(n.Pairs) != 0 {
		return nil
	}
	return func(map[string]any) (any, bool) { return map[string]any{}, true }
}

// fastPath reads a dotted field path (source.source_id, tags?.env) as lookupPath does.
func fastPath(n ast.Node) fastForm {
	path := nodePath(n)
	if path == nil {
		return nil
	}
	return func(vars map[string]any) (any, bool) { return lookupPath(vars, path) }
}

// nodePath is the field path n reads, or nil when n is not a plain one.
func nodePath(n ast.Node) []string {
	switch n := n.(type) {
	case *ast.ChainNode:
		return nodePath(n.Node)
	case *ast.IdentifierNode:
		if !IsIdentifier(n.Value) || reserved[n.Value] {
			return nil
		}
		return []string{n.Value}
	case *ast.MemberNode:
		prop, isName := n.Property.(*ast.StringNode)
		parent := nodePath(n.Node)
		if !isName || n.Method || parent == nil {
			return nil
		}
		return append(parent, prop.Value)
	}
	return nil
}

func fastBinary(n *ast.BinaryNode) fastForm {
	left, right := fastNode(n.Left), fastNode(n.Right)
	if left == nil || right == nil {
		return nil
	}
	switch n.Operator {
	case "??":
		return coalesce(left, right)
	case "==", "!=":
		return equality(left, right, n.Operator == "!=")
	case "<", "<=", ">", ">=":
		return ordering(left, right, n.Operator)
	case "&&", "and", "||", "or":
		return logical(left, right, n.Operator == "||" || n.Operator == "or")
	}
	return nil
}

func coalesce(left, right fastForm) fastForm {
	return func(vars map[string]any) (any, bool) {
		v, ok := left(vars)
		if !ok || v != nil {
			return v, ok
		}
		return right(vars)
	}
}

func equality(left, right fastForm, negate bool) fastForm {
	return func(vars map[string]any) (any, bool) {
		a, b, ok := operands(left, right, vars)
		if !ok {
			return nil, false
		}
		eq, ok := equal(a, b)
		return eq != negate, ok
	}
}

// operands evaluates both sides of a binary operator; ok is false if either has no answer.
func operands(left, right fastForm, vars map[string]any) (a, b any, ok bool) {
	if a, ok = left(vars); !ok {
		return nil, nil, false
	}
	b, ok = right(vars)
	return a, b, ok
}

// equal is expr's == for nil, strings, booleans and numbers (int and float64 compare by
// value); ok is false for anything else.
func equal(a, b any) (eq, ok bool) {
	if a == nil || b == nil {
		return a == nil && b == nil, scalar(a) && scalar(b)
	}
	switch x := a.(type) {
	case string:
		y, same := b.(string)
		return same && x == y, scalar(b)
	case bool:
		y, same := b.(bool)
		return same && x == y, scalar(b)
	}
	if c, ok := compareNumbers(a, b); ok {
		return c == 0, true
	}
	return false, false
}

// scalar reports whether equal knows v's type.
func scalar(v any) bool {
	switch v.(type) {
	case nil, string, bool, int, float64:
		return true
	}
	return false
}

func ordering(left, right fastForm, op string) fastForm {
	return func(vars map[string]any) (any, bool) {
		a, b, ok := operands(left, right, vars)
		if !ok {
			return nil, false
		}
		c, ok := compareNumbers(a, b)
		if !ok {
			return nil, false
		}
		switch op {
		case "<":
			return c < 0, true
		case "<=":
			return c <= 0, true
		case ">":
			return c > 0, true
		}
		return c >= 0, true
	}
}

// compareNumbers orders two numbers (int or float64) as expr does: two ints as ints, else as
// float64s. ok is false when either is not one, or is NaN (every comparison with it is
// false, which a three-way answer cannot say).
func compareNumbers(a, b any) (c int, ok bool) {
	if x, isInt := a.(int); isInt {
		if y, isInt := b.(int); isInt {
			return cmp3(x, y), true
		}
	}
	x, okA := asFloat(a)
	y, okB := asFloat(b)
	if !okA || !okB || x != x || y != y {
		return 0, false
	}
	return cmp3(x, y), true
}

func asFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case int:
		return float64(v), true
	}
	return 0, false
}

func cmp3[T int | float64](x, y T) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// logical is && (or ||, when or is set) of two booleans, the right one evaluated only when
// the left does not decide.
func logical(left, right fastForm, or bool) fastForm {
	return func(vars map[string]any) (any, bool) {
		a, ok := asBool(left(vars))
		if !ok {
			return nil, false
		}
		if a == or {
			return a, true
		}
		b, ok := asBool(right(vars))
		if !ok {
			return nil, false
		}
		return b, true
	}
}

func asBool(v any, ok bool) (bool, bool) {
	b, isBool := v.(bool)
	return b, ok && isBool
}

func fastNot(n *ast.UnaryNode) fastForm {
	inner := fastNode(n.Node)
	if inner == nil || (n.Operator != "!" && n.Operator != "not") {
		return nil
	}
	return func(vars map[string]any) (any, bool) {
		b, ok := asBool(inner(vars))
		return !b, ok
	}
}

func fastConditional(n *ast.ConditionalNode) fastForm {
	cond, yes, no := fastNode(n.Cond), fastNode(n.Exp1), fastNode(n.Exp2)
	if cond == nil || yes == nil || no == nil {
		return nil
	}
	return func(vars map[string]any) (any, bool) {
		c, ok := asBool(cond(vars))
		switch {
		case !ok:
			return nil, false
		case c:
			return yes(vars)
		}
		return no(vars)
	}
}

// fastContextCall is now() or record_id(), which read the hidden context Eval put in vars.
func fastContextCall(name string, args []ast.Node) fastForm {
	if len(args) != 0 {
		return nil
	}
	var answer func(*evalCtx) any
	switch name {
	case "now":
		answer = func(c *evalCtx) any { return formatNow(c.now) }
	case "record_id":
		answer = func(c *evalCtx) any { return RecordID(c.source) }
	default:
		return nil
	}
	return func(vars map[string]any) (any, bool) {
		c, ok := vars[ctxVar].(*evalCtx)
		if !ok {
			return nil, false
		}
		return answer(c), true
	}
}

// fastFloat is float(x) of a number.
func fastFloat(args []ast.Node) fastForm {
	return fastCallOf(args, func(v any) (any, bool) { return asFloat(v) })
}

// fastParseTime is parse_time(x) of a time it can read; one it cannot is left to the VM,
// which says why.
func fastParseTime(args []ast.Node) fastForm {
	return fastCallOf(args, func(v any) (any, bool) {
		text, err := parseTimeText(v, "")
		return text, err == nil
	})
}

// fastCallOf is a function of one argument, itself of a fast shape: fn answers for the
// argument's value, or leaves it to the VM.
func fastCallOf(args []ast.Node, fn func(any) (any, bool)) fastForm {
	if len(args) != 1 {
		return nil
	}
	arg := fastNode(args[0])
	if arg == nil {
		return nil
	}
	return func(vars map[string]any) (any, bool) {
		v, ok := arg(vars)
		if !ok {
			return nil, false
		}
		return fn(v)
	}
}
