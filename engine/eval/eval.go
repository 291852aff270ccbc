// Package eval compiles the expressions written in pipeline files (field mappings, rule
// predicates, keys, route filters) with expr-lang/expr and evaluates them against a record.
//
// Expressions see the record's fields as variables, plus helper functions. Functions that
// depend on the record being evaluated rather than on their arguments (record_id(), now())
// read a hidden per-evaluation context: at compile time a patch rewrites record_id() into
// record_id(__ctx), and Eval puts __ctx into the variables for the duration of the call. This
// keeps the functions pure with respect to their inputs, so a virtual clock and a redelivered
// record give the same answers as the first time.
package eval

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine"
)

// ctxVar is the hidden variable through which context-dependent functions see the evaluation.
const ctxVar = "__ctx"

// Env is what one evaluation sees.
type Env struct {
	// Vars are the variables: the record's fields, or for API routes {query, path}.
	Vars map[string]any
	// Source is the position of the record being evaluated (for record_id()).
	Source engine.Source
	// Now is the time now() returns (the engine's clock, possibly virtual).
	Now time.Time
}

// Kind constrains the result type of an expression.
type Kind int

const (
	// Any accepts every result.
	Any Kind = iota
	// Bool requires a boolean result (predicates).
	Bool
)

// Program is a compiled expression.
type Program struct {
	src  config.Expr
	prog *vm.Program
	kind Kind
	// needsCtx is set when the expression calls a context-dependent function; only then does
	// Eval add the hidden context variable (a map write and delete per evaluation).
	needsCtx bool
	// path is set when the expression is nothing but a field path (metric, source.source_id),
	// for Lookup.
	path []string
	// fast answers the expression without the VM when it is of a common shape (fast.go).
	fast fastForm
	// vms recycles VMs: a VM's stack is reused between runs instead of allocated per run.
	vms sync.Pool
	// lazy programs (CompileChecked) compile for running on first use: lint only needs the
	// typed check, and an expression that passed it always compiles untyped.
	lazy    sync.Once
	lazyErr error
}

// Source returns the expression as written.
func (p *Program) Source() config.Expr { return p.src }

// Lookup reads a field-path program's value straight from vars, as Eval would; ok is false
// when the program is not a field path or the answer needs the VM (then call Eval). For
// callers that evaluate many paths per record and want to skip Eval's bookkeeping.
func (p *Program) Lookup(vars map[string]any) (v any, ok bool) {
	if p.path == nil {
		return nil, false
	}
	return lookupPath(vars, p.path)
}

// Compile compiles e. Errors are *config.Error placed at the offending column of e.
func Compile(e config.Expr, kind Kind) (*Program, error) {
	patcher := &ctxPatcher{}
	opts := []expr.Option{
		// Telling expr the environment is a map lets it fetch variables without reflection.
		expr.Env(map[string]any{}),
		expr.AllowUndefinedVariables(),
		expr.Patch(patcher),
	}
	opts = append(opts, functions...)
	if kind == Bool {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(e.Src, opts...)
	if err != nil {
		return nil, positioned(e, err)
	}
	p := &Program{src: e, prog: prog, kind: kind, needsCtx: patcher.patched}
	p.prepareShortcuts()
	return p, nil
}

// compileLater returns e as a program that is compiled on its first evaluation. Only for
// expressions that already passed Check: their untyped compile cannot fail.
func compileLater(e config.Expr, kind Kind) *Program {
	p := &Program{src: e, kind: kind, needsCtx: callsContextFunction(e.Src)}
	p.prepareShortcuts()
	return p
}

// prepareShortcuts sets what spares p the VM, or a new one per run: its fast form, the field
// path Lookup reads (a program of kind Any that is nothing but one), and the pool of VMs.
func (p *Program) prepareShortcuts() {
	var path []string
	p.fast, path = shapeOf(p.src.Src)
	if p.kind == Any {
		p.path = path
	}
	p.vms.New = func() any { return &vm.VM{} }
}

func (p *Program) compileNow() {
	full, err := Compile(p.src, p.kind)
	if err != nil {
		p.lazyErr = err
		return
	}
	if full.needsCtx && !p.needsCtx {
		// callsContextFunction guessed wrong; never evaluate with the wrong context.
		p.lazyErr = fmt.Errorf("%s: internal error: context detection disagrees with the compiler", p.src.Src)
		return
	}
	p.prog = full.prog
}

// callsContextFunction reports whether src calls a function that reads the hidden context,
// without compiling it. A mention inside a string literal only costs an unused context.
func callsContextFunction(src string) bool {
	return contextCallRE.MatchString(src)
}

var contextCallRE = regexp.MustCompile(`\b(record_id|now)\s*\(`)

// MustCompile is Compile for expressions known to be valid (tests, built-in defaults).
func MustCompile(src string, kind Kind) *Program {
	p, err := Compile(config.Expr{Src: src}, kind)
	if err != nil {
		panic(err)
	}
	return p
}

// Eval evaluates the program. When the program needs the hidden context, env.Vars is
// borrowed for the duration of the call: the context variable is added and removed again, so
// a record must not be evaluated by two goroutines at once.
func (p *Program) Eval(env Env) (any, error) {
	return withContext(env, p.needsCtx, p.evalPrepared)
}

// withContext runs fn on env's variables, with the hidden context variable added for the
// duration of the call when needed.
func withContext[T any](env Env, needed bool, fn func(map[string]any) (T, error)) (T, error) {
	vars := env.Vars
	if vars == nil {
		vars = map[string]any{}
	}
	if !needed {
		return fn(vars)
	}
	ctx := evalCtx{source: env.Source, now: env.Now}
	vars[ctxVar] = &ctx
	out, err := fn(vars)
	delete(vars, ctxVar)
	return out, err
}

// evalPrepared evaluates with vars that already hold whatever context the program needs.
func (p *Program) evalPrepared(vars map[string]any) (any, error) {
	if p.fast != nil {
		if v, ok := p.fast(vars); ok && p.acceptsResult(v) {
			return v, nil
		}
	}
	return p.run(vars)
}

// acceptsResult reports whether v is a result of p's kind without the VM's check: a
// predicate's must be a boolean.
func (p *Program) acceptsResult(v any) bool {
	if p.kind != Bool {
		return true
	}
	_, isBool := v.(bool)
	return isBool
}

func (p *Program) run(vars map[string]any) (any, error) {
	if p.prog == nil {
		p.lazy.Do(p.compileNow)
		if p.lazyErr != nil {
			return nil, p.lazyErr
		}
	}
	machine := p.vms.Get().(*vm.VM)
	out, err := machine.Run(p.prog, vars)
	p.vms.Put(machine)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.src.Src, unwrapRuntime(err))
	}
	return out, nil
}

// FieldPath returns the parts of src when it is a plain dotted field path such as
// source.source_id, and nil otherwise.
func FieldPath(src string) []string {
	src = strings.TrimSpace(src)
	if src == "" {
		return nil
	}
	parts := strings.Split(src, ".")
	for _, part := range parts {
		if !IsIdentifier(part) || reserved[part] {
			return nil
		}
	}
	return parts
}

var reserved = map[string]bool{"true": true, "false": true, "nil": true, "not": true, "and": true, "or": true, "in": true, "matches": true, "contains": true, "startsWith": true, "endsWith": true, "let": true, "if": true, "else": true, ctxVar: true}

// IsIdentifier reports whether s can name a field in an expression without quoting.
func IsIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
		case i > 0 && r >= '0' && r <= '9':
		default:
			return false
		}
	}
	return true
}

// lookupPath reads a field path from nested maps. It reports ok=false whenever the answer
// would need expr's own semantics (a missing intermediate object, a non-map value on the
// way), so that the VM decides those cases exactly as it would for any other expression.
func lookupPath(vars map[string]any, path []string) (any, bool) {
	cur := vars
	for i, part := range path {
		v, found := cur[part]
		if i == len(path)-1 {
			return v, true
		}
		if !found {
			return nil, false
		}
		next, isMap := v.(map[string]any)
		if !isMap {
			return nil, false
		}
		cur = next
	}
	return nil, false
}

// EvalBool evaluates a Bool program; a nil result (e.g. from a missing field) is false.
func (p *Program) EvalBool(env Env) (bool, error) {
	out, err := p.Eval(env)
	if err != nil {
		return false, err
	}
	switch v := out.(type) {
	case bool:
		return v, nil
	case nil:
		return false, nil
	default:
		return false, fmt.Errorf("%s: result is %T, not bool", p.src.Src, out)
	}
}

type evalCtx struct {
	source engine.Source
	now    time.Time
}

// ctxPatcher appends the hidden context argument to calls of context-dependent functions,
// and remembers whether it did.
type ctxPatcher struct{ patched bool }

func (c *ctxPatcher) Visit(node *ast.Node) {
	call, ok := (*node).(*ast.CallNode)
	if !ok {
		return
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok || !contextFunctions[id.Value] {
		return
	}
	call.Arguments = append(call.Arguments, &ast.IdentifierNode{Value: ctxVar})
	c.patched = true
}

// positioned turns an expr compile error into a *config.Error at the right file position.
func positioned(e config.Expr, err error) *config.Error {
	var fe *file.Error
	if errors.As(err, &fe) {
		pos := e.Pos
		if pos.Line > 0 {
			pos = e.PosAt(fe.From)
		}
		return &config.Error{Pos: pos, Path: e.Path, Msg: fmt.Sprintf("expression %q: %s", e.Src, fe.Message)}
	}
	return &config.Error{Pos: e.PosAt(0), Path: e.Path, Msg: fmt.Sprintf("expression %q: %v", e.Src, err)}
}

func unwrapRuntime(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return errors.New(fe.Message)
	}
	return err
}
