package main

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/shiplog/shiplog/internal/capped"

	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/internal/durable"
	"github.com/shiplog/shiplog/internal/keyref"
	"github.com/shiplog/shiplog/repo/keys"
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
	var out, p11, typ, pubOut string
	var witness, asJSON bool
	c := &cobra.Command{
		Use:   "generate NAME",
		Short: "Generate an Ed25519 signed-note key pair, or a key inside a PKCS #11 token",
		Long: `Generate an Ed25519 signed-note key pair named NAME (for a log, by convention its
origin). The private key (skey) is written to --out with mode 0600 and must be kept
secret; the verifier key (vkey) is printed. With --witness, the cosignature/v1 vkey
(type 0x04) that witness policies and litewitness use is printed too.

With --pkcs11 URI, the key is created inside the token the pkcs11: URI (RFC 7512)
names, labelled with its object= attribute, sensitive and not extractable: nothing
secret leaves the token. Ed25519 by default (the token needs the PKCS #11 3.0
CKM_EC_EDWARDS_KEY_PAIR_GEN mechanism), --type ecdsa-p256 otherwise. Printed: the
note vkey for NAME (a log key; with --witness also the cosignature/v1 vkey, Ed25519
only), and the TUF key ID and key object, so the same key can serve as a TUF role
key (give the URI wherever a key file is accepted: --key, --root-key, ...). --out
then writes a KEYREF line usable as a ledger's log.skey or a witness's witness.skey,
--pub the TUF public key file.`,
		Example: `  shiplog key generate example.com/log --out log.skey
  shiplog key generate witness.example --witness --out witness.skey
  shiplog key generate root --pkcs11 'pkcs11:token=vendor;object=root?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=pin.txt' --pub root.pub`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if p11 != "" {
				return generateInToken(cmd, args[0], p11, typ, out, pubOut, witness, asJSON)
			}
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
	c.Flags().StringVar(&out, "out", "", "file to write the private key (with --pkcs11: the key reference) to (created, never overwritten)")
	c.Flags().StringVar(&p11, "pkcs11", "", "create the key inside the PKCS #11 token this pkcs11: URI names (object= labels it)")
	c.Flags().StringVar(&typ, "type", "ed25519", "with --pkcs11: ed25519 or ecdsa-p256")
	c.Flags().StringVar(&pubOut, "pub", "", "with --pkcs11: also write the TUF public key file here")
	c.Flags().BoolVar(&witness, "witness", false, "also print the cosignature/v1 vkey")
	addOutputFlags(c, &asJSON)
	return c
}

func keyShowCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "show SKEY-FILE",
		Short:   "Print the verifier keys of a private key file (or a KEYREF file naming a token or KMS key)",
		Example: `  shiplog key show log.skey`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			skey, err := readKeyFile(args[0])
			if err != nil {
				return err
			}
			if !keyref.IsNoteKeyRef(skey) {
				vkey, err := notekey.VerifierKey(skey)
				if err != nil {
					return err
				}
				cosig, err := notekey.CosignatureVKey(vkey)
				if err != nil {
					return err
				}
				return printKeys(cmd, asJSON, vkey, cosig)
			}
			_, vkey, err := keyref.OpenLogSigner(cmd.Context(), skey)
			if err != nil {
				return err
			}
			cosig := ""
			if _, _, c, err := keyref.OpenWitnessSigner(cmd.Context(), skey); err == nil {
				cosig = c // only Ed25519 keys can cosign
			}
			return printKeys(cmd, asJSON, vkey, cosig)
		},
	}
	addOutputFlags(c, &asJSON)
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

// generateInToken creates a key inside a PKCS #11 token and prints its
// public keys; nothing secret leaves the token.
func generateInToken(cmd *cobra.Command, name, uri, typ, out, pubOut string, witness, asJSON bool) error {
	if typ != "ed25519" && typ != "ecdsa-p256" {
		return fmt.Errorf("--type %q: want ed25519 or ecdsa-p256", typ)
	}
	if witness && typ != "ed25519" {
		return witnessKeyHint(notekey.ErrCosignatureNeedsEd25519)
	}
	if !strings.HasPrefix(uri, "pkcs11:") {
		return errors.New("--pkcs11 wants a pkcs11: URI")
	}
	if _, err := keyref.GeneratePKCS11(uri, typ == "ecdsa-p256"); err != nil {
		return err
	}
	ref := keyref.FormatNoteKeyRef(name, uri)
	_, vkey, err := keyref.OpenLogSigner(cmd.Context(), ref)
	if err != nil {
		return err
	}
	cosig := ""
	if witness {
		if _, _, cosig, err = keyref.OpenWitnessSigner(cmd.Context(), ref); err != nil {
			return err
		}
	}
	k, id, err := keys.LoadPublic(uri)
	if err != nil {
		return err
	}
	if out != "" {
		if err := writeSecretFile(out, []byte(ref)); err != nil {
			return err
		}
	}
	if pubOut != "" {
		b, err := json.Marshal(k)
		if err != nil {
			return err
		}
		if err := durable.CreateFile(pubOut, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("couldn't write the public key: %w", err)
		}
	}
	w := cmd.OutOrStdout()
	if asJSON {
		return json.NewEncoder(w).Encode(map[string]any{"vkey": vkey, "cosignature_vkey": cosig, "keyid": id, "key": k})
	}
	if err := printKeys(cmd, false, vkey, cosig); err != nil {
		return err
	}
	return printKey(w, false, id, k, pubOut)
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

// witnessKeyHint says what to do about a witness key that is not Ed25519.
func witnessKeyHint(err error) error {
	if errors.Is(err, notekey.ErrCosignatureNeedsEd25519) {
		return fmt.Errorf("%w: use a key file (leave --key out), or an Ed25519 key in a token with the PKCS #11 3.0 EdDSA mechanisms (`shiplog key generate NAME --witness --pkcs11 URI`); a cloud KMS key cannot be a witness key", err)
	}
	return err
}
