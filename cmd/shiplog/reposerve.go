package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/shiplog/shiplog/repo"
	"github.com/spf13/cobra"
)

func repoServeCmd() *cobra.Command {
	var dir string
	var listen string
	var lf *logFlags
	c := &cobra.Command{
		Use:   "serve --data-dir DIR",
		Short: "Serve the repository's metadata/ and targets/ over HTTP (for testing)",
		Long: `Serve DIR/metadata/ and DIR/targets/ as a static web server would, with the cache
headers a CDN needs (unversioned metadata revalidated, everything else immutable), and
nothing else of DIR. For production, use nginx or a CDN (deploy/nginx/shiplog.conf).`,
		Example: `  shiplog repo serve -d repo --listen 127.0.0.1:8000`,
		Args:    dirArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			args = takeDir(cmd, &dir, args)
			logger, err := lf.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "serving %s at http://%s\n", dir, l.Addr())
			srv := &http.Server{Handler: repo.Handler(dir), ReadHeaderTimeout: 10 * time.Second,
				WriteTimeout: 10 * time.Minute, IdleTimeout: time.Minute,
				ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
			go func() {
				<-cmd.Context().Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(ctx)
			}()
			if err := srv.Serve(l); err != http.ErrServerClosed {
				return err
			}
			return nil
		},
	}
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8000", "address to listen on")
	lf = addLogFlags(c, "info")
	dataDirFlag(c, &dir, "", "the repository directory (required)")
	return c
}
