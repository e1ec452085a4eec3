package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/shiplog/shiplog/witness"
	"github.com/spf13/cobra"
)

func init() { addCommand(witnessCmd) }

func witnessCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "witness",
		Short: "Run a C2SP tlog-witness that cosigns logs' checkpoints and never cosigns a fork",
		Example: `  shiplog witness init -d /var/lib/shiplog-witness --name witness.example.org
  shiplog witness add-log -d /var/lib/shiplog-witness example.com/log+3fa45b1e+AcWvd2RX...
  shiplog witness serve -d /var/lib/shiplog-witness --listen 127.0.0.1:7380`,
	}
	c.AddCommand(witnessInitCmd(), witnessServeCmd(), witnessAddLogCmd())
	return c
}

func witnessInitCmd() *cobra.Command {
	var dir, name, keyRef string
	var asJSON bool
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a witness directory: key, empty log list, state",
		Long: `Create a witness directory holding a new Ed25519 witness key (witness.skey, mode
0600), an empty log list (logs, in the witness network's logs/v0 format) and the
durable state (state.db). Prints the witness's vkey and its cosignature/v1 vkey:
publish the latter for logs and verifiers to put in their policies. With --key, the
witness key is an Ed25519 key held in a PKCS #11 token or a KMS, and witness.skey
holds only the reference (cosignature/v1 is Ed25519-only, so ECDSA keys are refused).`,
		Example: `  shiplog witness init -d /var/lib/shiplog-witness --name witness.example.org
  shiplog witness init -d w1 --name w1.example \
    --key 'pkcs11:token=witness;object=w1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/etc/shiplog/pin'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" {
				return fmt.Errorf("--name is required: the witness's name, e.g. witness.example.org")
			}
			vkey, cosig, err := witness.InitKeyRef(cmd.Context(), dir, name, keyRef)
			if err != nil {
				return witnessKeyHint(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]string{"vkey": vkey, "cosignature_vkey": cosig})
			}
			fmt.Fprintln(cmd.OutOrStdout(), "vkey:", vkey)
			fmt.Fprintln(cmd.OutOrStdout(), "cosignature/v1 vkey:", cosig)
			return nil
		},
	}
	dataDirFlag(c, &dir, ".", "the witness's data directory", "dir")
	c.Flags().StringVar(&name, "name", "", "witness name (URL-like, appears in cosignature lines)")
	c.Flags().StringVar(&keyRef, "key", "", "use this Ed25519 token or KMS key (pkcs11: or KMS URI) instead of generating a key file")
	addOutputFlags(c, &asJSON)
	return c
}

func witnessAddLogCmd() *cobra.Command {
	var dir, origin string
	var qpd uint64
	c := &cobra.Command{
		Use:   "add-log VKEY",
		Short: "Add a log (its verifier key) to the witness's log list",
		Long: `Append a log to the log list of a witness directory. A running witness reloads
the list within 5 seconds (or at once on SIGHUP); no restart is needed. To remove a
log, delete its entry from the logs file: its state is kept, so adding it back later
resumes from the last checkpoint cosigned and can never cosign a split view.`,
		Example: `  shiplog witness add-log -d /var/lib/shiplog-witness example.com/log+3fa45b1e+AcWvd2RX... --qpd 1440`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return witness.AddLog(dir, args[0], origin, qpd)
		},
	}
	dataDirFlag(c, &dir, ".", "the witness's data directory", "dir")
	c.Flags().StringVar(&origin, "origin", "", "checkpoint origin, if not the key's name")
	c.Flags().Uint64Var(&qpd, "qpd", 0, "add-checkpoint requests per day allowed to the log (0: unlimited)")
	return c
}

func witnessServeCmd() *cobra.Command {
	var o witness.ServeOptions
	var lf *logFlags
	c := &cobra.Command{
		Use:   "serve",
		Short: "Serve the tlog-witness API (add-checkpoint, monitoring, metrics)",
		Long: `Serve POST <prefix>/add-checkpoint (c2sp.org/tlog-witness), the monitoring endpoints
GET <prefix>/<hex sha256(origin)>/checkpoint and .../misbehaviour, GET <prefix>/misbehaviour,
and /healthz, /readyz, /metrics. The log list is reloaded when its file changes and on
SIGHUP. Logs go to stderr (--log-format text or json).`,
		Example: `  shiplog witness serve -d /var/lib/shiplog-witness --listen 127.0.0.1:7380`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			logger, err := lf.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			o.Logger = logger
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			reload := make(chan struct{}, 1)
			go func() {
				for range hup {
					select {
					case reload <- struct{}{}:
					default:
					}
				}
			}()
			o.Reload = reload
			return witness.Serve(cmd.Context(), o)
		},
	}
	dataDirFlag(c, &o.Dir, ".", "the witness's data directory, made by 'shiplog witness init'", "dir")
	c.Flags().StringVar(&o.Listen, "listen", "127.0.0.1:7380", "address to listen on (port 0: any free port, logged)")
	c.Flags().StringVar(&o.Prefix, "prefix", "", "URL path prefix of the witness API, e.g. /witness")
	c.Flags().DurationVar(&o.ReloadInterval, "reload-interval", 5*time.Second, "how often to check the log list file for changes")
	lf = addLogFlags(c, "info")
	return c
}
