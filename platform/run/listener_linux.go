package run

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// shutdownIfQueueEmpty shuts the listening socket down if the kernel holds
// no connection for it that nobody accepted yet (TCP_INFO's tcpi_unacked,
// for a listening socket). Both happen in one Control call, a microsecond
// apart. shutdown(2) with SHUT_RD stops a listening socket at once, as
// close would, without closing the descriptor under the Go runtime.
func shutdownIfQueueEmpty(raw syscall.RawConn) (bool, error) {
	var done bool
	var serr error
	err := raw.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			serr = err
			return
		}
		if info.Unacked > 0 {
			return
		}
		serr = unix.Shutdown(int(fd), unix.SHUT_RD)
		done = serr == nil
	})
	if err != nil {
		return false, err
	}
	return done, serr
}
