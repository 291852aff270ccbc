package parquet

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The write-ahead log holds every row acknowledged but not yet in a Parquet file. It is a
// sequence of frames, each [4-byte length][4-byte CRC-32C][payload]: the first frame's
// payload is a JSON header naming the columns (so a log written before a column edit still
// replays by name), every further frame one Write's rows. A torn last frame (a crash in the
// middle of an append, which therefore was never acknowledged) fails its CRC and ends replay.

var crcTable = crc32.MakeTable(crc32.Castagnoli)

const walDirName = "_wal"

type walHeader struct {
	Columns []string `json:"columns"`
}

// walRow is a row as logged: the row, and the source position it came from.
type walRow struct {
	Row
	Mark    string
	Offset  int64
	EventID string
}

// wal is the open log of one generation.
type wal struct {
	f    *os.File
	gen  int64
	size int64
	buf  []byte
}

func walPath(dir string, gen int64) string {
	return filepath.Join(dir, walDirName, fmt.Sprintf("wal-%020d.log", gen))
}

// createWAL starts the log of generation gen with its header, durably.
func createWAL(dir string, gen int64, cols []Column) (*wal, error) {
	f, err := os.OpenFile(walPath(dir, gen), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create write-ahead log: %w", err)
	}
	w := &wal{f: f, gen: gen}
	h := walHeader{}
	for _, c := range cols {
		h.Columns = append(h.Columns, c.Name)
	}
	payload, _ := json.Marshal(h)
	if err := w.append(payload); err != nil {
		f.Close()
		return nil, err
	}
	if err := syncDir(filepath.Join(dir, walDirName)); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// append writes one frame and fsyncs; on failure the file is cut back to its previous size,
// so a retried Write does not leave the rows twice.
func (w *wal) append(payload []byte) error {
	var hdr [8]byte
	binary.LittleEndian.PutUint32(hdr[:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(hdr[4:], crc32.Checksum(payload, crcTable))
	frame := append(append(w.buf[:0], hdr[:]...), payload...)
	w.buf = frame[:0]
	if _, err := w.f.WriteAt(frame, w.size); err != nil {
		_ = w.f.Truncate(w.size)
		return fmt.Errorf("append to write-ahead log: %w", err)
	}
	if err := w.f.Sync(); err != nil {
		_ = w.f.Truncate(w.size)
		return fmt.Errorf("sync write-ahead log: %w", err)
	}
	w.size += int64(len(frame))
	return nil
}

func (w *wal) close() error { return w.f.Close() }

// Value tags of the row encoding.
const (
	tagNil byte = iota
	tagString
	tagFloat
	tagTime
)

// encodeRows appends the rows' frame payload to b.
func encodeRows(b []byte, rows []walRow) []byte {
	b = binary.AppendUvarint(b, uint64(len(rows)))
	for _, r := range rows {
		b = appendString(b, r.Partition)
		b = appendString(b, r.Mark)
		b = binary.AppendVarint(b, r.Offset)
		b = appendString(b, r.EventID)
		b = binary.AppendUvarint(b, uint64(len(r.Values)))
		for _, v := range r.Values {
			switch x := v.(type) {
			case string:
				b = append(b, tagString)
				b = appendString(b, x)
			case float64:
				b = append(b, tagFloat)
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
			case time.Time:
				b = append(b, tagTime)
				b = binary.AppendVarint(b, x.UnixMicro())
			default:
				b = append(b, tagNil)
			}
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errCorrupt = errors.New("corrupt write-ahead log frame")

type decoder struct{ b []byte }

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		panic(errCorrupt)
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		panic(errCorrupt)
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if n < 0 || n > len(d.b) {
		panic(errCorrupt)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes(int(d.uvarint()))) }

// decodeRows reads one frame's rows; remap[i] is where the logged column i goes in the
// current columns (-1: dropped), ncols how many columns rows have now.
func decodeRows(payload []byte, remap []int, ncols int) (rows []walRow, err error) {
	defer func() {
		if r := recover(); r != nil {
			if r != errCorrupt {
				panic(r)
			}
			rows, err = nil, errCorrupt
		}
	}()
	d := &decoder{b: payload}
	n := d.uvarint()
	rows = make([]walRow, 0, min(n, 1<<20))
	for range n {
		r := walRow{Row: Row{Partition: d.string(), Values: make([]any, ncols)}}
		r.Mark = d.string()
		r.Offset = d.varint()
		r.EventID = d.string()
		nv := int(d.uvarint())
		for i := range nv {
			var v any
			switch d.bytes(1)[0] {
			case tagNil:
			case tagString:
				v = d.string()
			case tagFloat:
				v = math.Float64frombits(binary.LittleEndian.Uint64(d.bytes(8)))
			case tagTime:
				v = time.UnixMicro(d.varint()).UTC()
			default:
				panic(errCorrupt)
			}
			if i < len(remap) && remap[i] >= 0 {
				r.Values[remap[i]] = v
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// readWAL returns the rows of a log file, stopping at a torn or corrupt frame.
func readWAL(path string, cols []Column) ([]walRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open write-ahead log: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var remap []int
	var out []walRow
	first := true
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return out, nil // end of log, or a torn header
		}
		payload := make([]byte, binary.LittleEndian.Uint32(hdr[:4]))
		if _, err := io.ReadFull(r, payload); err != nil {
			return out, nil
		}
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
			return out, nil
		}
		if first {
			first = false
			var h walHeader
			if err := json.Unmarshal(payload, &h); err != nil {
				return nil, fmt.Errorf("write-ahead log %s: header: %w", path, err)
			}
			idx := map[string]int{}
			for i, c := range cols {
				idx[c.Name] = i
			}
			remap = make([]int, len(h.Columns))
			for i, n := range h.Columns {
				if j, ok := idx[n]; ok {
					remap[i] = j
				} else {
					remap[i] = -1
				}
			}
			continue
		}
		rows, err := decodeRows(payload, remap, len(cols))
		if err != nil {
			return out, nil
		}
		out = append(out, rows...)
	}
}

// walGens lists the generations of the log files in dir, oldest first.
func walGens(dir string) ([]int64, error) {
	ents, err := os.ReadDir(filepath.Join(dir, walDirName))
	if err != nil {
		return nil, fmt.Errorf("list write-ahead logs: %w", err)
	}
	var gens []int64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "wal-") || !strings.HasSuffix(name, ".log") {
			continue
		}
		g, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(name, "wal-"), ".log"), 10, 64)
		if err == nil {
			gens = append(gens, g)
		}
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i] < gens[j] })
	return gens, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
