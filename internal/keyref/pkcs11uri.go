package keyref

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// MaxURI bounds the length of a key reference.
const MaxURI = 4096

var errPKCS11URI = errors.New("malformed pkcs11: URI (RFC 7512)")

// PKCS11URI is a parsed pkcs11: URI (RFC 7512) naming one private key on one
// token. Only the attributes shiplog uses are accepted; any other, a
// duplicate, or a type other than "private" is refused.
type PKCS11URI struct {
	// Token selection (path attributes "token", "manufacturer", "serial",
	// "model", "slot-id"): every one given must match; at least one of
	// token, serial or slot-id is required.
	Token, Manufacturer, Serial, Model string
	SlotID                             *uint
	// Object is the key's CKA_LABEL ("object") and ID its CKA_ID ("id");
	// at least one is required.
	Object string
	ID     []byte
	// ModulePath is the PKCS #11 library ("module-path" query attribute,
	// required), e.g. /usr/lib/softhsm/libsofthsm2.so.
	ModulePath string
	// PINValue ("pin-value") or PINSource ("pin-source": a file whose first
	// line is the PIN, as a path or file: URI) log in as the normal user;
	// with neither, the token is used without logging in.
	PINValue, PINSource string
}

// ParsePKCS11URI parses s strictly (RFC 7512 §2.3; percent-encoded values).
func ParsePKCS11URI(s string) (*PKCS11URI, error) {
	if len(s) > MaxURI || !strings.HasPrefix(s, "pkcs11:") {
		return nil, errPKCS11URI
	}
	path, query, _ := strings.Cut(strings.TrimPrefix(s, "pkcs11:"), "?")
	u := &PKCS11URI{}
	seen := map[string]bool{}
	set := func(attr, raw string, query bool) error {
		if seen[attr] {
			return fmt.Errorf("%w: attribute %q given twice", errPKCS11URI, attr)
		}
		seen[attr] = true
		v, err := url.PathUnescape(raw)
		if err != nil {
			return errPKCS11URI
		}
		switch attr {
		case "token":
			u.Token = v
		case "manufacturer":
			u.Manufacturer = v
		case "serial":
			u.Serial = v
		case "model":
			u.Model = v
		case "slot-id":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || strconv.FormatUint(n, 10) != v {
				return errPKCS11URI
			}
			id := uint(n)
			u.SlotID = &id
		case "object":
			u.Object = v
		case "id":
			u.ID = []byte(v)
		case "type":
			if v != "private" {
				return fmt.Errorf("%w: type=%q: a signing key is type=private", errPKCS11URI, v)
			}
		case "module-path":
			u.ModulePath = v
		case "pin-value":
			u.PINValue = v
		case "pin-source":
			u.PINSource = strings.TrimPrefix(v, "file:")
		default:
			where := "path"
			if query {
				where = "query"
			}
			return fmt.Errorf("%w: unsupported %s attribute %q", errPKCS11URI, where, attr)
		}
		if query != (attr == "module-path" || attr == "pin-value" || attr == "pin-source") {
			return fmt.Errorf("%w: attribute %q in the wrong part of the URI", errPKCS11URI, attr)
		}
		return nil
	}
	for _, part := range []struct {
		s     string
		sep   string
		query bool
	}{{path, ";", false}, {query, "&", true}} {
		if part.s == "" {
			continue
		}
		for _, kv := range strings.Split(part.s, part.sep) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, errPKCS11URI
			}
			if err := set(k, v, part.query); err != nil {
				return nil, err
			}
		}
	}
	switch {
	case u.ModulePath == "":
		return nil, fmt.Errorf("%w: module-path=<PKCS #11 library> is required", errPKCS11URI)
	case u.Token == "" && u.Serial == "" && u.SlotID == nil:
		return nil, fmt.Errorf("%w: name the token with token=, serial= or slot-id=", errPKCS11URI)
	case u.Object == "" && len(u.ID) == 0:
		return nil, fmt.Errorf("%w: name the key with object= or id=", errPKCS11URI)
	case u.PINValue != "" && u.PINSource != "":
		return nil, fmt.Errorf("%w: give pin-value or pin-source, not both", errPKCS11URI)
	}
	return u, nil
}

// Redacted returns the URI as given to ParsePKCS11URI with a pin-value
// replaced, for messages and logs.
func Redacted(ref string) string {
	before, after, ok := strings.Cut(ref, "pin-value=")
	if !ok {
		return ref
	}
	_, rest, _ := strings.Cut(after, "&")
	if rest != "" {
		rest = "&" + rest
	}
	return before + "pin-value=REDACTED" + rest
}
