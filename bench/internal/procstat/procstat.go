// Package procstat reads a process's memory figures from
// /proc/<pid>/status (Linux).
package procstat

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Memory is a process's resident set size now (VmRSS) and at its peak
// (VmHWM, the "high water mark"), in bytes.
type Memory struct {
	RSS  int64
	Peak int64
}

// Parse reads VmRSS and VmHWM from the text of /proc/<pid>/status. Both
// must be present: a status without them (a kernel thread, a zombie) is an
// error rather than a silent zero.
func Parse(r io.Reader) (Memory, error) {
	var m Memory
	var haveRSS, havePeak bool
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		n, err := kib(value)
		if err != nil {
			return Memory{}, fmt.Errorf("%s: %w", name, err)
		}
		if name == "VmRSS" {
			m.RSS, haveRSS = n, true
		} else {
			m.Peak, havePeak = n, true
		}
	}
	if err := sc.Err(); err != nil {
		return Memory{}, err
	}
	if !haveRSS || !havePeak {
		return Memory{}, fmt.Errorf("no VmRSS/VmHWM in status")
	}
	return m, nil
}

// kib parses "   123456 kB" into bytes.
func kib(s string) (int64, error) {
	fields := strings.Fields(s)
	if len(fields) != 2 || fields[1] != "kB" {
		return 0, fmt.Errorf("unexpected value %q", strings.TrimSpace(s))
	}
	n, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("unexpected value %q", strings.TrimSpace(s))
	}
	return n * 1024, nil
}

// Read returns the memory figures of process pid.
func Read(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	defer f.Close()
	m, err := Parse(f)
	if err != nil {
		return Memory{}, fmt.Errorf("process %d: %w", pid, err)
	}
	return m, nil
}

// ResetPeak sets process pid's VmHWM back to its current RSS (writing "5"
// to /proc/<pid>/clear_refs, Linux 4.0+), so that the next Read's Peak is
// the peak since now. It needs the right to write that file (same user or
// root).
func ResetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}
