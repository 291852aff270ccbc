package anomaly

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// stateVersion prefixes a detector's checkpoint; a checkpoint of another version (a
// detector changed between releases) is not restored: the series learns again.
const stateVersion = 2

var errStateVersion = errors.New("anomaly: checkpoint of another detector version")

// MarshalBinary encodes the detector's state (not its configuration).
func (d *Detector) MarshalBinary() ([]byte, error) {
	b := []byte{stateVersion}
	f64 := func(x float64) { b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x)) }
	n := func(x int) { b = binary.AppendUvarint(b, uint64(x)) }
	b = binary.AppendVarint(b, d.first)
	n(len(d.warm))
	for i, x := range d.warm {
		f64(x)
		b = binary.AppendVarint(b, d.warmT[i])
	}
	f64(d.lo)
	f64(d.width)
	b = binary.AppendVarint(b, int64(d.last))
	if d.hasLast {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	f64(d.min)
	f64(d.max)
	f64(d.scale)
	for _, t := range []*countTable{&d.levels, &d.transitions, &d.daily} {
		n(len(t.keys))
		for i, k := range t.keys {
			b = binary.AppendUvarint(b, k)
			f64(t.counts[i])
		}
	}
	n(len(d.short))
	for _, x := range d.short {
		f64(x)
	}
	f64(d.mean)
	f64(d.vari)
	return b, nil
}

// UnmarshalBinary restores a state MarshalBinary encoded into d (made with NewDetector).
func (d *Detector) UnmarshalBinary(b []byte) (err error) {
	if len(b) == 0 || b[0] != stateVersion {
		return errStateVersion
	}
	b = b[1:]
	bad := errors.New("anomaly: truncated checkpoint")
	f64 := func() float64 {
		if len(b) < 8 {
			err = bad
			return 0
		}
		x := math.Float64frombits(binary.LittleEndian.Uint64(b))
		b = b[8:]
		return x
	}
	uv := func() uint64 {
		x, k := binary.Uvarint(b)
		if k <= 0 {
			err = bad
			return 0
		}
		b = b[k:]
		return x
	}
	sv := func() int64 {
		x, k := binary.Varint(b)
		if k <= 0 {
			err = bad
			return 0
		}
		b = b[k:]
		return x
	}
	count := func(limit int) int {
		x := uv()
		if x > uint64(limit) {
			err = fmt.Errorf("anomaly: checkpoint has %d entries where at most %d fit", x, limit)
			return 0
		}
		return int(x)
	}
	d.first = sv()
	nw := count(max(d.cfg.Warmup, 1<<16))
	d.warm, d.warmT = make([]float64, 0, nw), make([]int64, 0, nw)
	for range nw {
		d.warm = append(d.warm, f64())
		d.warmT = append(d.warmT, sv())
	}
	if nw == 0 {
		d.warm, d.warmT = nil, nil
	}
	d.lo, d.width = f64(), f64()
	d.last = int32(sv())
	if len(b) > 0 {
		d.hasLast, b = b[0] == 1, b[1:]
	}
	d.min, d.max, d.scale = f64(), f64(), f64()
	for _, t := range []*countTable{&d.levels, &d.transitions, &d.daily} {
		k := count(cap(t.keys))
		t.keys, t.counts = t.keys[:0], t.counts[:0]
		for range k {
			t.keys = append(t.keys, uv())
			t.counts = append(t.counts, f64())
		}
	}
	ns := count(max(d.cfg.Short, 1))
	d.short = d.short[:0]
	for range ns {
		d.short = append(d.short, f64())
	}
	d.mean, d.vari = f64(), f64()
	if err == nil && len(b) != 0 {
		err = errors.New("anomaly: trailing bytes in checkpoint")
	}
	return err
}
