package testenv

import (
	"net"
	"strconv"
	"testing"
)

// TestFreeAddrClaimsAcrossProcesses: a port FreeAddr handed out is claimed
// by a lock another process (here: another open of the lock file, which
// flock treats alike) cannot take until the claim ends, and it is bindable.
func TestFreeAddrClaimsAcrossProcesses(t *testing.T) {
	addr := FreeAddr(t)
	_, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	other, err := claimPort(port)
	if err != nil {
		t.Fatal(err)
	}
	if other != nil {
		other.Close()
		t.Fatalf("port %d was claimed a second time while FreeAddr's claim holds", port)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the address FreeAddr gave is not free: %v", err)
	}
	l.Close()

	// A claim ends with its holder (a process's exit closes it): the port
	// is free to claim again.
	v, _ := picked.Load(addr)
	claim := v.(interface{ Close() error })
	if err := claim.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := claimPort(port)
	if err != nil || again == nil {
		t.Fatalf("after the claim ended: %v, %v", again, err)
	}
	again.Close()
}
