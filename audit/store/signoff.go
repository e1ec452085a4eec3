package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/shiplog/shiplog/audit/attestation"
)

// The sign-off state (package attestation): every logged statement, by the
// target digest it is about and by the release it names, and the vendor's
// releases still waiting for a rebuilder (signoff-missing).
var (
	bucketSignoff        = []byte("signoff")        // repo 0 subject 0 index (8 bytes BE) -> Statement JSON
	bucketSignoffRelease = []byte("signoffrelease") // repo 0 role 0 version 0 index -> Statement JSON
	bucketSignoffPending = []byte("signoffpending") // index (8 bytes BE) -> Pending JSON
)

func init() {
	allBuckets = append(allBuckets, bucketSignoff, bucketSignoffRelease, bucketSignoffPending)
}

func key(parts ...string) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
		b = append(b, 0)
	}
	return b
}

// PutStatement stores a logged statement.
func (t *Tx) PutStatement(s *attestation.Statement) error {
	v, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := t.tx.Bucket(bucketSignoff).Put(append(key(s.Repo, s.Subject), u64(s.Index)...), v); err != nil {
		return err
	}
	k := append(key(s.Repo, s.TargetsRole, strconv.FormatUint(s.TargetsVersion, 10)), u64(s.Index)...)
	return t.tx.Bucket(bucketSignoffRelease).Put(k, v)
}

// Statements returns the statements logged about repository repo's target
// digest subject (lowercase hex), in log order.
func (t *Tx) Statements(repo, subject string) ([]attestation.Statement, error) {
	return t.scanStatements(bucketSignoff, key(repo, subject))
}

// ReleaseStatements returns the statements that name the targets role
// version of repository repo as the one they checked, in log order.
func (t *Tx) ReleaseStatements(repo, role string, version uint64) ([]attestation.Statement, error) {
	return t.scanStatements(bucketSignoffRelease, key(repo, role, strconv.FormatUint(version, 10)))
}

func (t *Tx) scanStatements(bucket, prefix []byte) ([]attestation.Statement, error) {
	var out []attestation.Statement
	c := t.tx.Bucket(bucket).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, v = c.Next() {
		var s attestation.Statement
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("%w: statement: %v", ErrCorrupt, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// PutPending stores a vendor release waiting for its targets to be
// reproduced.
func (t *Tx) PutPending(p *attestation.Pending) error {
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucketSignoffPending).Put(u64(p.Index), v)
}

// DeletePending forgets the pending release logged at index.
func (t *Tx) DeletePending(index uint64) error {
	return t.tx.Bucket(bucketSignoffPending).Delete(u64(index))
}

// PendingReleases returns the pending releases in log order.
func (t *Tx) PendingReleases() ([]attestation.Pending, error) {
	var out []attestation.Pending
	err := t.tx.Bucket(bucketSignoffPending).ForEach(func(k, v []byte) error {
		var p attestation.Pending
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("%w: pending release: %v", ErrCorrupt, err)
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// bucketSignoffReview holds the reviews the auditor owes (shiplog audit
// --review-key): index (8 bytes BE) 0 target path -> Review JSON.
var bucketSignoffReview = []byte("signoffreview")

func init() { allBuckets = append(allBuckets, bucketSignoffReview) }

// Review is one "reviewed" statement the auditor will sign and log: the
// target of a release it passed.
type Review struct {
	Index   uint64 `json:"index"` // the release's log index
	Repo    string `json:"repo"`
	Role    string `json:"role"`
	Version uint64 `json:"version"`
	Target  string `json:"target"`
	SHA256  string `json:"sha256"` // lowercase hex
}

func reviewKey(r Review) []byte { return append(u64(r.Index), append([]byte{0}, r.Target...)...) }

// PutReview queues a review.
func (t *Tx) PutReview(r Review) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucketSignoffReview).Put(reviewKey(r), v)
}

// DeleteReview removes a review once it is logged.
func (t *Tx) DeleteReview(r Review) error {
	return t.tx.Bucket(bucketSignoffReview).Delete(reviewKey(r))
}

// Reviews returns the queued reviews in log order, at most max.
func (t *Tx) Reviews(max int) ([]Review, error) {
	var out []Review
	c := t.tx.Bucket(bucketSignoffReview).Cursor()
	for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
		var r Review
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("%w: review: %v", ErrCorrupt, err)
		}
		out = append(out, r)
	}
	return out, nil
}
