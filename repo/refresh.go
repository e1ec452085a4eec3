package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/shiplog/shiplog/repo/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// RefreshOptions configures Refresh.
type RefreshOptions struct {
	// TimestampKeys are the online timestamp keys (files, PKCS #11 or KMS
	// keys), at least the role's threshold of distinct ones. Required.
	TimestampKeys []*keys.Private
	// SnapshotKeys are the online snapshot keys; needed only when the
	// snapshot itself is due for renewal. Refresh fails, naming the
	// snapshot's expiry, when it is due and none is given.
	SnapshotKeys []*keys.Private
	// Within re-signs a role whose remaining validity is less than Within;
	// zero means half of the role's configured lifetime (config.json
	// expires), so a daily refresh keeps a one-day timestamp fresh.
	Within time.Duration
}

// Refreshed reports what Refresh did.
type Refreshed struct {
	Snapshot  int64 `json:"snapshot_version"`
	Timestamp int64 `json:"timestamp_version"`
	// SnapshotSigned and TimestampSigned tell which roles got a new
	// version; both false means nothing was due.
	SnapshotSigned  bool `json:"snapshot_signed"`
	TimestampSigned bool `json:"timestamp_signed"`
	// Expires is the expiry of every exposed role after the refresh.
	Expires map[string]time.Time `json:"expires"`
}

// Refresh keeps the exposed repository fresh: it re-signs the snapshot (with
// exactly the role versions it already lists) when it is due, and the
// timestamp when it is due or names a new snapshot. It never signs root or
// any targets role, and never exposes a role version publish has not
// exposed: what devices may install does not change, only how long they
// may keep trusting it. Like every exposure, the result must pass the TUF
// client workflow, so an expired root or targets role makes Refresh fail
// (those need their offline keys: `shiplog repo renew`).
func (r *Repo) Refresh(o RefreshOptions) (*Refreshed, error) {
	if r.snapshot == nil || r.timestamp == nil {
		return nil, errors.New("nothing is exposed yet: run `shiplog publish` with --snapshot-key and --timestamp-key first")
	}
	tsKeys, err := r.onlineKeys("timestamp", o.TimestampKeys)
	if err != nil {
		return nil, err
	}
	now := r.now()
	due := func(role string, expires time.Time) bool {
		within := o.Within
		if within <= 0 {
			within = r.Config.Expires.For(role) / 2
		}
		return expires.Before(now.Add(within))
	}
	snap, snapBytes := r.snapshot, r.snapshotBytes
	out := &Refreshed{Snapshot: snap.Signed.Version, Timestamp: r.timestamp.Signed.Version}
	if due("snapshot", snap.Signed.Expires) {
		if len(o.SnapshotKeys) == 0 {
			return nil, fmt.Errorf("snapshot v%d expires at %s: refresh it with --snapshot-key", snap.Signed.Version, snap.Signed.Expires.Format(time.RFC3339))
		}
		snapKeys, err := r.onlineKeys("snapshot", o.SnapshotKeys)
		if err != nil {
			return nil, err
		}
		next := metadata.Snapshot(r.expiry("snapshot"))
		next.Signed.Version = snap.Signed.Version + 1
		next.Signed.Meta = maps.Clone(snap.Signed.Meta)
		b, err := signBytes(next, snapKeys...)
		if err != nil {
			return nil, err
		}
		snap, snapBytes, out.SnapshotSigned = next, b, true
	}
	if out.SnapshotSigned || due("timestamp", r.timestamp.Signed.Expires) {
		e, err := r.writeTimestamp(snap, snapBytes, tsKeys)
		if err != nil {
			return nil, err
		}
		out.Snapshot, out.Timestamp, out.TimestampSigned = e.Snapshot, e.Timestamp, true
	}
	out.Expires = r.Expiries()
	return out, nil
}

// Expiries returns the expiry of root, timestamp, snapshot and every
// targets role the exposed snapshot lists, by role name.
func (r *Repo) Expiries() map[string]time.Time {
	out := map[string]time.Time{}
	if r.root != nil {
		out["root"] = r.root.Signed.Expires
	}
	if r.timestamp != nil {
		out["timestamp"] = r.timestamp.Signed.Expires
	}
	if r.snapshot == nil {
		return out
	}
	out["snapshot"] = r.snapshot.Signed.Expires
	for name, mf := range r.snapshot.Signed.Meta {
		role := name[:len(name)-len(".json")]
		c := r.roles[role]
		if c != nil && c.Version == mf.Version {
			out[role] = c.Meta.Signed.Expires
			continue
		}
		b, err := readLimited(r.metaPath(mf.Version, role), MaxTargetsSize)
		if err != nil {
			continue
		}
		if m, err := new(metadata.Metadata[metadata.TargetsType]).FromBytes(b); err == nil {
			out[role] = m.Signed.Expires
		}
	}
	return out
}

// FreshnessMetrics are the Prometheus metrics of `shiplog repo refresh`:
// when each exposed role expires (alert on "expires within N hours"), and
// how refreshes go. Safe for concurrent use.
type FreshnessMetrics struct {
	expires     *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	failures    *prometheus.CounterVec
}

// NewFreshnessMetrics registers the metrics with reg.
func NewFreshnessMetrics(reg prometheus.Registerer) *FreshnessMetrics {
	m := &FreshnessMetrics{
		expires: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "shiplog_repo_metadata_expires_timestamp_seconds",
			Help: "When the exposed version of each TUF role of the repository expires (Unix seconds)."}, []string{"repository", "role"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "shiplog_repo_refresh_last_success_timestamp_seconds",
			Help: "When the last refresh of the repository succeeded (Unix seconds)."}, []string{"repository"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shiplog_repo_refresh_failures_total",
			Help: "Refreshes of the repository that failed."}, []string{"repository"}),
	}
	reg.MustRegister(m.expires, m.lastSuccess, m.failures)
	return m
}

// Observe records a refresh's outcome at time now.
func (m *FreshnessMetrics) Observe(repository string, expires map[string]time.Time, err error, now time.Time) {
	failures := m.failures.WithLabelValues(repository) // present at 0: increase() sees the first failure
	if err != nil {
		failures.Inc()
	} else {
		m.lastSuccess.WithLabelValues(repository).Set(float64(now.Unix()))
	}
	for role, t := range expires {
		m.expires.WithLabelValues(repository, role).Set(float64(t.Unix()))
	}
}

// Resume carries over, from textfile (the Prometheus text format an earlier
// run wrote with --metrics-file), repository's last success time and
// failure count: a one-shot refresh run from a timer starts with empty
// metrics, and without them a run that fails would write a file with no
// last success and a failure count of 1 every time, so "no success for
// three hours" could never be seen. Other series are ignored; a file that
// does not parse is an error and carries nothing.
func (m *FreshnessMetrics) Resume(repository string, textfile []byte) error {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(textfile))
	if err != nil {
		return err
	}
	for _, mf := range fams {
		for _, mt := range mf.GetMetric() {
			if !hasLabel(mt, "repository", repository) {
				continue
			}
			switch mf.GetName() {
			case "shiplog_repo_refresh_last_success_timestamp_seconds":
				m.lastSuccess.WithLabelValues(repository).Set(mt.GetGauge().GetValue())
			case "shiplog_repo_refresh_failures_total":
				if v := mt.GetCounter().GetValue(); v > 0 {
					m.failures.WithLabelValues(repository).Add(v)
				}
			}
		}
	}
	return nil
}

func hasLabel(mt *dto.Metric, name, value string) bool {
	for _, l := range mt.GetLabel() {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}

// RefreshLoopOptions configures RefreshLoop.
type RefreshLoopOptions struct {
	RefreshOptions
	// Every is the time between refreshes (required, positive). A refresh
	// that finds the repository in use by another command is retried after
	// Retry (default one minute, at most Every).
	Every, Retry time.Duration
	Metrics      *FreshnessMetrics // optional
	Logger       *slog.Logger      // optional
	// Done, if set, is called after every attempt (tests wait on it).
	Done func(*Refreshed, error)
	// Now is the clock the metadata is checked and signed against; nil
	// means time.Now.
	Now func() time.Time
	// Attestations, when set, makes every round also pull the sign-off
	// statements logged about the repository's targets (PullAttestations)
	// after the refresh; a failed pull is logged, never fatal, and a
	// repository with no ledger or policy to pull with
	// (ErrPullNotConfigured) is logged as skipped.
	Attestations *PullOptions
}

// RefreshLoop refreshes the repository in dir every o.Every until ctx ends:
// the long-running form of `shiplog repo refresh` (--interval). It opens the
// repository for each refresh only, so vendors' commands can run between
// two refreshes. Failures are logged and counted, never fatal: the next
// round tries again. It returns ctx's error.
func RefreshLoop(ctx context.Context, dir string, o RefreshLoopOptions) error {
	if o.Every <= 0 {
		return errors.New("refresh interval must be positive")
	}
	if o.Retry <= 0 || o.Retry > o.Every {
		o.Retry = min(time.Minute, o.Every)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	for {
		res, id, err := refreshOnce(dir, o.RefreshOptions, o.Now)
		wait := o.Every
		switch {
		case err != nil:
			log.Error("refresh failed", "dir", dir, "err", err)
			wait = o.Retry
		case res.TimestampSigned:
			log.Info("refreshed", "dir", dir, "timestamp", res.Timestamp, "snapshot", res.Snapshot, "snapshot_signed", res.SnapshotSigned)
		}
		if o.Metrics != nil && id != "" {
			var exp map[string]time.Time
			if res != nil {
				exp = res.Expires
			}
			o.Metrics.Observe(id, exp, err, o.Now())
		}
		if o.Attestations != nil {
			pullOnce(ctx, dir, *o.Attestations, o.Now, log)
		}
		if o.Done != nil {
			o.Done(res, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// pullOnce opens dir, pulls its sign-off statements and logs the outcome.
func pullOnce(ctx context.Context, dir string, o PullOptions, now func() time.Time, log *slog.Logger) {
	r, err := open(dir, now)
	if err != nil {
		log.Error("attestations pull failed", "dir", dir, "err", err)
		return
	}
	defer r.Close()
	got, err := r.PullAttestations(ctx, o)
	if errors.Is(err, ErrPullNotConfigured) {
		log.Warn("attestations not pulled: the repository configures no ledger or tlog-policy", "dir", dir, "err", err)
		return
	}
	if err != nil {
		log.Error("attestations pull failed", "dir", dir, "err", err)
		return
	}
	for _, p := range got {
		if p.Written || p.Dropped > 0 {
			log.Info("attestations pulled", "sha256", p.SHA256, "statements", p.Attestations, "dropped", p.Dropped, "written", p.Written)
		}
	}
}

// refreshOnce opens dir, refreshes it and closes it.
func refreshOnce(dir string, o RefreshOptions, now func() time.Time) (*Refreshed, string, error) {
	r, err := open(dir, now)
	if err != nil {
		return nil, "", err
	}
	defer r.Close()
	res, err := r.Refresh(o)
	if err != nil {
		res = &Refreshed{Expires: r.Expiries()} // the alert still sees what is about to lapse
	}
	return res, r.Config.Repository, err
}
