package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Size is a number of bytes written the way operators write them: "512", "64KiB", "10MB",
// "1.5GiB". Decimal units (kB, MB, GB, TB) are powers of 1000, binary ones (KiB, MiB, GiB,
// TiB) powers of 1024; K, M, G, T alone are read as binary, as Kafka and Kubernetes users
// expect for memory-like sizes.
type Size int64

var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
}

// ParseSize reads a Size.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.' || i == 0 && (t[i] == '-' || t[i] == '+')) {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("invalid size %q: write a number of bytes with an optional unit, e.g. 512, 64KiB, 10MB, 1GiB", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: write a number of bytes with an optional unit, e.g. 512, 64KiB, 10MB, 1GiB", s)
	}
	f *= mult
	if f > math.MaxInt64 || f < math.MinInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	if f != math.Trunc(f) {
		return 0, fmt.Errorf("size %q is not a whole number of bytes", s)
	}
	return Size(f), nil
}

// String writes the size in the largest binary unit that divides it.
func (s Size) String() string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && int64(s)%u.n == 0 {
			return strconv.FormatInt(int64(s)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}
