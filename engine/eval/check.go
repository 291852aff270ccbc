package eval

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/checker/nature"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	etypes "github.com/expr-lang/expr/types"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/types"
)

// Type checking. An expression is parsed and checked against the type of the records that
// reach it, only to find mistakes (unknown fields, mismatched types, a predicate that is not a
// boolean, unknown functions); the program that runs is compiled untyped. It stays untyped on
// purpose: expr specialises typed programs (string-only equality, say), and a record that
// does not match its declared type must be rejected with a reason, not crash the VM.

// typedFunctions declare our functions' signatures for the checker. At run time the same
// names are bound to the untyped implementations in functions.
var typedFunctions = []expr.Option{
	expr.Function("record_id", neverCalled, new(func() string)),
	expr.Function("now", neverCalled, new(func() string)),
	expr.Function("parse_time", neverCalled, new(func(any) string), new(func(any, string) string)),
	expr.Function("unix_ms", neverCalled, new(func(any) float64)),
	expr.Function("hash_id", neverCalled, new(func(...any) string)),
}

// neverCalled stands in for the functions in programs that are only checked, never run.
func neverCalled(...any) (any, error) {
	return nil, errors.New("internal error: a checked-only program was run")
}

// FunctionNames are the functions an expression may call: expr's builtins and ours.
var FunctionNames = func() []string {
	c := conf.CreateNew()
	for _, opt := range typedFunctions {
		opt(c)
	}
	names := append(slices.Collect(maps.Keys(c.Builtins)), slices.Collect(maps.Keys(c.Functions))...)
	sort.Strings(names)
	return slices.Compact(names)
}()

// RequestType is what an API route's where expressions see: the request's query and path
// parameters, all strings.
var RequestType = types.ObjectOf("an API request", map[string]*types.Type{
	"query": {Kind: types.Object, Extra: types.TStr},
	"path":  {Kind: types.Object, Extra: types.TStr},
})

// Check type-checks e against in, the type of the records it is evaluated on, and returns
// the type of its result. Problems that are certainly mistakes are returned as a
// *config.Error at the column inside the expression; a reference to a field that an open
// JSON Schema does not declare is added to warnings (when not nil) instead.
func Check(e config.Expr, kind Kind, in *types.Type, warnings *config.Errors) (*types.Type, error) {
	out, err, unknown := check(e, kind, in, false)
	if err == nil {
		return out, nil
	}
	if unknown == nil || !hasDeclared(in) {
		return nil, err
	}
	// Fields an open schema does not declare may still be there: check again with the
	// schema's objects open, and if that passes, the first check's complaint is a warning.
	out, err2, _ := check(e, kind, in, true)
	if err2 != nil {
		return nil, err2
	}
	if warnings != nil {
		w := err
		w.Warning = true
		w.Msg += " (the schema allows undeclared fields, so it may be there)"
		*warnings = append(*warnings, w)
	}
	return out, nil
}

// CompileChecked is Check, then the program to run (compiled untyped on its first
// evaluation, so that lint, which never runs it, does not pay for it) and the result type.
func CompileChecked(e config.Expr, kind Kind, in *types.Type, warnings *config.Errors) (*Program, *types.Type, error) {
	t, err := Check(e, kind, in, warnings)
	if err != nil {
		return nil, nil, err
	}
	return compileLater(e, kind), t, nil
}

// CheckFields type-checks a mapping and returns the type of the object it builds: exactly
// its fields, each with its expression's type. origin names the mapping in messages about
// that object's fields. With errors, the type is still returned, the broken fields of
// unknown type, so that lint goes on checking what reads the object.
func CheckFields(f config.Fields, in *types.Type, origin string, warnings *config.Errors) (*types.Type, error) {
	var errs config.Errors
	out := checkFields(f, in, origin, warnings, &errs)
	return out, errs.Err()
}

func checkFields(f config.Fields, in *types.Type, origin string, warnings, errs *config.Errors) *types.Type {
	fields := make(map[string]*types.Type, len(f))
	for _, fld := range f {
		switch {
		case fld.Expr != nil:
			t, err := Check(*fld.Expr, Any, in, warnings)
			if err != nil {
				errs.Append(fld.Expr.Pos, fld.Expr.Path, err)
				t = types.Any
			}
			fields[fld.Name] = t
		default:
			fields[fld.Name] = checkFields(fld.Nested, in, origin, warnings, errs)
		}
	}
	return types.ObjectOf(origin, fields)
}

// check runs expr's checker with in as the environment. softSchemas opens the objects a
// schema declared without forbidding other fields.
// When the problem is a name the record type does not have, unknown says which.
func check(e config.Expr, kind Kind, in *types.Type, softSchemas bool) (out *types.Type, err *config.Error, unknown *unknownName) {
	defer func() {
		// The checker is not ours; a panic on an odd expression must not take lint down.
		if r := recover(); r != nil {
			out, err, unknown = nil, config.ExprError(e, 1, "expression %q: cannot check it: %v", e.Src, r), nil
		}
	}()
	checkConfigs.Lock()
	defer checkConfigs.Unlock()
	tree, cerr := checker.ParseCheck(e.Src, checkConfig(in, kind, softSchemas))
	if cerr != nil {
		err, unknown := explain(e, in, cerr)
		return nil, err, unknown
	}
	root := tree.Node
	if err := unknownFunctions(e, root); err != nil {
		return nil, err, nil
	}
	return typeOfNode(root), nil, nil
}

// checkConfigs caches expr's checker configuration per record type: building one (expr's
// builtins, our functions, the environment's natures) costs more than checking a typical
// expression, and every rule of a processor is checked against the same type. Only type
// checking uses it (parse and check, no compile), serialised by the lock because the
// checker's nature cache lives in the configuration.
var checkConfigs struct {
	sync.Mutex
	byKey map[checkKey]*conf.Config
}

type checkKey struct {
	in          *types.Type
	kind        Kind
	softSchemas bool
}

func checkConfig(in *types.Type, kind Kind, softSchemas bool) *conf.Config {
	key := checkKey{in, kind, softSchemas}
	if c, ok := checkConfigs.byKey[key]; ok {
		return c
	}
	if len(checkConfigs.byKey) >= 64 || checkConfigs.byKey == nil {
		checkConfigs.byKey = map[checkKey]*conf.Config{} // types of a pipeline that is gone
	}
	c := conf.CreateNew()
	expr.Env(envType(in, softSchemas))(c)
	for _, opt := range typedFunctions {
		opt(c)
	}
	if kind == Bool {
		expr.AsBool()(c)
	}
	for name := range c.Disabled {
		delete(c.Builtins, name)
	}
	c.Check()
	checkConfigs.byKey[key] = c
	return c
}

// envType is the expr environment for records of type t: always a map, closed where t says
// exactly which fields there are.
func envType(t *types.Type, softSchemas bool) etypes.Map {
	if t.IsUnknown() || t.Kind != types.Object {
		return etypes.Map{etypes.Extra: etypes.Any}
	}
	m, _ := exprType(t, softSchemas).(etypes.Map)
	return m
}

var timeType = etypes.TypeOf(time.Time{})

func exprType(t *types.Type, softSchemas bool) etypes.Type {
	if t == nil {
		return etypes.Any
	}
	switch t.Kind {
	case types.Nil:
		return etypes.Nil
	case types.Bool:
		return etypes.Bool
	case types.Int:
		return etypes.Int
	case types.Float:
		return etypes.Float64
	case types.String:
		return etypes.String
	case types.Time:
		return timeType
	case types.Array:
		return etypes.Array(exprType(t.Elem, softSchemas))
	case types.Object:
		m := etypes.Map{}
		for name, f := range t.Fields {
			m[name] = exprType(f, softSchemas)
		}
		switch {
		case t.Extra != nil:
			m[etypes.Extra] = exprType(t.Extra, softSchemas)
		case t.Declared && softSchemas:
			m[etypes.Extra] = etypes.Any
		}
		return m
	}
	return etypes.Any
}

func hasDeclared(t *types.Type) bool {
	if t == nil {
		return false
	}
	if t.Declared {
		return true
	}
	for _, f := range t.Fields {
		if hasDeclared(f) {
			return true
		}
	}
	return t.Elem != nil && hasDeclared(t.Elem)
}

// typeOfNode is the type of a checked expression's result. Object literals keep their
// fields (expr itself types them as map[string]any), so that a map field written as
// '{type: "host", source_id: host}' is still checked downstream.
func typeOfNode(n ast.Node) *types.Type {
	switch x := n.(type) {
	case *ast.MapNode:
		fields := map[string]*types.Type{}
		for _, p := range x.Pairs {
			pair, ok := p.(*ast.PairNode)
			if !ok {
				return types.OpenObject()
			}
			key, ok := pair.Key.(*ast.StringNode)
			if !ok {
				return types.OpenObject() // a computed key: the fields are not known
			}
			fields[key.Value] = typeOfNode(pair.Value)
		}
		return types.ObjectOf("an object literal", fields)
	case *ast.ArrayNode:
		var elem *types.Type
		for _, el := range x.Nodes {
			elem = types.Union(elem, typeOfNode(el))
		}
		return types.ArrayOf(elem)
	case *ast.ConditionalNode:
		return types.Union(typeOfNode(x.Exp1), typeOfNode(x.Exp2))
	case *ast.BinaryNode:
		if x.Operator == "??" {
			return types.Union(typeOfNode(x.Left), typeOfNode(x.Right))
		}
	}
	if nt := n.Nature(); nt != nil {
		return fromNature(*nt)
	}
	return types.Any
}

func fromNature(n nature.Nature) *types.Type {
	if n.Nil {
		return types.TNil
	}
	if n.Type == nil {
		return types.Any
	}
	switch n.Kind {
	case reflect.Bool:
		return types.TBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return types.TInt
	case reflect.Float32, reflect.Float64:
		return types.TFloat
	case reflect.String:
		return types.TStr
	case reflect.Struct:
		if n.Type == timeType.Nature().Type {
			return types.TTime
		}
	case reflect.Slice, reflect.Array:
		if n.Ref != nil {
			return types.ArrayOf(fromNature(*n.Ref))
		}
		return types.ArrayOf(types.Any)
	case reflect.Map:
		if n.TypeData == nil || n.Fields == nil {
			return types.OpenObject()
		}
		obj := &types.Type{Kind: types.Object, Fields: map[string]*types.Type{}}
		for name, f := range n.Fields {
			obj.Fields[name] = fromNature(f)
		}
		if !n.Strict {
			obj.Extra = types.Any
			if n.DefaultMapValue != nil {
				obj.Extra = fromNature(*n.DefaultMapValue)
			}
		}
		return obj
	}
	return types.Any
}

// unknownFunctions reports a call of a function that does not exist. expr only reports it
// when the environment is closed; on records of unknown shape it would type the call as a
// call of an unknown variable and fail on every record at run time.
func unknownFunctions(e config.Expr, root ast.Node) *config.Error {
	var found *config.Error
	ast.Walk(&root, visitor(func(n ast.Node) {
		call, ok := n.(*ast.CallNode)
		if !ok || found != nil {
			return
		}
		id, ok := call.Callee.(*ast.IdentifierNode)
		if !ok || slices.Contains(FunctionNames, id.Value) {
			return
		}
		found = (&unknownName{name: id.Value, from: id.Location().From, function: true}).configError(e)
	}))
	return found
}

type visitor func(ast.Node)

func (v visitor) Visit(n *ast.Node) { v(*n) }

// unknownName is a checker complaint about a name the record type does not have.
type unknownName struct {
	name     string
	field    bool   // a member (a.name) rather than a top-level name
	owner    string // for a member: the field path it is a member of, when it is one
	known    []string
	origin   string
	from     int // rune offset in the source
	function bool
	request  bool // the expression is a route filter, evaluated on the request
}

func (u *unknownName) configError(e config.Expr) *config.Error {
	var msg string
	switch {
	case u.function:
		msg = fmt.Sprintf("unknown function %s()%s", u.name, config.Suggestion(u.name, FunctionNames))
	case u.field:
		owner := "the object"
		if u.owner != "" {
			owner = fmt.Sprintf("%q", u.owner)
		}
		msg = fmt.Sprintf("%s has no field %q%s", owner, u.name, config.Suggestion(u.name, u.known))
	case u.request:
		return &config.Error{Pos: e.PosAt(u.from), Path: e.Path, Msg: fmt.Sprintf(
			"expression %q: unknown name %q: a route filter reads the request, as query.<parameter> or path.<parameter> (did you mean query.%s?)", e.Src, u.name, u.name)}
	default:
		msg = fmt.Sprintf("unknown field %q%s", u.name, config.Suggestion(u.name, u.known))
	}
	if !u.function && len(u.known) > 0 {
		from := ""
		if u.origin != "" {
			from = " (from " + u.origin + ")"
		}
		msg += fmt.Sprintf("; known fields%s: %s", from, list(u.known))
	}
	return &config.Error{Pos: e.PosAt(u.from), Path: e.Path, Msg: fmt.Sprintf("expression %q: %s", e.Src, msg)}
}

func list(names []string) string {
	if len(names) > 12 {
		return strings.Join(names[:12], ", ") + ", ..."
	}
	return strings.Join(names, ", ")
}

var (
	unknownNameRE  = regexp.MustCompile(`^unknown name (\S+)$`)
	unknownFieldRE = regexp.MustCompile(`^unknown field (\S+)$`)
	expectedBoolRE = regexp.MustCompile(`^expected bool, but got (.+)$`)
)

// explain turns an expr compile error into a *config.Error at its column, in the words of
// the pipeline file (fields, numbers, objects) rather than Go's.
func explain(e config.Expr, in *types.Type, err error) (*config.Error, *unknownName) {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return worded(e, err), nil
	}
	tree, perr := parser.Parse(e.Src)
	if m := unknownNameRE.FindStringSubmatch(fe.Message); m != nil {
		u := &unknownName{name: m[1], from: fe.From, origin: originOf(in), known: in.FieldNames(), request: in == RequestType}
		if perr == nil && isCallee(tree.Node, fe.From) {
			u.function = true
		}
		return u.configError(e), u
	}
	if m := unknownFieldRE.FindStringSubmatch(fe.Message); m != nil {
		u := &unknownName{name: m[1], field: true, from: fe.From}
		if perr == nil {
			if owner, ownerType := memberOwner(tree.Node, fe.From, in); owner != "" {
				u.owner = owner
				u.known = ownerType.FieldNames()
				u.origin = originOf(ownerType)
			}
		}
		return u.configError(e), u
	}
	return worded(e, err), nil
}

// worded is expr's error at its place, in the words of the pipeline file.
func worded(e config.Expr, err error) *config.Error {
	ce := positioned(e, err)
	var fe *file.Error
	msg := err.Error()
	if errors.As(err, &fe) {
		msg = fe.Message
	}
	if m := expectedBoolRE.FindStringSubmatch(msg); m != nil {
		ce.Msg = fmt.Sprintf("expression %q: a condition must be true or false, but this one is %s", e.Src, withArticle(goTypeWords.Replace(m[1])))
	}
	ce.Msg = strings.TrimSpace(goTypeWords.Replace(ce.Msg))
	return ce
}

func withArticle(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an " + word
	}
	return "a " + word
}

func originOf(t *types.Type) string {
	if t == nil || t.Kind != types.Object {
		return ""
	}
	return t.Origin
}

// goTypeWords rewrites Go type names in expr's messages into the words the docs use.
var goTypeWords = strings.NewReplacer(
	"map[string]interface {}", "object",
	"[]interface {}", "list",
	"interface {}", "any",
	"float64", "number",
	"time.Time", "time",
)

// isCallee reports whether the identifier at offset from is the function of a call.
func isCallee(root ast.Node, from int) bool {
	found := false
	ast.Walk(&root, visitor(func(n ast.Node) {
		if call, ok := n.(*ast.CallNode); ok {
			if id, ok := call.Callee.(*ast.IdentifierNode); ok && id.Location().From == from {
				found = true
			}
		}
	}))
	return found
}

// memberOwner finds the member access whose property starts at offset from and returns the
// text of the object it is read from and that object's type, when it is a plain field path.
func memberOwner(root ast.Node, from int, in *types.Type) (string, *types.Type) {
	var owner string
	var ownerType *types.Type
	ast.Walk(&root, visitor(func(n ast.Node) {
		m, ok := n.(*ast.MemberNode)
		if !ok || m.Property.Location().From != from {
			return
		}
		if path := pathOf(m.Node); path != nil {
			t := in
			for _, part := range path {
				f, ok := t.Field(part)
				if !ok {
					return
				}
				t = f
			}
			owner, ownerType = strings.Join(path, "."), t
		}
	}))
	return owner, ownerType
}

func pathOf(n ast.Node) []string {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		return []string{x.Value}
	case *ast.MemberNode:
		prop, ok := x.Property.(*ast.StringNode)
		if !ok {
			return nil
		}
		if base := pathOf(x.Node); base != nil {
			return append(base, prop.Value)
		}
	}
	return nil
}
