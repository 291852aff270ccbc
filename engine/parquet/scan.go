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
	for _, f := range sn.files {
		for rgi, rg := range f.pf.RowGroups() {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			hs, err := p.scanRowGroup(f, rgi, rg, read)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.path, err)
			}
			hits = append(hits, hs...)
		}
	}
	return hits, nil
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
		vals, err := readAt(ch, rows)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", p.out.cols[c.col].Name, err)
		}
		kept := rows[:0]
		for i, v := range vals {
			if equalValues(v, c.val) {
				kept = append(kept, rows[i])
			}
		}
		rows = kept
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

// readAt returns a column chunk's values at rows (ascending), reading each page that holds
// any of them once.
func readAt(ch pq.ColumnChunk, rows []int64) ([]any, error) {
	out := make([]any, len(rows))
	if len(rows) == 0 {
		return out, nil
	}
	pages := ch.Pages()
	defer pages.Close()
	var buf []pq.Value
	for i := 0; i < len(rows); {
		if err := pages.SeekToRow(rows[i]); err != nil {
			return nil, err
		}
		page, err := pages.ReadPage()
		if err != nil {
			return nil, err
		}
		// After the seek the page starts at rows[i]; a flat column has one value per row.
		base, n := rows[i], page.NumRows()
		buf = slices.Grow(buf[:0], int(page.NumValues()))[:page.NumValues()]
		got, err := readValues(page.Values(), buf)
		if err != nil {
			pq.Release(page)
			return nil, err
		}
		if int64(got) != n {
			pq.Release(page)
			return nil, fmt.Errorf("page has %d values for %d rows: not a flat column", got, n)
		}
		for ; i < len(rows) && rows[i] < base+n; i++ {
			out[i] = goValue(buf[rows[i]-base])
		}
		pq.Release(page)
	}
	return out, nil
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
