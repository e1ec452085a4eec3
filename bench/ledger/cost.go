package main

// What each configuration of -mode trillian costs: the CPU of every
// process of the deployment (this process, Trillian's log server and
// signer, PostgreSQL's postmaster and its backends) and the ledger's
// round trips to Trillian and PostgreSQL read from its /metrics.

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clkTck is the kernel's clock tick for /proc/PID/stat times (USER_HZ,
// 100 on Linux).
const clkTck = 100

// procCPU returns the CPU time (user + system) of pid and, with children,
// of its waited-for children, from /proc/PID/stat.
func procCPU(pid int, children bool) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0
	}
	// f[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
	var ticks int64
	idx := []int{11, 12}
	if children {
		idx = append(idx, 13, 14)
	}
	for _, j := range idx {
		v, _ := strconv.ParseInt(f[j], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clkTck
}

// parentOf returns the parent pid of pid (0 if unknown).
func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(f[1])
	return p
}

// cpuMeter reads the CPU of the deployment's processes by component.
type cpuMeter struct {
	server, signer, postmaster int
}

func newCPUMeter(state string) cpuMeter {
	var m cpuMeter
	if f, err := os.Open(filepath.Join(state, "pids")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			c, p, _ := strings.Cut(sc.Text(), " ")
			pid, _ := strconv.Atoi(p)
			switch c {
			case "log_server":
				m.server = pid
			case "log_signer":
				m.signer = pid
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile(filepath.Join(state, "pgdata", "postmaster.pid")); err == nil {
		m.postmaster, _ = strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	}
	return m
}

// cpuSample is the CPU used so far by each component.
type cpuSample struct{ bench, server, signer, postgres time.Duration }

func (m cpuMeter) sample() cpuSample {
	s := cpuSample{bench: procCPU(os.Getpid(), false), server: procCPU(m.server, false), signer: procCPU(m.signer, false)}
	if m.postmaster == 0 {
		return s
	}
	s.postgres = procCPU(m.postmaster, true)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && parentOf(pid) == m.postmaster {
			s.postgres += procCPU(pid, false)
		}
	}
	return s
}

func (s cpuSample) sub(o cpuSample) cpuSample {
	return cpuSample{s.bench - o.bench, s.server - o.server, s.signer - o.signer, s.postgres - o.postgres}
}

func (s cpuSample) total() time.Duration { return s.bench + s.server + s.signer + s.postgres }

// perOp formats s divided by n operations.
func (s cpuSample) perOp(n int64) string {
	if n <= 0 {
		return "-"
	}
	us := func(d time.Duration) int64 { return d.Microseconds() / n }
	return fmt.Sprintf("%d µs (bench/ledger %d, log server %d, signer %d, postgres %d)", us(s.total()), us(s.bench), us(s.server), us(s.signer), us(s.postgres))
}

// roundTripMetrics are the ledger's counters of calls to Trillian and
// PostgreSQL.
var roundTripMetrics = []string{"shiplog_trillian_rpcs_total", "shiplog_postgres_round_trips_total"}

// scrapeRoundTrips sums the round-trip counters over the nodes' /metrics,
// by series ("name{label}").
func scrapeRoundTrips(nodes []*node) (map[string]float64, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	sum := map[string]float64{}
	for _, n := range nodes {
		resp, err := c.Get(n.url + "/metrics")
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			for _, name := range roundTripMetrics {
				if !strings.HasPrefix(line, name+"{") {
					continue
				}
				series, v, ok := strings.Cut(line, " ")
				if f, err := strconv.ParseFloat(v, 64); ok && err == nil {
					sum[series] += f
				}
			}
		}
		resp.Body.Close()
	}
	return sum, nil
}

// roundTripsPerOp formats the counters' growth from before to after per
// operation: the total for Trillian and for PostgreSQL, then each series.
func roundTripsPerOp(before, after map[string]float64, n int64) string {
	if n <= 0 {
		return "-"
	}
	var keys []string
	totals := map[string]float64{}
	for k, v := range after {
		d := v - before[k]
		if d == 0 {
			continue
		}
		keys = append(keys, k)
		name, _, _ := strings.Cut(k, "{")
		totals[name] += d
	}
	slices.Sort(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "Trillian %.2f, PostgreSQL %.2f per publish;", totals[roundTripMetrics[0]]/float64(n), totals[roundTripMetrics[1]]/float64(n))
	for _, k := range keys {
		short := strings.NewReplacer("shiplog_trillian_rpcs_total", "trillian", "shiplog_postgres_round_trips_total", "pg", `method=`, "", `kind=`, "", `"`, "").Replace(k)
		fmt.Fprintf(&b, " %s %.2f", short, (after[k]-before[k])/float64(n))
	}
	return b.String()
}
