package procstat

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// CPUModel is the first "model name" of /proc/cpuinfo text ("" if none).
func CPUModel(r io.Reader) string {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

// MemTotal is MemTotal of /proc/meminfo text, in bytes (0 if absent).
func MemTotal(r io.Reader) int64 {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if ok && name == "MemTotal" {
			n, err := kib(value)
			if err == nil {
				return n
			}
		}
	}
	return 0
}

// Machine describes the host from /proc: CPU model and total memory.
func Machine() (cpu string, mem int64) {
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		cpu = CPUModel(f)
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		mem = MemTotal(f)
		f.Close()
	}
	return cpu, mem
}

// LoadAverage is the 1-minute load average of /proc/loadavg text (-1 if
// unreadable): other work on the machine skews every figure, so the report
// states it.
func LoadAverage(r io.Reader) float64 {
	var one float64
	if _, err := fmt.Fscan(r, &one); err != nil {
		return -1
	}
	return one
}

// LoadAverageNow reads /proc/loadavg.
func LoadAverageNow() float64 {
	f, err := os.Open("/proc/loadavg")
	if err != nil {
		return -1
	}
	defer f.Close()
	return LoadAverage(f)
}
