package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/gofiber/fiber/v2"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/eval"
	"github.com/eventops/eventops-engine/engine/store"
)

// columnsTimeout bounds the start-up check of a route's columns against its store.
const columnsTimeout = 10 * time.Second

// tableRoute answers GET with rows of one table.
type tableRoute struct {
	srv     *Server
	path    string
	table   string
	store   store.Store
	where   []whereCond
	columns []string
	orderBy string
	desc    bool
	limit   int
	params  []string // query parameters the filters read, for /-/routes
	// latestBy keeps only the newest row (by latestTime) per value of this column.
	latestBy string
	// timeColumn is what from and to bound ("" when the route has none).
	timeColumn string
	// tenantColumn holds each row's tenant: a tenant-bound token reads only rows whose value
	// is its tenant. "" when the table has none (such a token cannot read the route).
	tenantColumn string
}

// latestTime is the column that tells the newest row for latest_by: every built-in table
// and every table a sink writes from engine records has it.
const latestTime = "ts"

// whereCond is one compiled filter: column = value of prog.
type whereCond struct {
	column string
	prog   *eval.Program
	// params are the query parameters prog reads (query.X, query["X"]); when prog yields nil
	// and one of them is absent, the request is missing a required parameter.
	params []string
}

func (s *Server) buildTableRoute(r *config.Route, path string, stores map[string]store.Store, at positions) (*tableRoute, error) {
	var errs config.Errors
	st, ok := stores[r.Table]
	if !ok {
		errs.Add(at.or(path+".table", path), path+".table", "no sink or output writes table %q, so no store holds it", r.Table)
		return nil, errs
	}
	limit := r.Limit
	if limit <= 0 {
		limit = 100
	}
	t := &tableRoute{srv: s, path: r.Path, table: r.Table, store: st, columns: r.Columns, limit: limit, latestBy: r.LatestBy}

	for _, f := range r.Where {
		fpath := path + ".where." + f.Name
		if f.Expr == nil {
			errs.Add(f.Pos, fpath, "a where value must be an expression, not a mapping")
			continue
		}
		prog, err := eval.Compile(*f.Expr, eval.Any)
		if err != nil {
			errs.Append(f.Pos, fpath, err)
			continue
		}
		params := queryParams(f.Expr.Src)
		t.where = append(t.where, whereCond{column: f.Name, prog: prog, params: params})
		for _, p := range params {
			if !slices.Contains(t.params, p) {
				t.params = append(t.params, p)
			}
		}
	}
	if r.Order != "" {
		fields := strings.Fields(r.Order)
		switch {
		case len(fields) == 1:
			t.orderBy = fields[0]
		case len(fields) == 2 && (strings.EqualFold(fields[1], "asc") || strings.EqualFold(fields[1], "desc")):
			t.orderBy, t.desc = fields[0], strings.EqualFold(fields[1], "desc")
		default:
			errs.Add(at.or(path+".order", path), path+".order", "order must be a column optionally followed by asc or desc, e.g. \"ts desc\"; got %q", r.Order)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}

	// Column names from the file become identifiers in the store's query, so each must be a
	// real column: check them now rather than on the first request.
	ctx, cancel := context.WithTimeout(context.Background(), columnsTimeout)
	defer cancel()
	cols, err := st.Columns(ctx, r.Table)
	if err != nil {
		errs.Add(at.or(path+".table", path), path+".table", "table %q: %v", r.Table, err)
		return nil, errs
	}
	unknown := func(c string) string {
		return fmt.Sprintf("table %q has no column %q (columns: %s)", r.Table, c, strings.Join(cols, ", "))
	}
	for _, f := range r.Where {
		if !slices.Contains(cols, f.Name) {
			errs.Add(f.Pos, path+".where."+f.Name, "%s", unknown(f.Name))
		}
	}
	for i, c := range r.Columns {
		if !slices.Contains(cols, c) {
			p := fmt.Sprintf("%s.columns[%d]", path, i)
			errs.Add(at.or(p, path), p, "%s", unknown(c))
		}
	}
	if t.latestBy != "" {
		if !slices.Contains(cols, t.latestBy) {
			errs.Add(at.or(path+".latest_by", path), path+".latest_by", "%s", unknown(t.latestBy))
		}
		if !slices.Contains(cols, latestTime) {
			errs.Add(at.or(path+".latest_by", path), path+".latest_by", "latest_by needs a %q column to tell the newest row: %s", latestTime, unknown(latestTime))
		}
	}
	if t.orderBy != "" && !slices.Contains(cols, t.orderBy) {
		errs.Add(at.or(path+".order", path), path+".order", "%s", unknown(t.orderBy))
	}
	switch {
	case r.TimeColumn != "" && !slices.Contains(cols, r.TimeColumn):
		errs.Add(at.or(path+".time_column", path), path+".time_column", "%s", unknown(r.TimeColumn))
	case r.TimeColumn != "":
		t.timeColumn = r.TimeColumn
	case slices.Contains(cols, latestTime):
		t.timeColumn = latestTime
	}
	switch {
	case r.TenantColumn != "" && !slices.Contains(cols, r.TenantColumn):
		errs.Add(at.or(path+".tenant_column", path), path+".tenant_column", "%s", unknown(r.TenantColumn))
	case r.TenantColumn != "":
		t.tenantColumn = r.TenantColumn
	case slices.Contains(cols, "tenant"):
		t.tenantColumn = "tenant"
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return t, nil
}

func (t *tableRoute) serve(c *fiber.Ctx) error {
	query := map[string]any{}
	for k, v := range c.Queries() {
		query[k] = v
	}
	pathParams := map[string]any{}
	for k, v := range c.AllParams() {
		pathParams[k] = v
	}

	who := principalOf(c)
	if err := t.bindTenant(c, who, query); err != nil {
		return err
	}
	limit := t.limit
	if raw, ok := query["limit"].(string); ok {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > t.limit {
			return jsonError(c, fiber.StatusBadRequest, "limit must be an integer between 1 and %d, got %q", t.limit, raw)
		}
		limit = n
	}

	now := t.srv.deps.Clock.Now()
	rng, err := timeRangeOf(query, t.timeColumn, now)
	if err != nil {
		return jsonError(c, fiber.StatusBadRequest, "%v", err)
	}
	q := store.Query{Table: t.table, Columns: t.columns, OrderBy: t.orderBy, Desc: t.desc, Limit: limit, Range: rng}
	if t.latestBy != "" {
		q.LatestBy, q.LatestTime = t.latestBy, latestTime
	}
	for _, w := range t.where {
		env := eval.Env{Vars: map[string]any{"query": query, "path": pathParams}, Now: now}
		v, err := w.prog.Eval(env)
		if err != nil {
			return jsonError(c, fiber.StatusBadRequest, "where %s: %v", w.column, err)
		}
		if v == nil {
			for _, p := range w.params {
				if _, ok := query[p]; !ok {
					return jsonError(c, fiber.StatusBadRequest, "missing required query parameter %q", p)
				}
			}
			// Every parameter is there and the filter still chose nil: it asked for no
			// condition on this column.
			continue
		}
		q.Where = append(q.Where, store.Cond{Column: w.column, Value: v})
	}

	if who != nil && who.tenant != "" {
		if err := t.restrictToTenant(c, who, &q); err != nil {
			return err
		}
	}
	rows, err := t.store.Query(c.UserContext(), q)
	if errors.Is(err, store.ErrBadQuery) {
		// The request asked for something the table cannot answer (?value=high on a number
		// column): the client's mistake, said as such.
		return jsonError(c, fiber.StatusBadRequest, "%v", err)
	}
	if err != nil {
		t.srv.log.Error("api: table query failed", "path", t.path, "table", t.table, "err", err)
		return jsonError(c, fiber.StatusInternalServerError, "query on table %s failed", t.table)
	}
	body, err := appendRows(make([]byte, 0, 64*len(rows)+2), rows)
	if err != nil {
		t.srv.log.Error("api: encoding rows failed", "path", t.path, "table", t.table, "err", err)
		return jsonError(c, fiber.StatusInternalServerError, "rows of table %s could not be written as JSON", t.table)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(body)
}

// queryParams lists the query parameters an expression reads as query.X or query["X"], in
// order of appearance. An expression that does not parse has none (Compile reports it).
func queryParams(src string) []string {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil
	}
	v := &paramVisitor{}
	ast.Walk(&tree.Node, v)
	return v.params
}

type paramVisitor struct{ params []string }

func (v *paramVisitor) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok {
		return
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || id.Value != "query" {
		return
	}
	name, ok := m.Property.(*ast.StringNode)
	if !ok || slices.Contains(v.params, name.Value) {
		return
	}
	v.params = append(v.params, name.Value)
}

// bindTenant fills the tenant query parameter of a tenant-bound token's request with its
// tenant, and refuses one that names another or a route that has no tenant column.
func (t *tableRoute) bindTenant(c *fiber.Ctx, who *principal, query map[string]any) error {
	if who == nil || who.tenant == "" {
		return nil
	}
	if t.tenantColumn == "" {
		return t.srv.refuse(c, fiber.StatusForbidden, "tenant", who, "token %q reads one tenant's rows, and table %s has no tenant column (set the route's tenant_column)", who.name, t.table)
	}
	if asked, ok := query["tenant"]; ok && asked != who.tenant {
		return t.srv.refuse(c, fiber.StatusForbidden, "tenant", who, "token %q reads tenant %q only", who.name, who.tenant)
	}
	query["tenant"] = who.tenant
	return nil
}

// restrictToTenant makes the query's condition on the tenant column the token's tenant,
// whatever the route's filters chose: refused when they chose another.
func (t *tableRoute) restrictToTenant(c *fiber.Ctx, who *principal, q *store.Query) error {
	var where []store.Cond
	for _, w := range q.Where {
		if w.Column != t.tenantColumn {
			where = append(where, w)
			continue
		}
		if fmt.Sprint(w.Value) != who.tenant {
			return t.srv.refuse(c, fiber.StatusForbidden, "tenant", who, "token %q reads tenant %q only", who.name, who.tenant)
		}
	}
	q.Where = append(where, store.Cond{Column: t.tenantColumn, Value: who.tenant})
	return nil
}
