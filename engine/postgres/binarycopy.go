package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Binary COPY, written directly.
//
// pgx's CopyFrom encodes every value through its generic type map, which cost ≈7.7 µs per
// metrics row in the end-to-end profile — more than decoding, mapping and validating the
// event together. The values a row holds here are already normalised by convert (string,
// float64, int64, bool, time.Time in UTC, JSON text, [16]byte), so encoding them into
// PostgreSQL's binary COPY format is a few appends each. Tables with a column type outside
// this set keep using pgx.

// binaryKinds are the column types encodeBinaryValue writes.
var binaryKinds = map[string]bool{
	"text": true, "varchar": true, "bpchar": true, "name": true,
	"float8": true, "float4": true,
	"int2": true, "int4": true, "int8": true,
	"bool": true, "timestamptz": true, "json": true, "jsonb": true, "uuid": true,
}

// binaryEncodable reports whether every column can be written by the binary COPY encoder.
func binaryEncodable(cols []column) bool {
	for _, c := range cols {
		if !binaryKinds[c.udt] {
			return false
		}
	}
	return true
}

// copySQL is the COPY statement for the binary path.
func copySQL(table string, cols []column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = pgx.Identifier{c.name}.Sanitize()
	}
	return fmt.Sprintf("COPY %s (%s) FROM STDIN WITH (FORMAT binary)", table, strings.Join(names, ", "))
}

// copyBinary runs a binary COPY of the rows of src on conn.
func copyBinary(ctx context.Context, conn *pgconn.PgConn, sql string, cols []column, src pgx.CopyFromSource) (int64, error) {
	r := &binaryCopyReader{cols: cols, src: src}
	tag, err := conn.CopyFrom(ctx, r, sql)
	if r.err != nil {
		return 0, r.err
	}
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// pgEpochMicros is 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch, in Unix microseconds.
const pgEpochMicros = 946684800 * 1_000_000

var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// chunkBytes is how much encoded data one Read prepares: rows are encoded while the server
// works on the previous chunk.
const chunkBytes = 64 << 10

// binaryCopyReader encodes rows into the binary COPY stream as the connection reads it.
type binaryCopyReader struct {
	cols    []column
	src     pgx.CopyFromSource
	buf     []byte
	off     int
	started bool
	done    bool
	err     error
}

func (r *binaryCopyReader) Read(p []byte) (int, error) {
	for r.off >= len(r.buf) {
		if r.done {
			return 0, io.EOF
		}
		r.buf, r.off = r.buf[:0], 0
		if !r.started {
			r.buf = append(r.buf, copyHeader...)
			r.started = true
		}
		for len(r.buf) < chunkBytes {
			if !r.src.Next() {
				if err := r.src.Err(); err != nil {
					r.err = err
					return 0, err
				}
				r.buf = append(r.buf, 0xff, 0xff) // end of data
				r.done = true
				break
			}
			row, err := r.src.Values()
			if err != nil {
				r.err = err
				return 0, err
			}
			if r.buf, err = appendBinaryRow(r.buf, r.cols, row); err != nil {
				r.err = err
				return 0, err
			}
		}
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}

func appendBinaryRow(buf []byte, cols []column, row []any) ([]byte, error) {
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(cols)))
	for i, c := range cols {
		var err error
		if buf, err = appendBinaryValue(buf, c.udt, row[i]); err != nil {
			return nil, fmt.Errorf("column %s: %w", c.name, err)
		}
	}
	return buf, nil
}

// appendBinaryValue writes one field: its length, then its bytes (-1 and nothing for NULL).
func appendBinaryValue(buf []byte, udt string, v any) ([]byte, error) {
	if v == nil {
		return binary.BigEndian.AppendUint32(buf, math.MaxUint32), nil
	}
	switch udt {
	case "text", "varchar", "bpchar", "name":
		if s, ok := v.(string); ok {
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
			return append(buf, s...), nil
		}
	case "float8":
		if f, ok := v.(float64); ok {
			buf = binary.BigEndian.AppendUint32(buf, 8)
			return binary.BigEndian.AppendUint64(buf, math.Float64bits(f)), nil
		}
	case "float4":
		if f, ok := v.(float64); ok {
			buf = binary.BigEndian.AppendUint32(buf, 4)
			return binary.BigEndian.AppendUint32(buf, math.Float32bits(float32(f))), nil
		}
	case "int2", "int4", "int8":
		if n, ok := v.(int64); ok {
			switch udt {
			case "int2":
				buf = binary.BigEndian.AppendUint32(buf, 2)
				return binary.BigEndian.AppendUint16(buf, uint16(n)), nil
			case "int4":
				buf = binary.BigEndian.AppendUint32(buf, 4)
				return binary.BigEndian.AppendUint32(buf, uint32(n)), nil
			default:
				buf = binary.BigEndian.AppendUint32(buf, 8)
				return binary.BigEndian.AppendUint64(buf, uint64(n)), nil
			}
		}
	case "bool":
		if b, ok := v.(bool); ok {
			buf = binary.BigEndian.AppendUint32(buf, 1)
			if b {
				return append(buf, 1), nil
			}
			return append(buf, 0), nil
		}
	case "timestamptz":
		if t, ok := v.(time.Time); ok {
			buf = binary.BigEndian.AppendUint32(buf, 8)
			return binary.BigEndian.AppendUint64(buf, uint64(t.UnixMicro()-pgEpochMicros)), nil
		}
	case "jsonb":
		if j, ok := v.([]byte); ok {
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(j)+1))
			buf = append(buf, 1) // jsonb binary format version
			return append(buf, j...), nil
		}
	case "json":
		if j, ok := v.([]byte); ok {
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(j)))
			return append(buf, j...), nil
		}
	case "uuid":
		if u, ok := v.([16]byte); ok {
			buf = binary.BigEndian.AppendUint32(buf, 16)
			return append(buf, u[:]...), nil
		}
	}
	return nil, fmt.Errorf("internal error: %T value for a %s column", v, udt)
}
