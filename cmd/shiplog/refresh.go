package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/shiplog/shiplog/repo"
	"github.com/spf13/cobra"
)

func repoRefreshCmd() *cobra.Command {
	var dir, passFile, metricsListen, metricsFile string
	var tsFiles, snapFiles []string
	var within, every time.Duration
	var asJSON, pull, skipped bool
	var logs *logFlags
	c := &cobra.Command{
		Use:   "refresh --data-dir DIR",
		Short: "Re-sign timestamp (and snapshot when due) before they expire; never targets or root",
		Long: `Keep the exposed repository fresh with its online keys: when the timestamp has
less than --within of its life left (default: half its configured lifetime) sign a
new one; when the snapshot does, sign a new snapshot listing exactly the role
versions it already lists (needs --snapshot-key) and a timestamp naming it. Root
and targets roles are never signed and nothing new is exposed: an expired root or
targets role makes refresh fail (renew those with their offline keys).

Keys are files, pkcs11: URIs or KMS URIs (awskms://, gcpkms://, azurekms://,
hashivault://). Run it from a timer (deploy/systemd/shiplog-repo-refresh.timer),
or long-running with --interval. Metrics (shiplog_repo_metadata_expires_timestamp_seconds
per role, refresh failures, last success) are served on --listen or written
for node_exporter's textfile collector to --metrics-file (a run carries the
last success and failure count of the file it replaces over). --pull-attestations also
copies the sign-off statements logged about the current targets beside the metadata
after each refresh (as ` + "`shiplog repo attestations pull`" + ` does), so that the
statements rebuilders and reviewers log after a release reach devices without a
separate job; a repository whose shiplog-repo.json sets no "ledger" or no
"policy" is refreshed and the pull skipped, said on stderr (exit 0).`,
		Example: `  shiplog repo refresh -d /srv/tuf/repo --timestamp-key /etc/shiplog/timestamp.key --snapshot-key /etc/shiplog/snapshot.key
  shiplog repo refresh -d /srv/tuf/repo --interval 1h --listen 127.0.0.1:9464 \
    --timestamp-key 'pkcs11:token=online;object=timestamp?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/etc/shiplog/pin'`,
		Args: dirArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			takeDir(cmd, &dir, args)
			o := repo.RefreshOptions{Within: within}
			var err error
			if o.TimestampKeys, err = loadKeys(tsFiles, passFile); err != nil {
				return err
			}
			if len(snapFiles) > 0 {
				if o.SnapshotKeys, err = loadKeys(snapFiles, passFile); err != nil {
					return err
				}
			}
			reg := prometheus.NewRegistry()
			m := repo.NewFreshnessMetrics(reg)
			if metricsListen != "" {
				if every <= 0 {
					return errors.New("--listen needs --interval (a one-shot refresh serves nothing); use --metrics-file")
				}
				ln, err := net.Listen("tcp", metricsListen)
				if err != nil {
					return err
				}
				srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
				go srv.Serve(ln)
				defer srv.Close()
			}
			if every > 0 {
				log, err := logs.logger(cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				lo := repo.RefreshLoopOptions{RefreshOptions: o, Every: every, Metrics: m, Logger: log,
					Done: func(*repo.Refreshed, error) { writeMetricsFile(metricsFile, reg, log) }}
				if pull {
					lo.Attestations = &repo.PullOptions{}
				}
				err = repo.RefreshLoop(cmd.Context(), dir, lo)
				if errors.Is(err, context.Canceled) {
					return nil // stopped (SIGTERM from systemd, Ctrl-C): a clean exit
				}
				return err
			}
			var res *repo.Refreshed
			var pulled []repo.PulledEvidence
			var id string
			err = withRepo(dir, func(r *repo.Repo) error {
				id = r.Config.Repository
				if metricsFile != "" { // a timer's runs: carry the last success and failures over
					if prev, rerr := os.ReadFile(metricsFile); rerr == nil {
						if rerr := m.Resume(id, prev); rerr != nil {
							fmt.Fprintf(cmd.ErrOrStderr(), "metrics file %s not carried over: %v\n", metricsFile, rerr)
						}
					}
				}
				res, err = r.Refresh(o)
				if err != nil {
					m.Observe(id, r.Expiries(), err, time.Now())
					return err
				}
				m.Observe(id, res.Expires, nil, time.Now())
				if pull {
					pulled, err = r.PullAttestations(cmd.Context(), repo.PullOptions{})
					if errors.Is(err, repo.ErrPullNotConfigured) { // the unit passes the flag to every vendor
						fmt.Fprintf(cmd.ErrOrStderr(), "attestations not pulled: %v\n", err)
						pulled, skipped, err = nil, true, nil
					}
					if err != nil {
						return fmt.Errorf("refreshed, but couldn't pull the attestations: %w", err)
					}
				}
				return nil
			})
			if metricsFile != "" && id != "" {
				if werr := writeMetricsFile(metricsFile, reg, nil); werr != nil && err == nil {
					err = werr
				}
			}
			if err != nil {
				return err
			}
			if asJSON {
				if pull {
					return printJSON(cmd.OutOrStdout(), struct {
						*repo.Refreshed
						Attestations []repo.PulledEvidence `json:"attestations"`
					}{res, pulled})
				}
				return printJSON(cmd.OutOrStdout(), res)
			}
			state := "nothing due"
			switch {
			case res.SnapshotSigned:
				state = fmt.Sprintf("signed snapshot v%d and timestamp v%d", res.Snapshot, res.Timestamp)
			case res.TimestampSigned:
				state = fmt.Sprintf("signed timestamp v%d (snapshot v%d)", res.Timestamp, res.Snapshot)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s; timestamp expires %s, snapshot %s\n", state,
				res.Expires["timestamp"].Format(time.RFC3339), res.Expires["snapshot"].Format(time.RFC3339))
			if pull && !skipped {
				written := 0
				for _, p := range pulled {
					if p.Written {
						written++
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "attestations: %d target digest(s) checked, %d evidence file(s) updated\n", len(pulled), written)
			}
			return nil
		},
	}
	c.Flags().StringArrayVar(&tsFiles, "timestamp-key", nil, "timestamp key: file, pkcs11: URI or KMS URI (required; repeat up to the role's threshold)")
	c.Flags().StringArrayVar(&snapFiles, "snapshot-key", nil, "snapshot key, needed when the snapshot is due (repeatable)")
	c.Flags().StringVar(&passFile, "passphrase-file", "", "file whose first line is the key files' passphrase")
	c.Flags().DurationVar(&within, "within", 0, "re-sign a role with less than this validity left (default: half its lifetime)")
	c.Flags().DurationVar(&every, "interval", 0, "keep running, refreshing at this interval")
	c.Flags().StringVar(&metricsListen, "listen", "", "serve Prometheus metrics on this address (with --interval)")
	c.Flags().BoolVar(&pull, "pull-attestations", false, "also pull the sign-off statements logged about the current targets (repo attestations pull) after each refresh")
	c.Flags().StringVar(&metricsFile, "metrics-file", "", "write Prometheus metrics to this file after each refresh (node_exporter textfile collector)")
	addOutputFlags(c, &asJSON)
	logs = addLogFlags(c, "info")
	c.MarkFlagRequired("timestamp-key")
	dataDirFlag(c, &dir, "", "the repository directory (required)")
	return c
}

// writeMetricsFile writes reg's metrics to path atomically, if path is set.
func writeMetricsFile(path string, reg *prometheus.Registry, log *slog.Logger) error {
	if path == "" {
		return nil
	}
	err := prometheus.WriteToTextfile(path, reg)
	if err != nil && log != nil {
		log.Error("couldn't write metrics file", "file", path, "err", err)
	}
	return err
}
