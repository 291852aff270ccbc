package benchutil

import (
	"fmt"
	"os"
	"strings"
)

// CPUModel is the machine's CPU model, as /proc/cpuinfo names it.
func CPUModel() string {
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// NumCPU counts the machine's processors in /proc/cpuinfo.
func NumCPU() int {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(raw), "processor\t:")
}

// Machine says what a figure was measured on: processors, CPU model and load.
func Machine() string {
	load, _ := os.ReadFile("/proc/loadavg")
	fields := append(strings.Fields(string(load)), "?", "?", "?")
	return fmt.Sprintf("%d CPUs (%s), load %s", NumCPU(), CPUModel(), strings.Join(fields[:3], " "))
}
