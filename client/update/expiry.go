package update

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// ExpiredError means a role's metadata was past its expiry at the
// reference time (TUF §5.3.10, §5.4.4, §5.5.6, §5.6.6). It names the role,
// its version and expiry, how long ago that was by the device's clock, and
// who must act: the vendor (a new version of the role), or, when the
// vendor's metadata is current, whoever sets the device's clock. It matches
// go-tuf's *metadata.ErrExpiredMetadata (and so *metadata.ErrRepository)
// with errors.Is.
type ExpiredError struct {
	Role    string
	Version int64
	Expires time.Time
	// Now is the reference time of the check (the device's clock).
	Now time.Time
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("%s v%d expired at %s, %s ago by this device's clock (now %s): %s; if the vendor's metadata is current, the device's clock is wrong",
		e.Role, e.Version, e.Expires.UTC().Format(time.RFC3339), Ago(e.Now.Sub(e.Expires)), e.Now.UTC().Format(time.RFC3339), e.Remedy())
}

// Remedy says who must act and how.
func (e *ExpiredError) Remedy() string {
	switch e.Role {
	case metadata.TIMESTAMP:
		return "the vendor must refresh it with `shiplog repo refresh` (run hourly from a timer, it re-signs the timestamp well before it expires)"
	case metadata.SNAPSHOT:
		return "the vendor must write a new one with `shiplog repo refresh --snapshot-key … --timestamp-key …` (or `shiplog publish` with both keys)"
	case metadata.ROOT:
		return "the vendor must stage a new root with `shiplog repo renew --role root`, sign it with the root keys and publish it"
	}
	return fmt.Sprintf("the vendor must stage a new version with `shiplog repo renew --role %s`, sign it and publish it", e.Role)
}

// Is makes errors.Is(err, &metadata.ErrExpiredMetadata{}) (and
// ErrRepository) hold, as for go-tuf's own error.
func (e *ExpiredError) Is(target error) bool {
	return errors.Is(&metadata.ErrExpiredMetadata{}, target)
}

// Ago formats a duration as a person reads it: "3d4h", "5h12m", "42s".
func Ago(d time.Duration) string {
	d = d.Round(time.Second)
	if d < 0 {
		return "-" + Ago(-d)
	}
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, d%time.Hour/time.Minute)
	}
	return d.String()
}

// explainExpiry turns go-tuf's expiry error into an *ExpiredError naming
// the role: its message names the role ("final root.json is expired",
// "timestamp.json is expired", "new <role> is expired"); data is the file
// being loaded (its signatures were checked before its expiry). Other
// errors are returned unchanged.
func (s *Session) explainExpiry(err error, data []byte) error {
	var exp *metadata.ErrExpiredMetadata
	if err == nil || !errors.As(err, &exp) {
		return err
	}
	e := &ExpiredError{Now: s.tm.RefTime}
	switch {
	case strings.Contains(exp.Msg, "root.json"):
		e.Role, e.Version, e.Expires = metadata.ROOT, s.tm.Root.Signed.Version, s.tm.Root.Signed.Expires
	case strings.Contains(exp.Msg, "timestamp.json") && s.tm.Timestamp != nil:
		e.Role, e.Version, e.Expires = metadata.TIMESTAMP, s.tm.Timestamp.Signed.Version, s.tm.Timestamp.Signed.Expires
	case strings.Contains(exp.Msg, "snapshot.json") && s.tm.Snapshot != nil:
		e.Role, e.Version, e.Expires = metadata.SNAPSHOT, s.tm.Snapshot.Signed.Version, s.tm.Snapshot.Signed.Expires
	default:
		var m struct {
			Signed struct {
				Version int64     `json:"version"`
				Expires time.Time `json:"expires"`
			} `json:"signed"`
		}
		role, ok := strings.CutPrefix(exp.Msg, "new ")
		role, ok2 := strings.CutSuffix(role, " is expired")
		if !ok || !ok2 || json.Unmarshal(data, &m) != nil {
			return err
		}
		e.Role, e.Version, e.Expires = role, m.Signed.Version, m.Signed.Expires
	}
	return e
}
