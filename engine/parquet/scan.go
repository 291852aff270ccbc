package parquet

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	pq "github.com/parquet-go/parquet-go"
)

// A query reads the files in two passes, so that a route like /metrics/cpu (one host's
// newest readings) reads a few pages of a few columns however many rows the table holds:
//
//  1. Candidates. Each condition keeps only the pages whose min/max statistics (the
//     page index) can hold its value; their row ranges are intersected per row group, and
//     only the pages of the surviving ranges are read, one condition column at a time,
//     narrowing the rows as it goes. A page whose min and max both equal the value (the
//     tenant of a tenant's partition) matches without being read. The order column is read
//     for the rows left. Files are sorted by their sort key (sort_by), so one host's rows
//     are contiguous and its pages few.
//  2. Rows. After latest_by, the order and the limit are applied to the candidates (and the
//     unflushed rows, filtered the same way), only the rows returned read the columns still
//     missing.
//
// latest_by keeps the newest row of each key before the conditions apply, so it reads its
// key, its time, the condition and the order columns of every row of the partitions it
// needs (alerts tables are small).

// hit is one candidate row: an unflushed row (src nil; vals are its values, shared with the
// output's buffer and never modified) or row `row` of row group rg of file src, whose vals
// are filled for the columns read so far.
type hit struct {
	src  *openFile
	rg   int
	row  int64
	vals []any
}

// rowRange is the rows [from, to) of a row group.
type rowRange struct{ from, to int64 }

// firstPass lists the columns a file's candidates carry after pass 1.
func (p *queryPlan) firstPass() []int {
	var cols []int
	if p.latestBy >= 0 {
		cols = append(cols, p.latestBy, p.latestTime)
		for _, c := range p.conds {
			cols = append(cols, c.col)
		}
	}
	if p.order >= 0 {
		cols = append(cols, p.order)
	}
	if p.timeRange != nil {
		cols = append(cols, p.rangeCol)
	}
	slices.Sort(cols)
	return slices.Compact(cols)
}

func (p *queryPlan) scan(ctx context.Context, sn *snapshot) ([]*hit, error) {
	var hits []*hit
	for _, r := range sn.pending {
		if p.latestBy >= 0 || p.matches(r.Values) {
			hits = append(hits, &hit{vals: r.Values})
		}
	}
	read := p.firstPass()
	units, topN := p.units(sn.files)
	for _, u := range units {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if topN && len(hits) >= p.limit {
			// Keep the best limit rows; once no row of the next row group can beat the
			// worst of them, no later one can either (they come best bound first).
			hits = p.finish(hits)
			if !p.better(u.bound, hits[len(hits)-1].vals[p.order]) {
				break
			}
		}
		hs, err := p.scanRowGroup(u.f, u.rg, u.f.pf.RowGroups()[u.rg], read)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", u.f.path, err)
		}
		hits = append(hits, hs...)
	}
	return hits, nil
}

// unit is one row group of one file, with the best value of the order column it can hold.
type unit struct {
	f     *openFile
	rg    int
	bound any
}

// units lists the row groups to scan. For a query with an order and a limit (and no
// latest_by) they come best bound first, and topN says the scan may stop early: the newest
// 1000 readings of a host are in the newest files, whatever the table's size.
func (p *queryPlan) units(files []*openFile) ([]unit, bool) {
	var out []unit
	for _, f := range files {
		for rgi := range f.pf.RowGroups() {
			out = append(out, unit{f: f, rg: rgi})
		}
	}
	if p.order < 0 || p.limit <= 0 || p.latestBy >= 0 {
		return out, false
	}
	name := p.out.cols[p.order].Name
	for i := range out {
		u := &out[i]
		leaf, ok := u.f.leaves[name]
		if !ok {
			continue // all NULL: the largest value, so the bound stays nil
		}
		b, ok := orderBound(u.f.pf.RowGroups()[u.rg].ColumnChunks()[leaf], p.desc)
		if !ok {
			continue // unknown: nil, the largest bound, so it is never skipped
		}
		u.bound = b
	}
	slices.SortStableFunc(out, func(a, b unit) int {
		c := compareValues(a.bound, b.bound)
		if p.desc {
			return -c
		}
		return c
	})
	return out, true
}

// better tells whether a row group whose best order value is bound may hold a row that
// sorts before worst (the last row kept so far).
func (p *queryPlan) better(bound, worst any) bool {
	c := compareValues(bound, worst)
	if p.desc {
		return c > 0
	}
	return c < 0
}

// orderBound is the best value of an order column a row group holds, from its page index:
// the largest (desc) or smallest (asc) value, NULL being above every value. ok is false
// without a page index.
func orderBound(ch pq.ColumnChunk, desc bool) (any, bool) {
	ci, err := ch.ColumnIndex()
	if err != nil {
		return nil, false
	}
	var best any
	found := false
	for i := range ci.NumPages() {
		if desc && (ci.NullCount(i) > 0 || ci.NullPage(i)) {
			return nil, true // a NULL is the best value descending
		}
		if ci.NullPage(i) {
			continue // ascending, NULLs come last: they add nothing
		}
		v := ci.MaxValue(i)
		if !desc {
			v = ci.MinValue(i)
		}
		gv := goValue(v)
		if !found || (desc && compareValues(gv, best) > 0) || (!desc && compareValues(gv, best) < 0) {
			best, found = gv, true
		}
	}
	if !found {
		return nil, true // only NULLs: they sort last ascending, first descending
	}
	return best, true
}

func (p *queryPlan) scanRowGroup(f *openFile, rgi int, rg pq.RowGroup, read []int) ([]*hit, error) {
	n := rg.NumRows()
	if n == 0 {
		return nil, nil
	}
	chunks := rg.ColumnChunks()
	chunk := func(col int) (pq.ColumnChunk, bool) {
		leaf, ok := f.leaves[p.out.cols[col].Name]
		if !ok {
			return nil, false
		}
		return chunks[leaf], true
	}
	ranges := []rowRange{{0, n}}
	var toRead []cond // conditions whose pages must be read
	if p.latestBy < 0 {
		for _, c := range p.conds {
			ch, ok := chunk(c.col)
			if !ok {
				// A file written before the column existed: the column is NULL there.
				if c.val != nil {
					return nil, nil
				}
				continue
			}
			r, exact, err := pageRanges(ch, n, c.val)
			if err != nil {
				return nil, err
			}
			ranges = intersect(ranges, r)
			if len(ranges) == 0 {
				return nil, nil
			}
			if !exact {
				toRead = append(toRead, c)
			}
		}
	}
	var rows []int64
	for _, r := range ranges {
		for i := r.from; i < r.to; i++ {
			rows = append(rows, i)
		}
	}
	for _, c := range toRead {
		ch, _ := chunk(c.col)
		var err error
		if rows, err = filterAt(ch, rows, c.val); err != nil {
			return nil, fmt.Errorf("column %s: %w", p.out.cols[c.col].Name, err)
		}
		if len(rows) == 0 {
			return nil, nil
		}
	}
	hits := make([]*hit, len(rows))
	slab := make([]any, len(rows)*len(p.out.cols))
	for i, r := range rows {
		h := &hit{src: f, rg: rgi, row: r, vals: slab[i*len(p.out.cols) : (i+1)*len(p.out.cols) : (i+1)*len(p.out.cols)]}
		if p.latestBy < 0 {
			for _, c := range p.conds {
				h.vals[c.col] = c.val // what the row holds, since it matched
			}
		}
		hits[i] = h
	}
	for _, col := range read {
		if err := fill(hits, col, chunk); err != nil {
			return nil, err
		}
	}
	if p.latestBy < 0 && p.timeRange != nil {
		// Before any limit is applied: a row out of the range must not take a place.
		hits = slices.DeleteFunc(hits, func(h *hit) bool { return !p.inRange(h.vals) })
	}
	return hits, nil
}

// fill reads column col of the hits (all of one row group, in row order).
func fill(hits []*hit, col int, chunk func(int) (pq.ColumnChunk, bool)) error {
	ch, ok := chunk(col)
	if !ok {
		return nil // NULL in this file
	}
	rows := make([]int64, len(hits))
	for i, h := range hits {
		rows[i] = h.row
	}
	vals, err := readAt(ch, rows)
	if err != nil {
		return err
	}
	for i, h := range hits {
		h.vals[col] = vals[i]
	}
	return nil
}

// materialize reads the selected columns pass 1 did not read, for the rows returned only.
func (p *queryPlan) materialize(ctx context.Context, hits []*hit) error {
	known := map[int]bool{}
	for _, c := range p.firstPass() {
		known[c] = true
	}
	if p.latestBy < 0 {
		for _, c := range p.conds {
			known[c.col] = true
		}
	}
	var missing []int
	for _, c := range p.selected {
		if !known[c] {
			missing = append(missing, c)
			known[c] = true
		}
	}
	if len(missing) == 0 {
		return nil
	}
	type groupKey struct {
		f  *openFile
		rg int
	}
	groups := map[groupKey][]*hit{}
	var order []groupKey
	for _, h := range hits {
		if h.src == nil {
			continue
		}
		k := groupKey{h.src, h.rg}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], h)
	}
	for _, k := range order {
		if err := ctx.Err(); err != nil {
			return err
		}
		hs := groups[k]
		slices.SortFunc(hs, func(a, b *hit) int { return cmp.Compare(a.row, b.row) })
		chunks := k.f.pf.RowGroups()[k.rg].ColumnChunks()
		chunk := func(col int) (pq.ColumnChunk, bool) {
			leaf, ok := k.f.leaves[p.out.cols[col].Name]
			if !ok {
				return nil, false
			}
			return chunks[leaf], true
		}
		for _, col := range missing {
			if err := fill(hs, col, chunk); err != nil {
				return fmt.Errorf("%s: column %s: %w", k.f.path, p.out.cols[col].Name, err)
			}
		}
	}
	return nil
}

// pageRanges returns the row ranges of the pages of a column chunk that may hold val (nil:
// NULL), merged, and whether every row in them is sure to hold it. Without a page index the
// whole chunk may.
func pageRanges(ch pq.ColumnChunk, numRows int64, val any) ([]rowRange, bool, error) {
	all := []rowRange{{0, numRows}}
	ci, err := ch.ColumnIndex()
	if err != nil {
		if errors.Is(err, pq.ErrMissingColumnIndex) {
			return all, false, nil
		}
		return nil, false, err
	}
	oi, err := ch.OffsetIndex()
	if err != nil {
		if errors.Is(err, pq.ErrMissingOffsetIndex) {
			return all, false, nil
		}
		return nil, false, err
	}
	pages := ci.NumPages()
	if pages != oi.NumPages() {
		return all, false, nil
	}
	exact := true
	var out []rowRange
	for i := range pages {
		from, to := oi.FirstRowIndex(i), numRows
		if i+1 < pages {
			to = oi.FirstRowIndex(i + 1)
		}
		var may, sure bool
		switch {
		case val == nil:
			// Null counts are optional in the format: only an all-null page is trusted.
			may, sure = true, ci.NullPage(i)
		case ci.NullPage(i):
			may = false
		default:
			lo, okLo := comparePage(ci.MinValue(i), val)
			hi, okHi := comparePage(ci.MaxValue(i), val)
			if !okLo || !okHi {
				may = true
				break
			}
			may = lo <= 0 && hi >= 0
			sure = lo == 0 && hi == 0 && ci.NullCount(i) == 0
		}
		if !may {
			continue
		}
		exact = exact && sure
		if n := len(out); n > 0 && out[n-1].to == from {
			out[n-1].to = to
		} else {
			out = append(out, rowRange{from, to})
		}
	}
	return out, exact, nil
}

// comparePage compares a page's min or max statistic with a condition's value; ok is false
// when they are not comparable (a file written under another column type).
func comparePage(stat pq.Value, val any) (int, bool) {
	switch x := val.(type) {
	case string:
		if stat.Kind() == pq.ByteArray {
			return bytes.Compare(stat.ByteArray(), []byte(x)), true
		}
	case float64:
		if stat.Kind() == pq.Double {
			return cmp.Compare(stat.Double(), x), true
		}
	case time.Time:
		if stat.Kind() == pq.Int64 {
			return cmp.Compare(stat.Int64(), x.UnixMicro()), true
		}
	}
	return 0, false
}

// intersect returns the rows in both sorted, disjoint range lists.
func intersect(a, b []rowRange) []rowRange {
	var out []rowRange
	for i, j := 0, 0; i < len(a) && j < len(b); {
		from, to := max(a[i].from, b[j].from), min(a[i].to, b[j].to)
		if from < to {
			out = append(out, rowRange{from, to})
		}
		if a[i].to < b[j].to {
			i++
		} else {
			j++
		}
	}
	return out
}

// readAt returns a column chunk's values at rows (ascending).
func readAt(ch pq.ColumnChunk, rows []int64) ([]any, error) {
	out := make([]any, len(rows))
	err := eachAt(ch, rows, func(i int, v pq.Value) { out[i] = goValue(v) })
	return out, err
}

// filterAt keeps the rows (ascending) whose value in the column chunk equals val (nil:
// NULL), comparing the values in the page, without copying them out.
func filterAt(ch pq.ColumnChunk, rows []int64, val any) ([]int64, error) {
	kept := rows[:0]
	err := eachAt(ch, rows, func(i int, v pq.Value) {
		if valueEquals(v, val) {
			kept = append(kept, rows[i])
		}
	})
	return kept, err
}

// valueEquals compares a file value with a condition's value of the column's type.
func valueEquals(v pq.Value, val any) bool {
	if v.IsNull() || val == nil {
		return v.IsNull() && val == nil
	}
	switch x := val.(type) {
	case string:
		return v.Kind() == pq.ByteArray && string(v.ByteArray()) == x // no allocation: compared in place
	case float64:
		return v.Kind() == pq.Double && v.Double() == x
	case time.Time:
		return v.Kind() == pq.Int64 && v.Int64() == x.UnixMicro()
	}
	return false
}

// eachAt calls fn with the column chunk's value at each of rows (ascending), reading each
// page that holds any of them once. The value is valid during the call only.
func eachAt(ch pq.ColumnChunk, rows []int64, fn func(i int, v pq.Value)) error {
	if len(rows) == 0 {
		return nil
	}
	pages := ch.Pages()
	defer pages.Close()
	var buf []pq.Value
	for i := 0; i < len(rows); {
		if err := pages.SeekToRow(rows[i]); err != nil {
			return err
		}
		page, err := pages.ReadPage()
		if err != nil {
			return err
		}
		// After the seek the page starts at rows[i]; a flat column has one value per row.
		base, n := rows[i], page.NumRows()
		buf = slices.Grow(buf[:0], int(page.NumValues()))[:page.NumValues()]
		got, err := readValues(page.Values(), buf)
		if err == nil && int64(got) != n {
			err = fmt.Errorf("page has %d values for %d rows: not a flat column", got, n)
		}
		if err != nil {
			pq.Release(page)
			return err
		}
		for ; i < len(rows) && rows[i] < base+n; i++ {
			fn(i, buf[rows[i]-base])
		}
		pq.Release(page)
	}
	return nil
}

func readValues(r pq.ValueReader, buf []pq.Value) (int, error) {
	total := 0
	for total < len(buf) {
		n, err := r.ReadValues(buf[total:])
		total += n
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return total, err
		}
		if n == 0 {
			break
		}
	}
	return total, nil
}

// goValue is a file value as a row value (see Row); byte arrays are copied out of the page.
func goValue(v pq.Value) any {
	if v.IsNull() {
		return nil
	}
	switch v.Kind() {
	case pq.Double:
		return v.Double()
	case pq.Int64:
		return time.UnixMicro(v.Int64()).UTC()
	case pq.ByteArray:
		return string(v.ByteArray())
	}
	return v.String()
}
