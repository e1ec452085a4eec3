package witness

import (
	"math"
	"sync"
	"time"
)

// limiter enforces each log's requests-per-day quota (the "qpd" of its log
// list entry) with a token bucket: tokens refill at qpd/86400 per second up
// to a burst of the larger of 10 requests and ten minutes of quota, so a log
// may retry after a 409 without being refused. It is safe for concurrent
// use; its memory is bounded by the number of configured logs, since it is
// only consulted after a log's signature verified.
type limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter() *limiter { return &limiter{buckets: map[string]*bucket{}} }

// burst returns the bucket size for a quota.
func burst(qpd uint64) float64 {
	return math.Max(10, float64(qpd)/144)
}

// allow takes a token for origin at time now. When none is left it returns
// false and how long until one is.
func (l *limiter) allow(origin string, qpd uint64, now time.Time) (bool, time.Duration) {
	if qpd == 0 {
		return true, 0
	}
	rate := float64(qpd) / 86400 // tokens per second
	max := burst(qpd)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[origin]
	if b == nil {
		b = &bucket{tokens: max, last: now}
		l.buckets[origin] = b
	}
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = math.Min(max, b.tokens+elapsed*rate)
		b.last = now
	}
	b.tokens = math.Min(b.tokens, max) // the quota may have been lowered
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / rate * float64(time.Second))
	return false, wait.Round(time.Second) + time.Second
}
