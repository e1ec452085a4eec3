package attest

import (
	"time"

	"github.com/shiplog/shiplog/evidence/signoff"
)

// Statement is the sign-off statement of a rebuild of rel in repository
// repoID (docs/spec/signoff.md): "reproduced" or "mismatch" with the
// digest built and the provenance followed, made at now; it records a
// local copy of the source (res.SourceLocal).
func Statement(repoID string, rel *Release, res *Result, now time.Time) *signoff.Statement {
	return &signoff.Statement{
		SubjectName: rel.Target, Subject: rel.SHA256, Verdict: res.Verdict, Repository: repoID,
		Target: rel.Target, TargetsRole: rel.Role, TargetsVersion: uint64(rel.Version),
		Built: res.Built, Provenance: rel.ProvenanceJSON, SourceLocal: res.SourceLocal, Time: now.UTC().Truncate(time.Second),
	}
}

// ReviewStatement is the "reviewed" statement about rel in repoID.
func ReviewStatement(repoID string, rel *Release, now time.Time) *signoff.Statement {
	return &signoff.Statement{
		SubjectName: rel.Target, Subject: rel.SHA256, Verdict: signoff.Reviewed, Repository: repoID,
		Target: rel.Target, TargetsRole: rel.Role, TargetsVersion: uint64(rel.Version), Time: now.UTC().Truncate(time.Second),
	}
}
