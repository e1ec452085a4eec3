package localport

import (
	"net"
	"strconv"
	"testing"
)

// TestStableBelowTheEphemeralRange: every address Stable returns is on
// 127.0.0.1, its port in [20000, 27000) and below the ephemeral range, and
// free.
func TestStableBelowTheEphemeralRange(t *testing.T) {
	top := min(ceiling, ephemeralLow())
	for range 50 {
		addr, err := Stable()
		if err != nil {
			t.Fatal(err)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		p, err := strconv.Atoi(port)
		if host != "127.0.0.1" || err != nil || p < floor || p >= top {
			t.Fatalf("Stable() = %q, want 127.0.0.1 and a port in [%d, %d)", addr, floor, top)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("Stable() = %q, not free: %v", addr, err)
		}
		l.Close()
	}
}
