package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/shiplog/shiplog/internal/durable"
	"github.com/shiplog/shiplog/repo"
	"github.com/shiplog/shiplog/repo/keys"
	"github.com/spf13/cobra"
)

// The signing ceremony of `shiplog repo sign` (docs/vendor.md, "A root-key
// ceremony"): --export-request, --request and --import.

func exportRequest(cmd *cobra.Command, r *repo.Repo, file string, roles []string) error {
	req, err := r.ExportRequest(roles)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(req, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.CreateFile(file, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("couldn't write the request: %w", err)
	}
	w := cmd.OutOrStdout()
	for _, rr := range req.Roles {
		fmt.Fprintf(w, "%s v%d  sha256 %s\n", rr.Role, rr.Version, rr.SHA256)
		for _, c := range rr.Changes {
			fmt.Fprintf(w, "  %s\n", c)
		}
		for _, a := range rr.Authorities {
			fmt.Fprintf(w, "  needs %d of %d keys of %s\n", a.Threshold, len(a.KeyIDs), a.Name)
		}
	}
	fmt.Fprintf(w, "request written to %s; each keyholder runs `shiplog repo sign --request %s --key KEY --out NAME.sig`\n", file, file)
	return nil
}

func signRequest(cmd *cobra.Command, file, keyFile, passFile, out string, asJSON bool) error {
	if keyFile == "" || out == "" {
		return errors.New("--request needs --key and --out")
	}
	b, err := keys.ReadFile(file, repo.MaxRequestSize)
	if err != nil {
		return err
	}
	req, err := repo.ParseSignRequest(b)
	if err != nil {
		return err
	}
	k, err := loadKey(keyFile, passFile)
	if err != nil {
		return err
	}
	sigs, seen, err := repo.SignRequestWith(req, k)
	if err != nil {
		return err
	}
	sb, err := json.MarshalIndent(sigs, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.CreateFile(out, append(sb, '\n'), 0o644); err != nil {
		return fmt.Errorf("couldn't write the signatures: %w", err)
	}
	if asJSON {
		return printJSON(cmd.OutOrStdout(), sigs)
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "repository %s; you signed, with key %.16s:\n", req.Repository, k.ID)
	for _, l := range seen {
		fmt.Fprintf(w, "  %s\n", l)
	}
	fmt.Fprintf(w, "signatures written to %s: return it to the repository's machine\n", out)
	return nil
}
