package keyref

import (
	"bytes"
	"testing"
)

func TestParsePKCS11URI(t *testing.T) {
	good := "pkcs11:token=my%20token;object=root;id=%01%02;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/pin"
	u, err := ParsePKCS11URI(good)
	if err != nil {
		t.Fatal(err)
	}
	if u.Token != "my token" || u.Object != "root" || !bytes.Equal(u.ID, []byte{1, 2}) || u.ModulePath != "/usr/lib/softhsm/libsofthsm2.so" || u.PINSource != "/etc/pin" {
		t.Errorf("parsed %+v", u)
	}
	for name, s := range map[string]string{
		"not pkcs11":        "pkcs12:token=a;object=b?module-path=/m",
		"no module":         "pkcs11:token=a;object=b",
		"no token":          "pkcs11:object=b?module-path=/m",
		"no key":            "pkcs11:token=a?module-path=/m",
		"duplicate":         "pkcs11:token=a;token=b;object=b?module-path=/m",
		"unknown attribute": "pkcs11:token=a;object=b;colour=red?module-path=/m",
		"public type":       "pkcs11:token=a;object=b;type=public?module-path=/m",
		"pin in path":       "pkcs11:token=a;object=b;pin-value=1?module-path=/m",
		"token in query":    "pkcs11:object=b?module-path=/m&token=a",
		"two pins":          "pkcs11:token=a;object=b?module-path=/m&pin-value=1&pin-source=/p",
		"bad escape":        "pkcs11:token=a%zz;object=b?module-path=/m",
		"slot not decimal":  "pkcs11:slot-id=01;object=b?module-path=/m",
		"no value":          "pkcs11:token;object=b?module-path=/m",
	} {
		if _, err := ParsePKCS11URI(s); err == nil {
			t.Errorf("%s: %q accepted", name, s)
		}
	}
}

func TestRedacted(t *testing.T) {
	for in, want := range map[string]string{
		"pkcs11:token=a;object=b?module-path=/m&pin-value=1234":      "pkcs11:token=a;object=b?module-path=/m&pin-value=REDACTED",
		"pkcs11:token=a;object=b?pin-value=1234&module-path=/m":      "pkcs11:token=a;object=b?pin-value=REDACTED&module-path=/m",
		"pkcs11:token=a;object=b?module-path=/m&pin-source=/etc/pin": "pkcs11:token=a;object=b?module-path=/m&pin-source=/etc/pin",
	} {
		if got := Redacted(in); got != want {
			t.Errorf("Redacted(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParsePKCS11URI(f *testing.F) {
	f.Add("pkcs11:token=a;object=b?module-path=/m&pin-value=1")
	f.Add("pkcs11:serial=1;id=%01?module-path=/m")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParsePKCS11URI(s)
		if err != nil {
			return
		}
		if u.ModulePath == "" || (u.Object == "" && len(u.ID) == 0) {
			t.Fatalf("accepted an incomplete URI %q", s)
		}
	})
}
