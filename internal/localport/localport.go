// Package localport picks a free 127.0.0.1 address for a server that
// another process starts, or that is stopped and started again on the same
// address, as the sandbox and the tests do with the servers they run.
//
// Its ports lie in 20000-26999, below the kernel's ephemeral range, which a
// port the kernel chose (":0") does not. Between the moment an ephemeral port is found free
// and the moment the server binds it (or while the server is down), any
// process's outgoing connection can take it as its local port, and a client
// that keeps dialling it before the server is up can connect to itself (TCP
// simultaneous open on one port); either way the server's bind fails with
// "address already in use". Outgoing connections never take a port below
// the ephemeral range. The range also avoids the fixed ports of the
// documentation's examples (7xxx-9xxx) and the guide tests' copies of them
// moved up by 10000 and 20000; deploy/trillian's free_port picks from the
// same range.
//
// The address is free when Stable returns; nothing reserves it afterwards,
// so two programs picking at the same time can still meet (1 in 7,000 per
// pair of picks).
package localport

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Stable picks ports in [floor, ceiling), cut short by the start of the
// ephemeral range if that is lower.
const floor, ceiling = 20000, 27000

// Stable returns a free 127.0.0.1 address ("127.0.0.1:port") whose port
// lies in 20000-26999 and below the start of the ephemeral range. It tries
// up to 1000 random ports and fails if none of them can be listened on. It
// is safe for concurrent use.
func Stable() (string, error) {
	top := min(ceiling, ephemeralLow())
	for range 1000 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(floor+rand.IntN(top-floor)))
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr, nil
		}
	}
	return "", errors.New("no free port on 127.0.0.1 below the ephemeral range")
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
	if err != nil || lo <= floor+1000 || lo > 65535 {
		return 32768
	}
	return lo
}
