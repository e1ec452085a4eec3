package kit

import (
	"testing"

	"github.com/shiplog/shiplog/internal/localport"
)

// StableAddr returns a free 127.0.0.1 address for a server that a test
// starts in another process, or kills and starts again on the same address:
// localport.Stable's, whose port lies in 20000-26999, below the kernel's
// ephemeral range. A port the kernel chose (":0") can be taken, while its
// server is not listening, by any process's outgoing connection, and
// clients that keep retrying it can take it themselves (a TCP
// self-connect), so the start or restart fails with "address already in
// use". The range is also clear of the fixed ports of the documentation's
// examples (7xxx-9xxx), which the guide tests move up by 10000 and 20000.
//
// The port is free when StableAddr returns; nothing reserves it afterwards.
// It fails the test if no port is free.
func StableAddr(t testing.TB) string {
	t.Helper()
	addr, err := localport.Stable()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
