package audit

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/audit/replay"
	"github.com/shiplog/shiplog/audit/store"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/publicity"
	merkleproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	tclient "github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"
)

// tileHeight is the height of tlog-tiles tiles (256 hashes wide).
const tileHeight = 8

// follow fetches the ledger's checkpoint, verifies it and catches up.
func (a *Auditor) follow(ctx context.Context, res *Result) error {
	raw, err := a.ledger.Checkpoint(ctx)
	if err != nil {
		return fmtErr("fetch the ledger's checkpoint", err)
	}
	cp, err := evidence.VerifyCheckpoint(raw, a.cfg.Policy)
	var untrusted *evidence.UntrustedError
	if errors.As(err, &untrusted) {
		// No key of the policy signed it: that proves nothing against
		// the log (anyone can write such a note) and is most often a
		// policy naming another log key. Before any checkpoint of this
		// ledger verified, it is a configuration error, not a finding;
		// afterwards (a key change, or someone in between) a warning.
		_, seen, herr := a.cfg.State.Head()
		if herr != nil {
			return herr
		}
		a.answered()
		if !seen {
			return fmt.Errorf("the ledger's checkpoint is not signed by a log key of the policy: %w", err)
		}
	}
	if err != nil {
		a.round.problem = "the ledger's checkpoint does not verify under the policy"
		sev := alert.Critical
		if errors.Is(err, evidence.ErrQuorum) || untrusted != nil {
			sev = alert.Warning // the log signed it and witnesses may lag; or not the log's signature at all
		}
		return a.report(ctx, res, alert.Finding{Severity: sev, Kind: alert.KindBadCheckpoint,
			Message:  "the ledger's checkpoint does not verify under the policy: " + err.Error(),
			Evidence: map[string]string{"checkpoint": string(raw)}})
	}
	res.CheckpointSize = cp.Size
	if err := a.load(cp.Origin); err != nil {
		return err
	}
	head, ok, err := a.cfg.State.Head()
	if err != nil {
		return err
	}
	if ok && head.Origin != cp.Origin {
		return fmt.Errorf("the state file follows %q, the ledger serves %q", head.Origin, cp.Origin)
	}
	if ok {
		prev, err := a.openHead(head)
		if err != nil {
			return err
		}
		fork, err := a.consistent(ctx, head, prev, cp.Signed)
		if err != nil {
			return err
		}
		if fork != nil {
			a.round.problem = "the ledger's checkpoint is inconsistent with one verified before (fork)"
			return a.report(ctx, res, a.forkFindingFor(cp.Origin, fork, "ledger"))
		}
		if prev.Size > cp.Size {
			// The ledger went back to an older, consistent checkpoint: a
			// freeze, or a stale cache in front of it. Keep the newer one.
			a.round.problem = fmt.Sprintf("the ledger serves a checkpoint of size %d after one of size %d", cp.Size, prev.Size)
			return a.report(ctx, res, alert.Finding{Severity: alert.Warning, Kind: alert.KindStaleView, Log: cp.Origin,
				Message:  fmt.Sprintf("the ledger serves a checkpoint of size %d after one of size %d", cp.Size, prev.Size),
				Evidence: map[string]string{"checkpoint": string(cp.Note), "latest_verified": string(prev.Note)}})
		}
	}
	if !ok || string(head.Checkpoint) != string(cp.Note) {
		if err := a.recordCheckpoint(cp, "ledger"); err != nil {
			return err
		}
	}
	a.round.size = cp.Size
	a.answered()
	cs := cosignedBy(cp)
	if cp.Size > 0 {
		// Every entry caught up now is covered by cp: one public-since time.
		if pub, err := publicity.Since(cp, a.cfg.Policy, cp.Size-1, a.cfg.Now(), publicity.DefaultSkew); err == nil && pub.Public {
			cs.publicSince = pub.Since
		}
	}
	if err := a.catchUp(ctx, res, head, ok, cp.Signed, cs); err != nil {
		return err
	}
	a.round.current = true
	return nil
}

// openHead re-opens the head's checkpoint note (verified when stored).
func (a *Auditor) openHead(h store.Head) (*checkpoint.Signed, error) {
	v, ok := evidence.LogVerifier(a.cfg.Policy, h.Origin)
	if !ok {
		return nil, fmt.Errorf("the policy no longer names log %q", h.Origin)
	}
	return checkpoint.Open(h.Checkpoint, h.Origin, v)
}

// consistent checks cp, a checkpoint signed by the log, against prev, the
// latest checkpoint the auditor verified (and so, transitively, every one
// before it). It returns the fork evidence when they are inconsistent. The
// proof comes from the auditor's own tree when it covers both sizes, and
// otherwise from the ledger's hash tiles (a proof that fails to verify is the
// evidence then).
func (a *Auditor) consistent(ctx context.Context, head store.Head, prev, cp *checkpoint.Signed) (*evidence.ForkError, error) {
	var proof [][sha256.Size]byte
	switch {
	case cp.Size == prev.Size:
	case cp.Size < prev.Size && head.Size == prev.Size:
		err := a.cfg.State.View(func(tx *store.Tx) error {
			p, err := tlog.ProveTree(int64(prev.Size), int64(cp.Size), tx.Hashes())
			for _, h := range p {
				proof = append(proof, h)
			}
			return err
		})
		if err != nil {
			return nil, fmtErr("prove consistency from the auditor's tree", err)
		}
	default:
		lo, hi := min(cp.Size, prev.Size), max(cp.Size, prev.Size)
		p, err := a.ledgerProof(ctx, lo, hi)
		if err != nil {
			return nil, fmtErr(fmt.Sprintf("fetch tiles for a consistency proof %d→%d", lo, hi), err)
		}
		proof = p
	}
	err := evidence.CheckConsistency(prev, cp, proof)
	var fe *evidence.ForkError
	if errors.As(err, &fe) {
		return fe, nil
	}
	return nil, err
}

// ledgerProof builds the consistency proof lo→hi from the ledger's tiles.
func (a *Auditor) ledgerProof(ctx context.Context, lo, hi uint64) ([][sha256.Size]byte, error) {
	if lo == 0 {
		return nil, nil
	}
	// Tessera's proof builder drops error wrapping; note a missing tile here.
	var missing atomic.Bool
	fetch := func(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
		b, err := a.ledger.Tile(ctx, level, index, p)
		if errors.Is(err, os.ErrNotExist) {
			missing.Store(true)
		}
		return b, err
	}
	pb, err := tclient.NewProofBuilder(ctx, hi, fetch)
	if err != nil {
		return nil, err
	}
	p, err := pb.ConsistencyProof(ctx, lo, hi)
	if missing.Load() {
		return nil, fmt.Errorf("the ledger has no tiles for size %d: %w", hi, errNotFound)
	}
	if err != nil {
		return nil, err
	}
	out := make([][sha256.Size]byte, len(p))
	for i, h := range p {
		if len(h) != sha256.Size {
			return nil, errors.New("malformed tile hash")
		}
		out[i] = [sha256.Size]byte(h)
	}
	return out, nil
}

// cosignedBy returns the names of the policy witnesses that cosigned cp and
// the earliest of their cosignature times (zero if none).
func cosignedBy(cp *evidence.Checkpoint) cosigners {
	var c cosigners
	for _, w := range cp.Cosigners {
		c.names = append(c.names, w.Name)
	}
	for _, cs := range cp.Cosignatures {
		for _, w := range cp.Cosigners {
			if cs.Name == w.Verifier.Name() && cs.KeyHash == w.Verifier.KeyHash() && (c.earliest.IsZero() || cs.Time.Before(c.earliest)) {
				c.earliest = cs.Time
			}
		}
	}
	return c
}

type cosigners struct {
	names    []string
	earliest time.Time
	// publicSince is since when the entries cp covers are public by the
	// policy's quorum (evidence/publicity); zero if unknown.
	publicSince time.Time
}

func (a *Auditor) recordCheckpoint(cp *evidence.Checkpoint, source string) error {
	return a.cfg.State.Update(func(tx *store.Tx) error {
		return tx.AddCheckpoint(store.CheckpointRecord{Seen: a.cfg.Now().UTC(), Source: source, Size: cp.Size,
			Root: tlog.Hash(cp.Hash), Cosigners: cosignedBy(cp).names, Note: cp.Note})
	})
}

// catchUp audits entries from head.Size up to target, one step of
// StepBundles entry bundles per state transaction.
func (a *Auditor) catchUp(ctx context.Context, res *Result, head store.Head, haveHead bool, target *checkpoint.Signed, cs cosigners) error {
	now := a.cfg.Now()
	loggedBy := now
	if !cs.earliest.IsZero() && cs.earliest.Before(now) {
		loggedBy = cs.earliest
	}
	var loggedAfter time.Time
	prevSize := uint64(0)
	if haveHead {
		if prev, err := a.openHead(head); err == nil {
			prevSize, loggedAfter = prev.Size, head.Verified
		}
	}
	size := head.Size
	if size == target.Size && haveHead && string(head.Checkpoint) != string(target.Note) {
		return a.setHeadCheckpoint(head, target, now)
	}
	prog := newProgress(a.cfg.Progress, size, target.Size, now)
	defer prog.done()
	st := stepTimes{loggedBy: loggedBy, loggedAfter: loggedAfter, prevSize: prevSize, verified: now, publicSince: cs.publicSince}
	// Fetch one step ahead while the current one is replayed: downloads and
	// signature checks overlap.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := a.prefetch(ctx, size, target.Size)
	for size < target.Size {
		end := min(target.Size, (size/256+uint64(a.cfg.StepBundles))*256)
		r := <-next
		if r.err != nil {
			return r.err
		}
		if end < target.Size {
			next = a.prefetch(ctx, end, target.Size)
		}
		if err := a.step(ctx, res, size, end, target, r.f, st); err != nil {
			return err
		}
		size = end
		prog.update(size, a.cfg.Now())
	}
	return nil
}

type prefetched struct {
	f   *fetched
	err error
}

// prefetch fetches the step starting at start in the background.
func (a *Auditor) prefetch(ctx context.Context, start, targetSize uint64) <-chan prefetched {
	ch := make(chan prefetched, 1)
	end := min(targetSize, (start/256+uint64(a.cfg.StepBundles))*256)
	go func() {
		f, err := a.fetchStep(ctx, start, end, targetSize)
		ch <- prefetched{f, err}
	}()
	return ch
}

func (a *Auditor) setHeadCheckpoint(h store.Head, cp *checkpoint.Signed, now time.Time) error {
	return a.cfg.State.Update(func(tx *store.Tx) error {
		h.Checkpoint, h.Verified = cp.Note, now.UTC()
		return tx.SetHead(h)
	})
}

// stepTimes are the logging-time bounds of the entries of a step.
type stepTimes struct {
	loggedBy, loggedAfter, verified time.Time
	publicSince                     time.Time
	prevSize                        uint64 // entries below were covered by the previous checkpoint
}

// fetched is what one step downloads before it opens a transaction.
type fetched struct {
	entries  [][]byte // entries [start, end)
	metadata [][]byte // served metadata per entry, nil when missing
	tiles    map[tlog.Tile][]byte
	proof    [][]byte // consistency proof end→target, when end < target
}

// step audits entries [start, end) against target in one transaction.
func (a *Auditor) step(ctx context.Context, res *Result, start, end uint64, target *checkpoint.Signed, f *fetched, st stepTimes) error {
	var added []store.FindingRecord
	var mismatch *alert.Finding
	err := a.cfg.State.Update(func(tx *store.Tx) error {
		outs, err := a.replayStep(tx, start, f, st)
		if err != nil {
			return err
		}
		if err := a.signoffStep(tx, start, f, st, outs); err != nil {
			return err
		}
		if err := tx.SetSpan(start, st.loggedBy, st.publicSince); err != nil {
			return err
		}
		for i, e := range f.entries {
			if err := tx.AppendLeaf(start+uint64(i), e); err != nil {
				return err
			}
			if err := a.storeOutput(tx, outs[i]); err != nil {
				return err
			}
		}
		if err := a.queueReviews(tx, f, outs); err != nil {
			return err
		}
		root, err := tx.TreeHash(end)
		if err != nil {
			return err
		}
		if m := a.checkRoot(start, end, root, target, f.proof); m != nil {
			mismatch = m
			return errRollback
		}
		for _, fd := range a.checkTiles(tx, f.tiles) {
			if _, err := tx.AddFinding(a.stamp(fd)); err != nil {
				return err
			}
		}
		for _, id := range a.checker.Dirty() {
			if err := tx.PutRepo(id, a.checker.State(id)); err != nil {
				return err
			}
		}
		added = tx.Added
		return tx.SetHead(store.Head{Origin: target.Origin, Size: end, Root: root, Checkpoint: target.Note, Verified: st.verified.UTC()})
	})
	if err != nil {
		a.reset()
		if errors.Is(err, errRollback) {
			return a.report(ctx, res, *mismatch)
		}
		return err
	}
	a.answered()
	a.setSizeMetrics(target.Size, end)
	a.send(ctx, res, added)
	return nil
}

var errRollback = errors.New("step rolled back")

// replayStep replays the entries of a step with replay.CheckAll: parsing,
// decoding and signature checks run on every core, the results are applied
// in log order, so the outputs are those of replaying one entry at a time.
// Earlier releases come from the transaction.
func (a *Auditor) replayStep(tx *store.Tx, start uint64, f *fetched, st stepTimes) ([]replay.Output, error) {
	ins := make([]replay.Input, len(f.entries))
	for i := range f.entries {
		idx := start + uint64(i)
		ins[i] = replay.Input{Index: idx, Entry: f.entries[i], Metadata: f.metadata[i], LoggedBy: st.loggedBy, PublicSince: st.publicSince}
		if idx >= st.prevSize && st.prevSize > 0 {
			ins[i].LoggedAfter = st.loggedAfter
		}
	}
	return a.checker.CheckAll(tx, ins)
}

// storeOutput stores the release and findings of one replayed entry, with
// vendor mode's check.
func (a *Auditor) storeOutput(tx *store.Tx, out replay.Output) error {
	if out.Record {
		if err := tx.PutRelease(out.Release); err != nil {
			return err
		}
	}
	fs := out.Findings
	if a.cfg.Vendor != nil && out.Release != nil {
		if f, bad := a.cfg.Vendor.check(out.Release); bad {
			fs = append(fs, f)
		}
	}
	for _, f := range fs {
		f.Log = a.checker.Log
		if _, err := tx.AddFinding(a.stamp(f)); err != nil {
			return err
		}
	}
	return nil
}

// checkRoot checks that the first end leaves, with root hash root, are
// those the target checkpoint commits to: equal roots at the target size,
// a verifying consistency proof from the ledger's tiles before it.
func (a *Auditor) checkRoot(start, end uint64, root tlog.Hash, target *checkpoint.Signed, proof [][]byte) *alert.Finding {
	var err error
	if end == target.Size {
		if root != tlog.Hash(target.Hash) {
			err = errors.New("root hash differs")
		}
	} else {
		err = merkleproof.VerifyConsistency(rfc6962.DefaultHasher, end, target.Size, proof, root[:], target.Hash[:])
	}
	if err == nil {
		return nil
	}
	return &alert.Finding{Severity: alert.Critical, Kind: alert.KindTreeMismatch, Log: target.Origin, Index: alert.At(start),
		Message:  fmt.Sprintf("entries %d to %d as served do not belong to the tree of the checkpoint of size %d (dropped, altered or reordered entries, or wrong tiles)", start, end-1, target.Size),
		Evidence: map[string]string{"checkpoint": string(target.Note), "computed_root_at_" + fmt.Sprint(end): root.String()}}
}

// checkTiles compares the hash tiles the ledger served with those computed
// from the entries.
func (a *Auditor) checkTiles(tx *store.Tx, tiles map[tlog.Tile][]byte) []alert.Finding {
	var fs []alert.Finding
	for t, served := range tiles {
		if served == nil {
			fs = append(fs, alert.Finding{Severity: alert.Warning, Kind: alert.KindTileMismatch, Log: a.checker.Log,
				Message:  fmt.Sprintf("the ledger does not serve full hash tile level %d index %d", t.L, t.N),
				Evidence: map[string]string{"tile": fmt.Sprintf("%d/%d/%d", t.L, t.N, t.W)}})
			continue
		}
		want, err := tlog.ReadTileData(t, tx.Hashes())
		if err != nil || string(want) != string(served) {
			fs = append(fs, alert.Finding{Severity: alert.Warning, Kind: alert.KindTileMismatch, Log: a.checker.Log,
				Message:  fmt.Sprintf("hash tile level %d index %d (width %d) differs from the tile computed from the entries", t.L, t.N, t.W),
				Evidence: map[string]string{"tile": fmt.Sprintf("%d/%d/%d", t.L, t.N, t.W), "served_sha256": fmt.Sprintf("%x", sha256.Sum256(served))}})
		}
	}
	return fs
}

// fetchStep downloads the entries, metadata, tiles and proof of a step,
// Workers requests at a time.
func (a *Auditor) fetchStep(ctx context.Context, start, end, targetSize uint64) (*fetched, error) {
	f := &fetched{entries: make([][]byte, end-start), metadata: make([][]byte, end-start), tiles: map[tlog.Tile][]byte{}}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(a.cfg.Workers)
	for b := start / 256; b*256 < end; b++ {
		lo, hi := max(b*256, start), min((b+1)*256, end)
		g.Go(func() error { return a.fetchBundle(gctx, f, b, lo, hi, start, end) })
	}
	// Tiles: every full tile completed in this step, and at the target size
	// the partial ones too.
	var tmu = make(chan struct{}, 1)
	for _, t := range tlog.NewTiles(tileHeight, int64(start), int64(end)) {
		if t.W != 256 && end != targetSize {
			continue
		}
		g.Go(func() error {
			b, err := a.ledger.Tile(gctx, uint64(t.L), uint64(t.N), uint8(t.W%256))
			switch {
			case errors.Is(err, os.ErrNotExist) && t.W < 256:
				return nil // a partial tile replaced by a wider one: nothing to compare
			case errors.Is(err, os.ErrNotExist):
				b = nil // reported as a tile the ledger does not serve
			case err != nil:
				return fmtErr("fetch a hash tile", err)
			}
			tmu <- struct{}{}
			f.tiles[t] = b
			<-tmu
			return nil
		})
	}
	if end < targetSize {
		g.Go(func() error {
			p, err := a.ledgerProof(gctx, end, targetSize)
			if err != nil {
				return fmtErr("fetch tiles for a consistency proof", err)
			}
			f.proof = make([][]byte, len(p))
			for i := range p {
				f.proof[i] = p[i][:]
			}
			return nil
		})
	}
	return f, g.Wait()
}

// fetchBundle fetches entries [lo, hi) of entry bundle b with their
// metadata: from the metadata bundle, and file by file for any entry the
// bundle lacks or gets wrong.
func (a *Auditor) fetchBundle(ctx context.Context, f *fetched, b, lo, hi, start, end uint64) error {
	w := int(min((b+1)*256, end) - b*256)
	es, err := a.ledger.EntryBundle(ctx, b, w)
	if err != nil {
		return fmtErr("fetch an entry bundle", err)
	}
	mds, err := a.ledger.MetadataBundle(ctx, b, w)
	if err != nil {
		a.log.Debug("metadata bundle unavailable; fetching files one by one", "bundle", b, "err", err)
		mds = nil
	}
	for i := lo; i < hi; i++ {
		e := es[i-b*256]
		f.entries[i-start] = e
		if entry.Kind(e) == entry.AttestationHeader {
			if err := a.fetchEnvelope(ctx, f, e, i-start, mds, i-b*256); err != nil {
				return err
			}
			continue
		}
		pe, err := entry.Parse(e)
		if err != nil {
			continue // replay reports it
		}
		if mds != nil && pe.Matches(pe.Repo, pe.Role, mds[i-b*256]) {
			f.metadata[i-start] = mds[i-b*256]
			continue
		}
		md, err := a.ledger.Metadata(ctx, pe.SHA256)
		if err != nil {
			return fmtErr("fetch metadata", err)
		}
		f.metadata[i-start] = md
	}
	return nil
}
