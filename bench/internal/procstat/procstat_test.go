package procstat

import (
	"os"
	"strings"
	"testing"
	"time"
)

const status = `Name:	moreid-user
Umask:	0022
State:	S (sleeping)
Pid:	4242
VmPeak:	 1723456 kB
VmSize:	 1723456 kB
VmHWM:	  350616 kB
VmRSS:	  216064 kB
RssAnon:	  200000 kB
Threads:	9
`

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    Memory
		wantErr bool
	}{
		{"a running process", status, Memory{RSS: 216064 * 1024, Peak: 350616 * 1024}, false},
		{"no memory lines (kernel thread)", "Name:\tkthreadd\nState:\tS (sleeping)\n", Memory{}, true},
		{"peak missing", "VmRSS:\t 10 kB\n", Memory{}, true},
		{"not in kB", "VmHWM:\t 10 MB\nVmRSS:\t 10 kB\n", Memory{}, true},
		{"not a number", "VmHWM:\t ten kB\nVmRSS:\t 10 kB\n", Memory{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.text))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Parse = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// The running test process has a status of its own to read.
func TestReadOwnProcess(t *testing.T) {
	m, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.Peak < m.RSS {
		t.Errorf("own memory %+v: want 0 < RSS <= peak", m)
	}
}

func TestMachine(t *testing.T) {
	cpuinfo := "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor\n"
	if got := CPUModel(strings.NewReader(cpuinfo)); got != "Intel(R) Xeon(R) Processor" {
		t.Errorf("CPUModel = %q", got)
	}
	if got := CPUModel(strings.NewReader("processor\t: 0\n")); got != "" {
		t.Errorf("CPUModel without a model name = %q, want empty", got)
	}
	if got := LoadAverage(strings.NewReader("0.42 0.30 0.21 1/123 4567\n")); got != 0.42 {
		t.Errorf("LoadAverage = %v, want 0.42", got)
	}
	if got := LoadAverage(strings.NewReader("")); got != -1 {
		t.Errorf("LoadAverage of nothing = %v, want -1", got)
	}
	meminfo := "MemTotal:       24683876 kB\nMemFree:        20275568 kB\n"
	if got := MemTotal(strings.NewReader(meminfo)); got != 24683876*1024 {
		t.Errorf("MemTotal = %d", got)
	}
}

func TestParseCPU(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{"plain name", "4242 (moreid-auth) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 100 0 0", 3250 * time.Millisecond, false},
		{"name with spaces and a parenthesis", "7 (a b) c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 0 0", 70 * time.Millisecond, false},
		{"truncated", "7 (x) R 1 7", 0, true},
		{"no name", "garbage", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCPU(tt.stat)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseCPU = %v, want %v", got, tt.want)
			}
		})
	}
}
