package server

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxClients bounds the limiter's table; past it, idle clients are
// dropped first and, if none are idle, unknown clients share one bucket.
const maxClients = 100_000

// limiter is a token bucket per client address (the IP, without port).
// A rate below zero disables it. Safe for concurrent use.
type limiter struct {
	rate    rate.Limit
	burst   int
	mu      sync.Mutex
	clients map[string]*client
	shared  *rate.Limiter
}

type client struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiter(perSecond float64, burst int) *limiter {
	return &limiter{rate: rate.Limit(perSecond), burst: burst, clients: map[string]*client{}, shared: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// allow takes a token for addr.
func (l *limiter) allow(addr string) bool {
	if l.rate < 0 {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	now := time.Now()
	l.mu.Lock()
	c := l.clients[host]
	if c == nil {
		if len(l.clients) >= maxClients {
			l.evictLocked(now)
		}
		if len(l.clients) >= maxClients {
			l.mu.Unlock()
			return l.shared.Allow()
		}
		c = &client{lim: rate.NewLimiter(l.rate, l.burst)}
		l.clients[host] = c
	}
	c.seen = now
	l.mu.Unlock()
	return c.lim.AllowN(now, 1)
}

// evictLocked drops clients idle long enough for their bucket to be full.
func (l *limiter) evictLocked(now time.Time) {
	idle := time.Minute
	if l.rate > 0 {
		idle = max(time.Duration(float64(l.burst)/float64(l.rate)*float64(time.Second)), time.Second)
	}
	for k, c := range l.clients {
		if now.Sub(c.seen) > idle {
			delete(l.clients, k)
		}
	}
}

func (l *limiter) wrapHTTP(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.allow(r.RemoteAddr) {
			w.Header().Set("Retry-After", "1")
			text(w, http.StatusTooManyRequests, "rate limited")
			return
		}
		h.ServeHTTP(w, r)
	})
}
