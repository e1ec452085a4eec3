package main

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/shiplog/shiplog/internal/capped"

	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/internal/durable"
	"github.com/spf13/cobra"
)

func init() { addCommand(keyCmd) }

func keyCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "key",
		Short: "Generate and inspect signed-note keys for logs and witnesses",
	}
	c.AddCommand(keyGenerateCmd(), keyShowCmd())
	return c
}

func keyGenerateCmd() *cobra.Command {
	var out string
	var witness, asJSON bool
	c := &cobra.Command{
		Use:   "generate NAME",
		Short: "Generate an Ed25519 signed-note key pair",
		Long: `Generate an Ed25519 signed-note key pair named NAME (for a log, by convention its
origin). The private key (skey) is written to --out with mode 0600 and must be kept
secret; the verifier key (vkey) is printed. With --witness, the cosignature/v1 vkey
(type 0x04) that witness policies and litewitness use is printed too.`,
		Example: `  shiplog key generate example.com/log --out log.skey
  shiplog key generate witness.example --witness --out witness.skey`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("--out is required: the file to write the private key to")
			}
			skey, vkey, err := notekey.GenerateLog(rand.Reader, args[0])
			if err != nil {
				return err
			}
			cosig := ""
			if witness {
				if cosig, err = notekey.CosignatureVKey(vkey); err != nil {
					return err
				}
			}
			if err := writeSecretFile(out, []byte(skey+"\n")); err != nil {
				return err
			}
			return printKeys(cmd, asJSON, vkey, cosig)
		},
	}
	c.Flags().StringVar(&out, "out", "", "file to write the private key to (created, never overwritten)")
	c.Flags().BoolVar(&witness, "witness", false, "also print the cosignature/v1 vkey")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func keyShowCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "show SKEY-FILE",
		Short:   "Print the verifier keys of a private key file",
		Example: `  shiplog key show log.skey`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			skey, err := readKeyFile(args[0])
			if err != nil {
				return err
			}
			vkey, err := notekey.VerifierKey(skey)
			if err != nil {
				return err
			}
			cosig, err := notekey.CosignatureVKey(vkey)
			if err != nil {
				return err
			}
			return printKeys(cmd, asJSON, vkey, cosig)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func printKeys(cmd *cobra.Command, asJSON bool, vkey, cosig string) error {
	w := cmd.OutOrStdout()
	if asJSON {
		return json.NewEncoder(w).Encode(map[string]string{"vkey": vkey, "cosignature_vkey": cosig})
	}
	fmt.Fprintln(w, "vkey:", vkey)
	if cosig != "" {
		fmt.Fprintln(w, "cosignature/v1 vkey:", cosig)
	}
	return nil
}

// readKeyFile reads a one-line key file of at most 4 KiB.
func readKeyFile(path string) (string, error) {
	b, err := readFileLimited(path, 4096)
	if err != nil {
		return "", err
	}
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return string(b), nil
}

// readFileLimited reads a whole file, refusing one larger than max bytes.
func readFileLimited(path string, max int64) ([]byte, error) {
	return capped.ReadFile(path, max)
}

// writeSecretFile creates path with mode 0600 durably; it never overwrites.
func writeSecretFile(path string, data []byte) error {
	if err := durable.CreateFile(path, data, 0o600); err != nil {
		return fmt.Errorf("couldn't create key file: %w", err)
	}
	return nil
}
