package kit

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// StableAddr returns a free 127.0.0.1 address for a server that a test
// starts in another process, or kills and starts again on the same address.
// Its port lies below the kernel's ephemeral range, which a port the kernel
// chose (":0") does not: while such a server is down, its ephemeral port can
// be taken by any process's outgoing connection, and clients that keep
// retrying it can take it themselves (a TCP self-connect), so the restart
// fails with "address already in use". It is also clear of the fixed ports
// of the documentation's examples (7xxx-9xxx), which the guide tests move up
// by 10000 and 20000.
//
// The port is free when StableAddr returns; nothing reserves it afterwards.
func StableAddr(t testing.TB) string {
	t.Helper()
	const floor = 20000
	top := min(27000, ephemeralLow())
	for range 1000 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(floor+rand.IntN(top-floor)))
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
	t.Fatalf("no free port in %d-%d on 127.0.0.1", floor, top-1)
	return ""
}

// ephemeralLow is the first port of the kernel's ephemeral range: Linux's
// ip_local_port_range, else 32768 (below the IANA range other systems use).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil || lo <= 21000 || lo > 65535 {
		return 32768
	}
	return lo
}
